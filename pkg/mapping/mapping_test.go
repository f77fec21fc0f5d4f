package mapping

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeMappings are statsd_exporter's documented examples, as data
// (testdata/readme-mappings.yml, which backends/exporter's tests read too).
var readmeMappings = func() []byte {
	b, err := os.ReadFile("testdata/readme-mappings.yml")
	if err != nil {
		panic(err)
	}
	return b
}()

func labels(kv ...string) []Label {
	var out []Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Label{kv[i], kv[i+1]})
	}
	sortLabels(out)
	return out
}

func TestMapReadmeExamples(t *testing.T) {
	m, warnings, err := Parse(readmeMappings, 0)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Parse: %v %v", err, warnings)
	}
	cases := []struct {
		name, metric string
		typ          MetricType
		wantName     string
		wantLabels   []Label
		drop         bool
		unmatched    bool
	}{
		{"glob three captures", "test.dispatcher.FooProcessor.send.success", Counter, "dispatcher_events_total",
			labels("processor", "FooProcessor", "action", "send", "outcome", "success", "job", "test_dispatcher"), false, false},
		{"glob ${1} template", "foo_product.signup.facebook.failure", Counter, "signup_events_total",
			labels("provider", "facebook", "outcome", "failure", "job", "foo_product_server"), false, false},
		{"regex", "web01.api--https.status.200.count", Counter, "request_total",
			labels("hostname", "web01", "exec", "api", "protocol", "https", "code", "200"), false, false},
		{"match_metric_type counter", "test.foo.bar", Counter, "test_foo", labels("provider", "bar"), false, false},
		{"match_metric_type other type unmatched", "test.foo.bar", Gauge, "test_foo_bar", nil, false, true},
		{"histogram timer", "test.timing.a.b.c", Observer, "my_timer", labels("provider", "b", "outcome", "c", "job", "a_server"), false, false},
		{"drop", "drop.me.now", Gauge, "dropped", nil, true, false},
		{"unmatched escaped", "some-thing.else", Counter, "some_thing_else", nil, false, true},
		{"unmatched leading digit", "1st.thing", Counter, "_1st_thing", nil, false, true},
		{"glob component count must be equal", "test.dispatcher.a.b", Counter, "test_dispatcher_a_b", nil, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := m.Map(c.metric, c.typ)
			if r.Name != c.wantName || fmt.Sprint(r.Labels) != fmt.Sprint(c.wantLabels) {
				t.Errorf("Map(%q) = %q %v, want %q %v", c.metric, r.Name, r.Labels, c.wantName, c.wantLabels)
			}
			if (r.Mapping == nil) != c.unmatched {
				t.Errorf("matched = %v, want %v", r.Mapping != nil, !c.unmatched)
			}
			if r.Mapping != nil && r.Mapping.Drop != c.drop {
				t.Errorf("drop = %v, want %v", r.Mapping.Drop, c.drop)
			}
		})
	}
	h := m.Map("test.timing.a.b.c", Observer).Mapping
	if h.ObserverType != Histogram || fmt.Sprint(h.Histogram.Buckets) != "[0.01 0.025 0.05 0.1]" {
		t.Errorf("timer_type/buckets: %v %v", h.ObserverType, h.Histogram.Buckets)
	}
	s := m.Map("test.dispatcher.a.b.c", Observer).Mapping
	if s.ObserverType != Summary || len(s.Summary.Quantiles) != 3 || s.Summary.Quantiles[2] != (Objective{0.99, 0.001}) {
		t.Errorf("default summary: %v %v", s.ObserverType, s.Summary)
	}
}

func TestMapOrdering(t *testing.T) {
	const file = `
defaults:
  glob_disable_ordering: %v
mappings:
- match: "(.*)"
  match_type: regex
  name: "regex_first_in_file"
- match: a.*.c
  name: star_first
  labels: {x_x: "$1"}
- match: a.b.*
  name: literal_second
  labels: {x_x: "$1"}
- match: a.*.*
  name: "both_${2}_$1"
- match: r.*.x
  name: "ref_$1_total"
`
	cases := []struct {
		ordering bool
		metric   string
		want     string
	}{
		{true, "a.b.c", "star_first"},      // first in file wins
		{false, "a.b.c", "literal_second"}, // literal beats "*"
		{true, "a.z.c", "star_first"},
		{true, "a.b.d", "literal_second"},
		{true, "a.q.r", "both_r_q"},
		{true, "a..r", "both_r_"},          // "*" matches an empty component
		{true, "z", "regex_first_in_file"}, // globs need the same component count
		{true, "a.b.c.d", "regex_first_in_file"},
	}
	for _, c := range cases {
		m, _, err := Parse([]byte(fmt.Sprintf(file, !c.ordering)), -1)
		if err != nil {
			t.Fatal(err)
		}
		if r := m.Map(c.metric, Counter); r.Name != c.want {
			t.Errorf("ordering=%v Map(%q) = %q, want %q", c.ordering, c.metric, r.Name, c.want)
		}
	}
	m, _, _ := Parse([]byte(fmt.Sprintf(file, false)), -1)
	// "$1_total" is the reference "1_total": it expands to "" as in statsd_exporter.
	if r := m.Map("a.b.x", Gauge); r.Name != "literal_second" {
		t.Errorf("got %q", r.Name)
	}
	if r := m.Map("r.q.x", Gauge); r.Name != "ref_" {
		t.Errorf("$1_total: got %q, want ref_", r.Name)
	}
}

func TestParseRefuses(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"yaml syntax", "mappings:\n- match: a.b\n  name: [x\n", "line"},
		{"single component glob", "mappings:\n- match: abc\n  name: x\n", "line 2: mapping 0"},
		{"glob bad component", "mappings:\n- match: a.b*\n  name: x\n", "invalid match"},
		{"no name", "mappings:\n- match: a.b\n", "didn't set a metric name"},
		{"bad name", "mappings:\n- match: a.b\n  name: a.b\n", "not a Prometheus name"},
		{"label key too short", "mappings:\n- match: a.b\n  name: x\n  labels: {a: b}\n", "invalid label key"},
		{"bad action", "mappings:\n- match: a.b\n  name: x\n  action: keep\n", "invalid action"},
		{"bad metric type", "mappings:\n- match: a.b\n  name: x\n  match_metric_type: set\n", "invalid metric type"},
		{"bad observer", "mappings:\n- match: a.b\n  name: x\n  observer_type: hist\n", "invalid observer type"},
		{"bad match type", "mappings:\n- match: a.b\n  name: x\n  match_type: fuzzy\n", "invalid match type"},
		{"bad regex", "mappings:\n- match: a(b\n  match_type: regex\n  name: x\n", "invalid regex"},
		{"histogram with summary options", "mappings:\n- match: a.b\n  name: x\n  observer_type: histogram\n  summary_options: {max_age: 1m}\n", "summary options"},
		{"summary with histogram options", "mappings:\n- match: a.b\n  name: x\n  observer_type: summary\n  histogram_options: {buckets: [1]}\n", "histogram options"},
		{"buckets twice", "mappings:\n- match: a.b\n  name: x\n  buckets: [1]\n  histogram_options: {buckets: [2]}\n", "buckets in both"},
		{"unsorted buckets", "mappings:\n- match: a.b\n  name: x\n  observer_type: histogram\n  histogram_options: {buckets: [2, 1]}\n", "increasing order"},
		{"bad ttl", "mappings:\n- match: a.b\n  name: x\n  ttl: soon\n", "line 4"},
		{"bad defaults observer", "defaults:\n  observer_type: x\n", "line 2: defaults"},
		{"third mapping named", "mappings:\n- match: a.b\n  name: x\n- match: c.d\n  name: y\n- match: e\n  name: z\n", "line 6: mapping 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse([]byte(c.file), 0)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseDefaultsAndOptions(t *testing.T) {
	const file = `
defaults:
  observer_type: histogram
  histogram_options:
    buckets: [0.1, 1, 10]
    native_histogram_bucket_factor: 1.1
    native_histogram_max_buckets: 256
  summary_options:
    quantiles: [{quantile: 0.99, error: 0.001}]
    max_age: 30s
    age_buckets: 3
    buf_cap: 1000
  ttl: 1m
  unknown_default: 1
mappings:
- match: a.*
  name: histo
- match: b.*
  name: summ
  observer_type: summary
  honor_labels: true
  help: "A summary."
  scale: 0.5
- match: c.*
  name: ttl_own
  ttl: 10s
  summary_opts: {}
- match: d.*
  name: zero_ttl
  ttl: 0
`
	m, warnings, err := Parse([]byte(file), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], `"unknown_default"`) || !strings.Contains(warnings[1], `line 27: unknown key "summary_opts"`) {
		t.Errorf("warnings = %q", warnings)
	}
	h := m.Map("a.x", Observer).Mapping
	if h.ObserverType != Histogram || fmt.Sprint(h.Histogram.Buckets) != "[0.1 1 10]" ||
		h.Histogram.NativeBucketFactor != 1.1 || h.Histogram.NativeMaxBuckets != 256 || h.TTL != time.Minute {
		t.Errorf("histogram defaults: %+v", h)
	}
	s := m.Map("b.x", Observer).Mapping
	want := SummaryOptions{Quantiles: []Objective{{0.99, 0.001}}, MaxAge: 30 * time.Second, AgeBuckets: 3, BufCap: 1000}
	if s.ObserverType != Summary || fmt.Sprint(s.Summary) != fmt.Sprint(want) || !s.HonorLabels || s.Help != "A summary." || s.Scale != 0.5 {
		t.Errorf("summary: %+v", s)
	}
	if c := m.Map("c.x", Counter).Mapping; c.TTL != 10*time.Second || c.Scale != 1 {
		t.Errorf("own ttl: %v scale %v", c.TTL, c.Scale)
	}
	if d := m.Map("d.x", Counter).Mapping; d.TTL != time.Minute {
		t.Errorf("ttl 0 takes the default, as in statsd_exporter: %v", d.TTL)
	}
}

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "ok_name": "ok_name", "a.b": "a_b", "a-b": "a_b", "a--b": "a_b", "a---b": "a_b",
		"a-.b": "a__b", "9lives": "_9lives", "é.x": "__x", "a b": "a_b",
	} {
		if got := EscapeName(in); got != want {
			t.Errorf("EscapeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	m, _, err := Parse([]byte("mappings:\n- match: a.*\n  name: a_$1\n"), 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if r := m.Map(fmt.Sprintf("a.%d", i), Counter); r.Name != fmt.Sprintf("a_%d", i) {
			t.Fatalf("got %q", r.Name)
		}
		if n := len(m.cache); n > 10 {
			t.Fatalf("cache holds %d, bound 10", n)
		}
	}
	if r := m.Map("a.99", Counter); r.Name != "a_99" {
		t.Fatalf("cached result %q", r.Name)
	}
}

// globAsRegex is statsd_exporter's own reading of a glob: "*" is [^.]*.
func globAsRegex(g string) *regexp.Regexp {
	return regexp.MustCompile("^" + strings.ReplaceAll(strings.ReplaceAll(g, ".", `\.`), "*", "([^.]*)") + "$")
}

var fuzzGlobs = []string{"a.*.c", "a.b.*", "*.*.*", "a.*", "*.b", "x.y.z", "a.*.*.d", "*.b.*.d"}

func fuzzMapper(t testing.TB) *Mapper {
	var b strings.Builder
	b.WriteString("mappings:\n")
	for i, g := range fuzzGlobs {
		fmt.Fprintf(&b, "- match: %q\n  name: m%d_${1}\n", g, i)
	}
	m, _, err := Parse([]byte(b.String()), -1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzMap checks the glob tree against the regex reading of the same globs:
// the first glob in file order whose regex matches must win, with the same
// first capture, and every result must be a valid Prometheus name.
func FuzzMap(f *testing.F) {
	for _, s := range []string{"a.b.c", "a..c", "q.b", "a.x.y.d", "", ".", "a.b.c.d", "x.y.z", "é.b"} {
		f.Add(s)
	}
	m := fuzzMapper(f)
	res := make([]*regexp.Regexp, len(fuzzGlobs))
	for i, g := range fuzzGlobs {
		res[i] = globAsRegex(g)
	}
	valid := regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	f.Fuzz(func(t *testing.T, name string) {
		r := m.Map(name, Gauge)
		want := EscapeName(name)
		for i, re := range res {
			if sub := re.FindStringSubmatch(name); sub != nil {
				first := ""
				if len(sub) > 1 {
					first = sub[1]
				}
				want = EscapeName(fmt.Sprintf("m%d_%s", i, first))
				break
			}
		}
		if r.Name != want {
			t.Fatalf("Map(%q) = %q, want %q", name, r.Name, want)
		}
		if r.Name != "" && !valid.MatchString(r.Name) {
			t.Fatalf("Map(%q) = %q: not a Prometheus name", name, r.Name)
		}
	})
}

// FuzzParse: any file is either refused with an error or gives a Mapper
// that maps without panicking.
func FuzzParse(f *testing.F) {
	f.Add(readmeMappings)
	f.Add([]byte("defaults:\n  ttl: 0\nmappings: []\n"))
	f.Add([]byte("mappings:\n- match: a.*.b\n  name: x_$1\n  labels: {ab: ${1}x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := Parse(data, 0)
		if err != nil {
			return
		}
		m.Map("a.b.c", Counter)
		m.Map("test.dispatcher.a.b.c", Observer)
	})
}

func BenchmarkMap(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("test.dispatcher.proc%d.send.success", i)
	}
	for _, bc := range []struct {
		name  string
		cache int
	}{{"cached", 10000}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			m, _, err := Parse(readmeMappings, bc.cache)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m.Map(names[i%len(names)], Counter)
			}
		})
	}
}

// TestParseDefaultsOlderSpellings: the defaults section reads timer_type,
// the top-level buckets and quantiles and match_type (the keys it shares
// with a mapping) as statsd_exporter does.
func TestParseDefaultsOlderSpellings(t *testing.T) {
	const file = `
defaults:
  timer_type: histogram
  buckets: [0.5, 5]
  quantiles: [{quantile: 0.9, error: 0.01}]
  match_type: regex
mappings:
- match: "a_(.*)"
  name: "re_$1"
`
	m, warnings, err := Parse([]byte(file), 0)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Parse = %v, warnings %q", err, warnings)
	}
	d := m.Default()
	if d.ObserverType != Histogram || fmt.Sprint(d.Histogram.Buckets) != "[0.5 5]" {
		t.Errorf("defaults timer_type/buckets: %v %v", d.ObserverType, d.Histogram.Buckets)
	}
	if len(d.Summary.Quantiles) != 1 || d.Summary.Quantiles[0] != (Objective{0.9, 0.01}) {
		t.Errorf("defaults quantiles: %v", d.Summary.Quantiles)
	}
	if r := m.Map("a_b", Counter); r.Name != "re_b" {
		t.Errorf("Map(a_b) = %q, want re_b (match_type regex from the defaults)", r.Name)
	}
}
