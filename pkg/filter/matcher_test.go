package filter

import (
	"strings"
	"testing"
)

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		name, pattern  string
		match, nomatch []string
	}{
		// The examples of gostatsd's FILTERING.md.
		{"exact", "abc", []string{"abc"}, []string{"ABC", "abcd", "ab", ""}},
		{"prefix", "abc*", []string{"abc", "abcd"}, []string{"ab", "xabc", "ABC"}},
		{"negated exact", "!abc", []string{"xyz", "abcd", ""}, []string{"abc"}},
		{"negated prefix", "!abc*", []string{"xyz", "ab"}, []string{"abc", "abcd"}},
		{"regex", "regex:.*abc.*", []string{"xyz.abc.123", "abc"}, []string{"xyz.123"}},
		{"negated regex", "!regex:.*abc.*", []string{"xyz.123"}, []string{"xyz.abc.123"}},
		// More.
		{"regex is unanchored", "regex:b+", []string{"abbc", "b"}, []string{"ac"}},
		{"anchored regex", "regex:^a.c$", []string{"abc", "a.c"}, []string{"abcd", "xabc"}},
		{"star only in the middle is literal", "a*c", []string{"a*c"}, []string{"abc", "ac"}},
		{"regex star is not a prefix", "regex:ab*", []string{"a", "xab"}, []string{"b"}},
		{"star alone matches everything", "*", []string{"", "anything"}, nil},
		{"negated star matches nothing", "!*", nil, []string{"", "x"}},
		{"tag prefix", "host:*", []string{"host:a", "host:"}, []string{"hostname:a", "host"}},
		{"empty", "", []string{""}, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMatcher(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.String(); got != tc.pattern {
				t.Errorf("String() = %q, want %q", got, tc.pattern)
			}
			for _, s := range tc.match {
				if !m.Match([]byte(s)) {
					t.Errorf("%q does not match %q", tc.pattern, s)
				}
			}
			for _, s := range tc.nomatch {
				if m.Match([]byte(s)) {
					t.Errorf("%q matches %q", tc.pattern, s)
				}
			}
		})
	}
}

func TestMatcherBadRegex(t *testing.T) {
	for _, p := range []string{"regex:(", "!regex:a[", "regex:a**"} {
		_, err := NewMatcher(p)
		if err == nil || !strings.Contains(err.Error(), "invalid regular expression") {
			t.Errorf("%q: err = %v", p, err)
		}
	}
}

func TestListMatchAny(t *testing.T) {
	l, err := NewList([]string{"a.*", "b"})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"a.x": true, "b": true, "bb": false, "c": false} {
		if got := l.MatchAny([]byte(s)); got != want {
			t.Errorf("MatchAny(%q) = %v", s, got)
		}
	}
	if (List{}).MatchAny([]byte("")) {
		t.Error("an empty list matches")
	}
	if l.matchAnyOf(nil) {
		t.Error("matches no tags")
	}
	if !l.matchAnyOf([][]byte{[]byte("x"), []byte("b")}) {
		t.Error("does not match the second tag")
	}
}

func TestMatcherNoAllocs(t *testing.T) {
	var ms []Matcher
	for _, p := range []string{"api.*", "api.req", "!x*", "regex:^api\\.(req|res)$"} {
		m, err := NewMatcher(p)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	b := []byte("api.request.count")
	if n := testing.AllocsPerRun(100, func() {
		for i := range ms {
			ms[i].Match(b)
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
