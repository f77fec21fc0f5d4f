package filter

import "testing"

// BenchmarkApply measures shaping one line, for rule sets that do not
// match it (the common case) and that do.
func BenchmarkApply(b *testing.B) {
	example := []FilterConfig{
		{Name: "make-global", MatchMetrics: []string{"ns.global.*"}, DropHost: true, DropTags: []string{"host:*"}},
		{Name: "noisy-tag", DropTags: []string{"request_path:*"}},
		{Name: "drop-subset", MatchMetrics: []string{"ns.noisy.*"}, ExcludeMetrics: []string{"ns.noisy.butok.*"}, DropMetric: true},
	}
	mapping := []MappingConfig{{Name: "http", Match: `^http\.([a-z]+)\.([0-9]+)$`, As: "http_requests", Tags: []string{"method:$1", "code:$2"}}}
	for _, bc := range []struct {
		name string
		cfg  Config
		line Metric
	}{
		{"filters-no-match", Config{Filters: example}, Metric{Name: []byte("api.request.count"), Tags: bs("env:prod", "region:us"), Source: []byte("10.0.0.7")}},
		{"filters-drop", Config{Filters: example}, Metric{Name: []byte("noisy.x"), Tags: bs("env:prod", "region:us"), Source: []byte("10.0.0.7")}},
		{"filters-strip", Config{Filters: example}, Metric{Name: []byte("global.x"), Tags: bs("host:a", "request_path:/x", "region:us"), Source: []byte("10.0.0.7")}},
		{"tag-rules", Config{DropTagKeys: []string{"request_id", "trace_id"}, MaxTagValueLength: 64}, Metric{Name: []byte("api.request.count"), Tags: bs("env:prod", "region:us"), Source: []byte("10.0.0.7")}},
		{"regex-filter-no-match", Config{Filters: []FilterConfig{{Name: "re", MatchMetrics: []string{`regex:^ns\.debug\.[0-9]+$`}, DropMetric: true}}}, Metric{Name: []byte("api.request.count"), Tags: bs("env:prod", "region:us")}},
		{"unanchored-regex-filter", Config{Filters: []FilterConfig{{Name: "re", MatchMetrics: []string{`regex:debug`}, DropMetric: true}}}, Metric{Name: []byte("api.request.count"), Tags: bs("env:prod", "region:us")}},
		{"mapping-no-match", Config{Mappings: mapping}, Metric{Name: []byte("api.request.count"), Tags: bs("env:prod", "region:us")}},
		{"mapping-match", Config{Mappings: mapping}, Metric{Name: []byte("http.get.200"), Tags: bs("env:prod", "region:us")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, _ := mustRules(b, bc.cfg)
			s := r.NewShaper([]byte("ns."), bs("dc:x"))
			tags := make([][]byte, 0, 16)
			dst := make([]byte, 0, 256)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				m := bc.line
				m.Tags = append(tags[:0], bc.line.Tags...)
				s.Apply(dst[:0], &m)
			}
		})
	}
}
