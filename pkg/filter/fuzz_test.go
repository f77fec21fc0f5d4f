package filter

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzApply shapes arbitrary names and tags (which come off the wire) with
// every kind of rule and checks that shaping never panics, never writes
// into its input, keeps the namespace, and honours max-tag-value-length.
func FuzzApply(f *testing.F) {
	for _, s := range [][3]string{
		{"global.req", "host:web1,request_path:/a,code:200", "10.0.0.1"},
		{"noisy.x", "", ""},
		{"http.get.200", "request_id:1,k:éééééé", "h"},
		{"", ",,:", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	rules, err := New(Config{
		Filters: []FilterConfig{
			{Name: "global", MatchMetrics: []string{"ns.global.*"}, DropHost: true, DropTags: []string{"host:*"}},
			{Name: "tags", DropTags: []string{"request_path:*", "regex:^x"}},
			{Name: "drop", MatchMetrics: []string{"regex:^ns\\.noisy\\."}, ExcludeMetrics: []string{"!ns.noisy.b*"}, MatchTags: []string{"!a"}, DropMetric: true},
		},
		DropTagKeys:       []string{"request_id"},
		MaxTagValueLength: 5,
		Mappings:          []MappingConfig{{Name: "http", Match: `^http\.([a-z]+)\.([0-9]+)$`, As: "http_requests", Tags: []string{"method:$1", "code:$2"}}},
	}, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	s := rules.NewShaper([]byte("ns."), bs("env:prod"))
	f.Fuzz(func(t *testing.T, name, tagList, source string) {
		in := []byte(name + "\x00" + tagList + "\x00" + source)
		orig := bytes.Clone(in)
		parts := bytes.SplitN(in, []byte{0}, 3)
		m := Metric{Name: parts[0], Source: parts[2]}
		if len(parts[1]) > 0 {
			m.Tags = bytes.Split(parts[1], []byte(","))
		}
		out, ok := s.Apply(nil, &m)
		if !bytes.Equal(in, orig) {
			t.Fatalf("input changed: %q → %q", orig, in)
		}
		if !ok {
			return
		}
		if !bytes.HasPrefix(out, []byte("ns.")) {
			t.Fatalf("name %q lost the namespace", out)
		}
		for _, tag := range m.Tags[:len(m.Tags)-1] { // the last is the default tag
			v := tag
			if i := bytes.IndexByte(tag, ':'); i >= 0 {
				v = tag[i+1:]
			}
			if len(v) > 5 {
				t.Fatalf("tag %q is longer than max-tag-value-length", tag)
			}
			if bytes.HasPrefix(tag, []byte("request_id:")) || bytes.Equal(tag, []byte("request_id")) {
				t.Fatalf("tag %q survived drop-tag-keys", tag)
			}
		}
		if string(m.Tags[len(m.Tags)-1]) != "env:prod" {
			t.Fatalf("default tag missing: %q", m.Tags)
		}
	})
}
