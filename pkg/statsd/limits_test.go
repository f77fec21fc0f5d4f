package statsd

import (
	"errors"
	"strings"
	"testing"
)

// tagList returns n tags of the form t<i>:v, comma-separated.
func tagList(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = "t" + strings.Repeat("x", i%3) + ":v" + strings.Repeat("y", i%5)
	}
	return strings.Join(tags, ",")
}

func packed(n int) string {
	return "p:" + strings.TrimSuffix(strings.Repeat("1:", n), ":") + "|ms"
}

func TestParseLimits(t *testing.T) {
	small := Limits{Tags: 3, TagLength: 8, Values: 4}
	cases := []struct {
		name string
		lim  Limits
		line string
		want *Error // nil = accepted
	}{
		{"default tags at the limit", Limits{}, "a:1|c|#" + tagList(MaxTags), nil},
		{"default tags over the limit", Limits{}, "a:1|c|#" + tagList(MaxTags+1), ErrTooManyTags},
		{"default tag length at the limit", Limits{}, "a:1|c|#" + strings.Repeat("k", MaxTagLength), nil},
		{"default tag length over the limit", Limits{}, "a:1|c|#" + strings.Repeat("k", MaxTagLength+1), ErrTagTooLong},
		{"default values at the limit", Limits{}, packed(MaxValues), nil},
		{"default values over the limit", Limits{}, packed(MaxValues + 1), ErrTooManyValue},
		{"tags at the limit", small, "a:1|c|#a,b,c", nil},
		{"empty tags do not count", small, "a:1|c|#a,,b,,c,", nil},
		{"tags over the limit", small, "a:1|c|#a,b,c,d", ErrTooManyTags},
		{"tags over the limit across sections", small, "a:1|c|#a,b|#c,d", ErrTooManyTags},
		{"tag at the length limit", small, "a:1|c|#env:prod", nil},
		{"tag over the length limit", small, "a:1|c|#env:prod1", ErrTagTooLong},
		{"values at the limit", small, "t:1:2:3:4|ms", nil},
		{"values over the limit", small, "t:1:2:3:4:5|ms", ErrTooManyValue},
		{"one value never counts", Limits{Values: 1}, "t:1|ms", nil},
		{"set member is not a packed value", Limits{Values: 1}, "s:a:b|s", nil},
		{"event tags at the limit", small, "_e{1,1}:a|b|#x,y,z", nil},
		{"event tags over the limit", small, "_e{1,1}:a|b|#w,x,y,z", ErrTooManyTags},
		{"event tag over the length limit", small, "_e{1,1}:a|b|#abcdefghi", ErrTagTooLong},
		{"service check tags over the limit", small, "_sc|n|0|#w,x,y,z", ErrTooManyTags},
		{"service check tag over the length limit", small, "_sc|n|0|#abcdefghi|m:msg", ErrTagTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Metric{Limits: tc.lim}
			err := m.Parse([]byte(tc.line))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestLimitsSurviveReset: Parse resets everything a line sets, never the
// bounds the Router gave.
func TestLimitsSurviveReset(t *testing.T) {
	m := Metric{Limits: Limits{Tags: 1}}
	for i := 0; i < 3; i++ {
		if err := m.Parse([]byte("a:1|c|#x")); err != nil {
			t.Fatal(err)
		}
		if err := m.Parse([]byte("a:1|c|#x,y")); !errors.Is(err, ErrTooManyTags) {
			t.Fatalf("round %d: %v, want %v", i, err, ErrTooManyTags)
		}
	}
}

func TestReasonsListed(t *testing.T) {
	for _, e := range []*Error{ErrTagTooLong, ErrTooManyTags, ErrTooManyValue} {
		found := false
		for _, r := range Reasons {
			found = found || r == e.Reason
		}
		if !found {
			t.Errorf("reason %q missing from Reasons", e.Reason)
		}
	}
}
