//go:build linux

package receiver

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/model"
)

// gostatsdFilterRules is gostatsd's filtering example (FILTERING.md and its
// tag handler tests), with the namespace in the names.
var gostatsdFilterRules = filter.Config{Filters: []filter.FilterConfig{
	{Name: "make-global", MatchMetrics: []string{"ns.global.*"}, DropHost: true, DropTags: []string{"host:*"}},
	{Name: "noisy-tag", DropTags: []string{"request_path:*"}},
	{Name: "drop-subset", MatchMetrics: []string{"ns.noisy.*"}, ExcludeMetrics: []string{"ns.noisy.butok.*"}, DropMetric: true},
}}

// seriesKeys flushes and returns every series as "type name|tags|source".
func seriesKeys(t *testing.T, l *Lines) []string {
	t.Helper()
	s := snapshot(t, l)
	var out []string
	k := func(typ string, se model.Series) {
		out = append(out, typ+" "+se.Name+"|"+strings.Join(se.Tags, ",")+"|"+se.Source)
	}
	for _, c := range s.Counters {
		k("c", c.Series)
	}
	for _, g := range s.Gauges {
		k("g", g.Series)
	}
	for _, x := range s.Sets {
		k("s", x.Series)
	}
	for _, x := range s.Timers {
		k("t", x.Series)
	}
	sort.Strings(out)
	return out
}

func TestLineFilters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		lines []string
		want  []string
	}{
		{
			name: "gostatsd's example, sender IP as source",
			opts: Options{Namespace: "ns", DefaultTags: []string{"env:prod"}},
			lines: []string{
				"global.req:1|c|#host:web1,request_path:/a,code:200",
				"noisy.x:1|c|#a:1",
				"noisy.butok.y:2|g",
				"local.z:3|ms|#request_path:/b,host:web2",
				"other:x|s",
			},
			want: []string{
				"c ns.global.req|code:200,env:prod|",
				"g ns.noisy.butok.y|env:prod|10.0.0.7",
				"s ns.other|env:prod|10.0.0.7",
				"t ns.local.z|env:prod,host:web2|10.0.0.7",
			},
		},
		{
			name: "with ignore-host the host tag is the source before the filters run",
			opts: Options{Namespace: "ns", DefaultTags: []string{"env:prod"}, IgnoreHost: true},
			lines: []string{
				"global.req:1|c|#host:web1,code:200",
				"local.z:1|c|#host:web2",
				"local.nohost:1|c",
			},
			want: []string{
				"c ns.global.req|code:200,env:prod|",
				"c ns.local.nohost|env:prod|",
				"c ns.local.z|env:prod|web2",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newLines(t, 2, tc.opts, &gostatsdFilterRules)
			r := a.NewHandler("udp")
			r.HandleDatagram([]byte(strings.Join(tc.lines, "\n")), netip.MustParseAddr("10.0.0.7"), false)
			r.Handoff()
			got := seriesKeys(t, a)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestRawFilters: forwarded series pass through the same rules (as in
// gostatsd, whose HTTP receiver feeds the tag handler), without the
// namespace, and the default tags follow gostatsd's rule.
func TestSeriesWriterFilters(t *testing.T) {
	a := newLines(t, 2, Options{Namespace: "ns", DefaultTags: []string{"env:prod"}}, &gostatsdFilterRules)
	w := a.NewSeriesWriter()
	w.Counter("ns.global.req", []string{"host:web1", "request_path:/a"}, "10.0.0.1", 2, 0)
	w.Gauge("ns.noisy.x", nil, "10.0.0.1", 1, 0)
	w.Set("ns.noisy.y", nil, "10.0.0.1", []string{"a", "b"})
	w.Timer("ns.noisy.z", nil, "10.0.0.1", []float64{1, 2}, 2)
	w.Timer("ns.noisy.butok.z", []string{"request_path:/c"}, "10.0.0.1", []float64{1, 2}, 2)
	w.Set("local", []string{"env:prod"}, "10.0.0.2", []string{"a"})
	w.Send(context.Background())
	got := seriesKeys(t, a)
	want := []string{
		"c ns.global.req|env:prod|",
		"s local|env:prod|10.0.0.2",
		"t ns.noisy.butok.z|env:prod|10.0.0.1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRouterShapingAllocations: with filters, tag rules and a mapping
// configured, lines that no mapping matches allocate nothing.
func TestLineShapingAllocations(t *testing.T) {
	cfg := gostatsdFilterRules
	cfg.DropTagKeys = []string{"request_id"}
	cfg.MaxTagValueLength = 16
	cfg.Mappings = []filter.MappingConfig{{Name: "http", Match: `^http\.([a-z]+)\.([0-9]+)$`, As: "http_requests", Tags: []string{"method:$1", "code:$2"}}}
	a := newLines(t, 2, Options{Namespace: "ns", DefaultTags: []string{"env:prod"}}, &cfg)
	r := a.NewHandler("udp")
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines,
			fmt.Sprintf("api.req.%d:1|c|#env:prod,request_id:%d,request_path:/x", i%10, i),
			fmt.Sprintf("noisy.%d:%d|ms", i%10, i),
			fmt.Sprintf("global.g%d:+1|g|#host:h%d", i%3, i%2),
			fmt.Sprintf("s:%d|s|#long:0123456789abcdefghij", i%5))
	}
	dg := []byte(strings.Join(lines, "\n"))
	buf := make([]byte, len(dg))
	for i := 0; i < 100; i++ {
		copy(buf, dg)
		r.HandleDatagram(buf, src, false)
		r.Handoff()
	}
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, dg)
		r.HandleDatagram(buf, src, false)
		r.Handoff()
	})
	if perLine := allocs / float64(len(lines)); perLine > 0.05 {
		t.Fatalf("%.3f allocations per line; want ~0", perLine)
	}
}

// BenchmarkRouteFiltered is BenchmarkRoute's counter case with gostatsd's
// example filters, drop-tag-keys, max-tag-value-length and a name mapping
// configured, none of which matches these lines: the cost of having rules.
func BenchmarkRouteFiltered(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  filter.Config
	}{
		{"none", filter.Config{}},
		{"gostatsd-example", gostatsdFilterRules},
		{"all-rules", func() filter.Config {
			c := gostatsdFilterRules
			c.DropTagKeys = []string{"request_id"}
			c.MaxTagValueLength = 64
			c.Mappings = []filter.MappingConfig{{Name: "http", Match: `^http\.([a-z]+)\.([0-9]+)$`, As: "http_requests", Tags: []string{"method:$1", "code:$2"}}}
			return c
		}()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchLines(b, newLines(b, 2, Options{Namespace: "ns"}, &bc.cfg), "api.request.%d:1|c|#env:prod,region:us")
		})
	}
}
