package filter

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// shapeOne runs one metric written "name|tag,tag|source" through a Shaper
// and returns "name|tags sorted, deduplicated|source", or "DROP".
func shapeOne(s *Shaper, in string) string {
	parts := strings.SplitN(in, "|", 3)
	m := Metric{Name: []byte(parts[0])}
	if parts[1] != "" {
		for _, t := range strings.Split(parts[1], ",") {
			m.Tags = append(m.Tags, []byte(t))
		}
	}
	if parts[2] != "" {
		m.Source = []byte(parts[2])
	}
	name, ok := s.Apply([]byte("prefix-kept:"), &m)
	if !ok {
		if string(name) != "prefix-kept:" {
			return "dst changed on drop: " + string(name)
		}
		return "DROP"
	}
	return strings.TrimPrefix(string(name), "prefix-kept:") + "|" + tagString(m.Tags) + "|" + string(m.Source)
}

func tagString(tags [][]byte) string {
	var ss []string
	seen := map[string]bool{}
	for _, t := range tags {
		if !seen[string(t)] {
			seen[string(t)] = true
			ss = append(ss, string(t))
		}
	}
	sort.Strings(ss)
	return strings.Join(ss, ",")
}

func mustRules(t testing.TB, cfg Config) (*Rules, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

func bs(ss ...string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

func TestFilters(t *testing.T) {
	type io struct{ in, want string }
	for _, tc := range []struct {
		name    string
		ns      string
		defTags []string
		filters []FilterConfig
		cases   []io
	}{
		{
			name:    "drop-metric with match-metrics and exclude-metrics",
			filters: []FilterConfig{{Name: "f", MatchMetrics: []string{"noisy.*"}, ExcludeMetrics: []string{"noisy.quiet.*", "noisy.ok.*"}, DropMetric: true}},
			cases: []io{
				{"noisy.a|t:1|h", "DROP"},
				{"noisy.quiet.a||h", "noisy.quiet.a||h"},
				{"noisy.ok.b||h", "noisy.ok.b||h"},
				{"quiet.a||h", "quiet.a||h"},
			},
		},
		{
			name:    "match-tags: any tag must match",
			filters: []FilterConfig{{Name: "f", MatchMetrics: []string{"noisy.*"}, MatchTags: []string{"noisy-tag:*"}, DropMetric: true}},
			cases: []io{
				{"noisy.a|a:1,noisy-tag:x|h", "DROP"},
				{"noisy.a|a:1|h", "noisy.a|a:1|h"},
				{"noisy.a||h", "noisy.a||h"},
				{"other|noisy-tag:x|h", "other|noisy-tag:x|h"},
			},
		},
		{
			name:    "no match-metrics: every name",
			filters: []FilterConfig{{Name: "f", DropTags: []string{"request_path:*"}}},
			cases: []io{
				{"a|request_path:/x,b:1|h", "a|b:1|h"},
				{"b|request_path:/y,request_path:/z|h", "b||h"},
			},
		},
		{
			name:    "drop-host and drop-tags (gostatsd's make-global example)",
			filters: []FilterConfig{{Name: "make-global", MatchMetrics: []string{"global.*"}, DropHost: true, DropTags: []string{"host:*"}}},
			cases: []io{
				{"global.a|host:web1,x:1|10.0.0.1", "global.a|x:1|"},
				{"local.a|host:web1|10.0.0.1", "local.a|host:web1|10.0.0.1"},
			},
		},
		{
			name:    "filters see the namespaced name",
			ns:      "app.",
			filters: []FilterConfig{{Name: "f", MatchMetrics: []string{"app.noisy.*"}, DropMetric: true}},
			cases: []io{
				{"noisy.a||h", "DROP"},
				{"app.noisy.a||h", "app.app.noisy.a||h"},
			},
		},
		{
			name:    "filters do not see default tags, which are added after",
			defTags: []string{"env:prod", "dc:x"},
			filters: []FilterConfig{{Name: "f", MatchTags: []string{"env:*"}, DropMetric: true}},
			cases: []io{
				{"a|b:1|h", "a|b:1,dc:x,env:prod|h"},
				{"a|env:dev|h", "DROP"},
			},
		},
		{
			name:    "a default tag equal to a dropped tag is left out, as gostatsd",
			defTags: []string{"env:prod", "dc:x"},
			filters: []FilterConfig{{Name: "f", DropTags: []string{"env:*", "dc:*"}}},
			cases: []io{
				{"a|env:prod|h", "a|dc:x|h"},
				{"a|env:dev|h", "a|dc:x,env:prod|h"},
				{"a||h", "a|dc:x,env:prod|h"},
			},
		},
		{
			name: "filters apply in order; later filters see tags marked by earlier ones",
			filters: []FilterConfig{
				{Name: "strip", DropTags: []string{"user:*"}},
				{Name: "drop-users", MatchTags: []string{"user:*"}, DropMetric: true},
			},
			cases: []io{
				{"a|user:1|h", "DROP"},
				{"a|x:1|h", "a|x:1|h"},
			},
		},
		{
			name: "several filters: drop-tags accumulate",
			filters: []FilterConfig{
				{Name: "one", DropTags: []string{"a:*"}},
				{Name: "two", MatchMetrics: []string{"m"}, DropTags: []string{"b:*"}, DropHost: true},
			},
			cases: []io{
				{"m|a:1,b:2,c:3|h", "m|c:3|"},
				{"n|a:1,b:2,c:3|h", "n|b:2,c:3|h"},
			},
		},
		{
			name:    "negated and regex matchers",
			filters: []FilterConfig{{Name: "f", MatchMetrics: []string{"!keep.*"}, ExcludeMetrics: []string{"regex:^debug\\.[0-9]+$"}, DropMetric: true}},
			cases: []io{
				{"keep.a||", "keep.a||"},
				{"debug.12||", "debug.12||"},
				{"debug.x||", "DROP"},
			},
		},
		{
			name:    "an empty filter matches everything and does nothing",
			filters: []FilterConfig{{Name: "empty"}},
			cases:   []io{{"a|b|h", "a|b|h"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := mustRules(t, Config{Filters: tc.filters})
			s := r.NewShaper([]byte(tc.ns), bs(tc.defTags...))
			for _, c := range tc.cases {
				if got := shapeOne(s, c.in); got != c.want {
					t.Errorf("%s → %s, want %s", c.in, got, c.want)
				}
			}
		})
	}
}

func TestTagRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   string
		want string
	}{
		{"drop-tag-keys", Config{DropTagKeys: []string{"request_id", "trace"}}, "a|request_id:9,x:1,trace:abc,request_idx:1|h", "a|env:prod,request_idx:1,x:1|h"},
		{"drop-tag-keys: a bare tag is its own key", Config{DropTagKeys: []string{"request_id"}}, "a|request_id,x|h", "a|env:prod,x|h"},
		{"drop-tag-keys do not touch default tags", Config{DropTagKeys: []string{"env"}}, "a|env:dev|h", "a|env:prod|h"},
		{"max-tag-value-length", Config{MaxTagValueLength: 3}, "a|k:abcdef,kk:abc,bare123|h", "a|bar,env:prod,k:abc,kk:abc|h"},
		{"max-tag-value-length keeps whole characters", Config{MaxTagValueLength: 4}, "a|k:aé€|h", "a|env:prod,k:aé|h"},
		{"max-tag-value-length does not cut default tags", Config{MaxTagValueLength: 1}, "a|v:123|h", "a|env:prod,v:1|h"},
		{"both", Config{DropTagKeys: []string{"id"}, MaxTagValueLength: 1}, "a|id:123,v:123|h", "a|env:prod,v:1|h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := mustRules(t, tc.cfg)
			s := r.NewShaper(nil, bs("env:prod"))
			if got := shapeOne(s, tc.in); got != tc.want {
				t.Errorf("%s → %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestMappings(t *testing.T) {
	r, reg := mustRules(t, Config{
		Mappings: []MappingConfig{
			{Name: "http", Match: `^http\.(?P<method>[a-z]+)\.([0-9]{3})$`, As: "http_requests", Tags: []string{"method:${method}", "code:$2"}},
			{Name: "db", Match: `^db\.([a-z]+)\.(query|exec)(\.([a-z0-9]+))?$`, As: "db.${2}_seconds", Tags: []string{"table:$1", "shard:$4"}},
			{Name: "catch-http", Match: `^http\.`, As: "http_other"},
		},
		Filters: []FilterConfig{{Name: "no-5xx", MatchMetrics: []string{"app.http_requests"}, MatchTags: []string{"code:5*"}, DropMetric: true}},
	})
	s := r.NewShaper([]byte("app."), nil)
	for _, c := range []struct{ in, want string }{
		{"http.get.200|x:1|h", "app.http_requests|code:200,method:get,x:1|h"},
		{"http.post.404||", "app.http_requests|code:404,method:post|"},
		{"http.get.503||", "DROP"}, // mapping first, filters on the result
		{"db.users.query.s1||", "app.db.query_seconds|shard:s1,table:users|"},
		{"db.users.exec||", "app.db.exec_seconds|table:users|"}, // empty shard: left out
		{"http.GET.200||", "app.http_other||"},                  // first match wins, in order
		{"other.metric|a|h", "app.other.metric|a|h"},
	} {
		if got := shapeOne(s, c.in); got != c.want {
			t.Errorf("%s → %s, want %s", c.in, got, c.want)
		}
	}
	s.Publish()
	if got := garnertest.GatheredSeries(t, reg, "garner_filter_mapped_metrics_total", "mapping", "http"); got != 3 {
		t.Errorf("mapped by http = %v, want 3", got)
	}
	if got := garnertest.GatheredSeries(t, reg, "garner_filter_dropped_metrics_total", "filter", "no-5xx"); got != 1 {
		t.Errorf("dropped by no-5xx = %v, want 1", got)
	}
}

func TestApplyStrings(t *testing.T) {
	r, _ := mustRules(t, Config{
		Filters: []FilterConfig{
			{Name: "drop", MatchMetrics: []string{"noisy.*"}, DropMetric: true},
			{Name: "global", MatchMetrics: []string{"global.*"}, DropHost: true, DropTags: []string{"instance:*"}},
		},
		MaxTagValueLength: 2,
	})
	s := r.NewShaper([]byte("ns-not-used-for-strings."), bs("env:prod"))
	for _, c := range []struct {
		name   string
		tags   []string
		source string
		want   string
	}{
		{"noisy.a", nil, "h", "DROP"},
		{"global.a", []string{"instance:i-1", "k:abc"}, "h", "global.a|env:prod,k:ab|"},
		{"local.a", []string{"instance:i-1"}, "h", "local.a|env:prod,instance:i-|h"},
	} {
		name, tags, source, ok := s.ApplyStrings(c.name, c.tags, c.source)
		got := "DROP"
		if ok {
			sort.Strings(tags)
			got = name + "|" + strings.Join(tags, ",") + "|" + source
		}
		if got != c.want {
			t.Errorf("%s%v → %s, want %s", c.name, c.tags, got, c.want)
		}
	}
}

func TestPublishCounts(t *testing.T) {
	r, reg := mustRules(t, Config{
		Filters:           []FilterConfig{{Name: "d", MatchMetrics: []string{"x"}, DropMetric: true}, {Name: "t", DropTags: []string{"a:*"}}},
		DropTagKeys:       []string{"id"},
		MaxTagValueLength: 2,
	})
	s := r.NewShaper(nil, nil)
	for _, in := range []string{"x||", "x||", "y|a:1,id:2,b:123|", "y|a:1|"} {
		shapeOne(s, in)
	}
	if got := garnertest.GatheredSeries(t, reg, "garner_filter_dropped_metrics_total", "filter", "d"); got != 0 {
		t.Fatalf("counted before Publish: %v", got)
	}
	s.Publish()
	s.Publish() // nothing new: no double counting
	for _, c := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"garner_filter_dropped_metrics_total", []string{"filter", "d"}, 2},
		{"garner_filter_dropped_tags_total", []string{"rule", "drop-tags"}, 2},
		{"garner_filter_dropped_tags_total", []string{"rule", "drop-tag-keys"}, 1},
		{"garner_filter_truncated_tags_total", nil, 1},
	} {
		if got := garnertest.GatheredSeries(t, reg, c.metric, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.metric, c.labels, got, c.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad match-metrics regex", Config{Filters: []FilterConfig{{Name: "f", MatchMetrics: []string{"regex:("}}}}, `filter "f": match-metrics: invalid regular expression`},
		{"bad drop-tags regex", Config{Filters: []FilterConfig{{Name: "g", DropTags: []string{"ok", "!regex:["}}}}, `filter "g": drop-tags`},
		{"mapping without match", Config{Mappings: []MappingConfig{{Name: "m", As: "x"}}}, `mapping "m": match: required`},
		{"mapping bad regex", Config{Mappings: []MappingConfig{{Name: "m", Match: "(", As: "x"}}}, `mapping "m": match: invalid regular expression`},
		{"mapping without name", Config{Mappings: []MappingConfig{{Name: "m", Match: "a"}}}, `mapping "m": name: required`},
		{"name template with a bad byte", Config{Mappings: []MappingConfig{{Name: "m", Match: "(a)", As: "x y"}}}, `mapping "m": name: "x y": ' ' is not allowed`},
		{"name template group out of range", Config{Mappings: []MappingConfig{{Name: "m", Match: "(a)", As: "x$2"}}}, `has 1 groups`},
		{"name template $1x", Config{Mappings: []MappingConfig{{Name: "m", Match: "(a)", As: "$1x"}}}, `write ${1}x`},
		{"unknown named group", Config{Mappings: []MappingConfig{{Name: "m", Match: "(?P<a>a)", As: "${b}"}}}, `no group named "b"`},
		{"tag template with a comma", Config{Mappings: []MappingConfig{{Name: "m", Match: "(a)", As: "x", Tags: []string{"k:$1,v"}}}}, `mapping "m": tags: "k:$1,v": ',' is not allowed`},
		{"negative max length", Config{MaxTagValueLength: -1}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestNilShaper(t *testing.T) {
	var r *Rules
	if r.NewShaper(nil, nil) != nil {
		t.Error("nil rules give a shaper")
	}
	r2, _ := mustRules(t, Config{})
	if r2.NewShaper([]byte("ns."), bs("a")) != nil {
		t.Error("empty rules give a shaper: the caller would lose its fast path")
	}
}

// TestApplyNoAllocs: shaping a line allocates nothing when no mapping
// matches, whether or not filters match.
func TestApplyNoAllocs(t *testing.T) {
	r, _ := mustRules(t, Config{
		Filters: []FilterConfig{
			{Name: "drop", MatchMetrics: []string{"noisy.*"}, ExcludeMetrics: []string{"noisy.ok.*"}, DropMetric: true},
			{Name: "strip", MatchMetrics: []string{"regex:^app\\.global\\."}, DropTags: []string{"request_path:*"}, DropHost: true},
		},
		DropTagKeys:       []string{"request_id"},
		MaxTagValueLength: 8,
		Mappings:          []MappingConfig{{Name: "m", Match: `^http\.([a-z]+)$`, As: "http", Tags: []string{"method:$1"}}},
	})
	s := r.NewShaper([]byte("app."), bs("env:prod"))
	lines := []Metric{
		{Name: []byte("api.req"), Tags: bs("a:1", "request_id:77", "long:123456789012"), Source: []byte("h")},
		{Name: []byte("noisy.x"), Source: []byte("h")},
		{Name: []byte("global.x"), Tags: bs("request_path:/a", "b:2"), Source: []byte("h")},
	}
	tags := make([][]byte, 0, 16)
	dst := make([]byte, 0, 256)
	run := func() {
		for _, l := range lines {
			m := l
			m.Tags = append(tags[:0], l.Tags...)
			s.Apply(dst[:0], &m)
		}
	}
	run()
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Fatalf("%v allocations per %d lines", n, len(lines))
	}
}
