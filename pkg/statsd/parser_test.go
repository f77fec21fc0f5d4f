package statsd

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/model"
)

type parsed struct {
	Name        string
	Type        Type
	Values      []float64
	Delta       []bool
	Member      string
	Rate        float64
	Tags        []string
	ContainerID string
	Timestamp   int64
	Unknown     int
}

func snapshot(m *Metric) parsed {
	p := parsed{Name: string(m.Name), Type: m.Type, Member: string(m.Member), Rate: m.Rate,
		ContainerID: string(m.ContainerID), Timestamp: m.Timestamp, Unknown: m.Unknown}
	p.Values = append(p.Values, m.Values...)
	p.Delta = append(p.Delta, m.Delta...)
	for _, t := range m.Tags {
		p.Tags = append(p.Tags, string(t))
	}
	return p
}

func TestParseMetric(t *testing.T) {
	cases := []struct {
		name string
		line string
		want parsed
	}{
		{"counter", "a.b:1|c", parsed{Name: "a.b", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1}},
		{"float counter", "a:0.4|c", parsed{Name: "a", Type: Counter, Values: []float64{0.4}, Delta: []bool{false}, Rate: 1}},
		{"negative counter", "a:-3|c", parsed{Name: "a", Type: Counter, Values: []float64{-3}, Delta: []bool{true}, Rate: 1}},
		{"sample rate", "a:1|c|@0.1", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 0.1}},
		{"gauge", "g:42.5|g", parsed{Name: "g", Type: Gauge, Values: []float64{42.5}, Delta: []bool{false}, Rate: 1}},
		{"gauge delta up", "g:+3|g", parsed{Name: "g", Type: Gauge, Values: []float64{3}, Delta: []bool{true}, Rate: 1}},
		{"gauge delta down", "g:-3|g", parsed{Name: "g", Type: Gauge, Values: []float64{-3}, Delta: []bool{true}, Rate: 1}},
		{"timer ms", "t:320|ms", parsed{Name: "t", Type: Timer, Values: []float64{320}, Delta: []bool{false}, Rate: 1}},
		{"timer h", "t:320|h", parsed{Name: "t", Type: Timer, Values: []float64{320}, Delta: []bool{false}, Rate: 1}},
		{"distribution", "t:320|d", parsed{Name: "t", Type: Timer, Values: []float64{320}, Delta: []bool{false}, Rate: 1}},
		{"set", "s:user42|s", parsed{Name: "s", Type: Set, Member: "user42", Rate: 1}},
		{"set member with colon", "s:a:b|s", parsed{Name: "s", Type: Set, Member: "a:b", Rate: 1}},
		{"packed", "t:1:2:3|ms", parsed{Name: "t", Type: Timer, Values: []float64{1, 2, 3}, Delta: []bool{false, false, false}, Rate: 1}},
		{"tags", "a:1|c|#env:prod,bare,k:v:w", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Tags: []string{"env:prod", "bare", "k:v:w"}}},
		{"tags then rate", "a:1|c|#x:y|@0.5", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 0.5, Tags: []string{"x:y"}}},
		{"empty tags skipped", "a:1|c|#,x,,y,", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Tags: []string{"x", "y"}}},
		{"container id", "a:1|c|c:abc123", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, ContainerID: "abc123", Unknown: 1}},
		{"timestamp", "a:1|c|T1700000000", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Timestamp: 1700000000}},
		{"bad timestamp is unknown", "a:1|c|Tsoon", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Unknown: 1}},
		{"negative timestamp is unknown", "a:1|c|T-5", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Unknown: 1}},
		{"zero timestamp is unknown", "a:1|c|T0", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Unknown: 1}},
		{"empty timestamp is unknown", "a:1|c|T", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Unknown: 1}},
		{"overlong timestamp is unknown", "a:1|c|T1234567890123456789", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Unknown: 1}},
		{"timestamp before the tags", "g:-2|g|T1700000001|#k:v|@0.5", parsed{Name: "g", Type: Gauge, Values: []float64{-2}, Delta: []bool{true}, Rate: 0.5, Tags: []string{"k:v"}, Timestamp: 1700000001}},
		{"timestamp on a timer", "t:1:2|ms|T1700000002", parsed{Name: "t", Type: Timer, Values: []float64{1, 2}, Delta: []bool{false, false}, Rate: 1, Timestamp: 1700000002}},
		{"last timestamp wins", "a:1|c|T1700000000|T1700000009", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Timestamp: 1700000009}},
		{"unknown sections", "a:1|c|x:1|@0.5|zz", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 0.5, Unknown: 2}},
		{"crlf", "a:1|c\r", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1}},
		{"name sanitised", "a/b c\td*e!:1|c", parsed{Name: "a-b_c_de", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1}},
		{"exponent", "a:1e3|ms", parsed{Name: "a", Type: Timer, Values: []float64{1000}, Delta: []bool{false}, Rate: 1}},
		{"leading dot", "a:.5|ms", parsed{Name: "a", Type: Timer, Values: []float64{0.5}, Delta: []bool{false}, Rate: 1}},
	}
	var m Metric
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Parse([]byte(tc.line)); err != nil {
				t.Fatalf("Parse(%q): %v", tc.line, err)
			}
			if m.Kind != KindMetric {
				t.Fatalf("kind %v", m.Kind)
			}
			if got := snapshot(&m); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		line string
		want *Error
	}{
		{"novalue", ErrNoValue},
		{":1|c", ErrEmptyName},
		{"!!!:1|c", ErrEmptyName},
		{"a:1", ErrNoType},
		{"a:1|x", ErrBadType},
		{"a:1|", ErrBadType},
		{"a:1|cc", ErrBadType},
		{"a:abc|c", ErrBadValue},
		{"a:|c", ErrBadValue},
		{"a:NaN|g", ErrBadValue},
		{"a:Inf|g", ErrBadValue},
		{"a::|ms", ErrBadValue},
		{"a:1:x:|ms", ErrBadValue},
		{"a:1|c|@0", ErrBadRate},
		{"a:1|c|@-1", ErrBadRate},
		{"a:1|c|@x", ErrBadRate},
		{"a:1|c|@NaN", ErrBadRate},
		{"s:|s", ErrBadValue},
		{"_e{5,4}:hello|tex", ErrBadEvent},
		{"_e{x,4}:hello|text", ErrBadEvent},
		{"_e{0,4}:|text", ErrBadEvent},
		{"a,k=v:1|c|#x:y", ErrMixedTags},
		{"a#k=v:1|c|#x:y", ErrMixedTags},
		{"a[k=v]b:1|c|#x:y", ErrMixedTags},
		{"a;k=v:1|c|#x:y", ErrMixedTags},
		{"a\xff:1|c", ErrInvalidUTF8},
		{"a,k=\xff:1|c", ErrInvalidUTF8},
		{"a:1|c|#k:\xc3", ErrInvalidUTF8},
		{"a:1|c|#k:v\xe2\x82,x", ErrInvalidUTF8},
		{"_e{5,4}:h\xffllo|text", ErrInvalidUTF8},
		{"_sc|n\xff|0", ErrInvalidUTF8},
		{"_sc|name", ErrBadCheck},
		{"_sc|name|7", ErrBadCheck},
		{"_sc||0", ErrBadCheck},
	}
	var m Metric
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			err := m.Parse([]byte(tc.line))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tc.line, err, tc.want)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	var m Metric
	line := `_e{5,10}:title|line\nnext|d:1700000000|h:web1|k:agg|p:low|s:src|t:warning|#a:b,c`
	if err := m.Parse([]byte(line)); err != nil {
		t.Fatal(err)
	}
	want := &model.Event{Title: "title", Text: "line\nnext", DateHappened: 1700000000, Hostname: "web1",
		AggregationKey: "agg", SourceTypeName: "src", Tags: []string{"a:b", "c"}, Priority: model.PriorityLow, AlertType: model.AlertWarning}
	if m.Kind != KindEvent || !reflect.DeepEqual(m.Event, want) {
		t.Fatalf("got %+v, want %+v", m.Event, want)
	}
}

func TestParseServiceCheck(t *testing.T) {
	var m Metric
	if err := m.Parse([]byte("_sc|db.up|2|d:1700000000|h:db1|#env:prod|m:down | really")); err != nil {
		t.Fatal(err)
	}
	want := &model.ServiceCheck{Name: "db.up", Status: model.CheckCritical, Timestamp: 1700000000, Hostname: "db1",
		Tags: []string{"env:prod"}, Message: "down | really"}
	if m.Kind != KindServiceCheck || !reflect.DeepEqual(m.Check, want) {
		t.Fatalf("got %+v, want %+v", m.Check, want)
	}
}

// TestParseFloat checks the fast path against strconv on many shapes.
func TestParseFloat(t *testing.T) {
	inputs := []string{"0", "-0", "1", "0.1", "0.3", "123.456", "999999999999999", "1234567890123456",
		"0.000001", "00012.5000", "3.14159265358979", "-2.5", "+7", "1e10", "1.5E-3", "1.", ".5",
		"123456789012345.6", "0.1234567890123456789"}
	for _, in := range inputs {
		got, ok := parseFloat([]byte(in))
		want, err := strconv.ParseFloat(in, 64)
		if !ok || err != nil || got != want {
			t.Errorf("parseFloat(%q) = %v %v, strconv says %v %v", in, got, ok, want, err)
		}
	}
	for i := 0; i < 100000; i++ {
		in := strconv.FormatFloat(float64(i)*0.37+float64(i%7)/1000, 'f', i%9, 64)
		got, _ := parseFloat([]byte(in))
		want, _ := strconv.ParseFloat(in, 64)
		if got != want {
			t.Fatalf("parseFloat(%q) = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"", "-", "+", ".", "1.2.3", "abc", "nan", "inf", "-Inf", "0x10", "1e400"} {
		if f, ok := parseFloat([]byte(bad)); ok && !math.IsInf(f, 0) {
			if bad == "0x10" { // strconv accepts hex floats; harmless
				continue
			}
			t.Errorf("parseFloat(%q) accepted: %v", bad, f)
		}
	}
}

func TestParseAllocations(t *testing.T) {
	lines := [][]byte{
		[]byte("api.request.count:1|c|@0.5|#env:prod,region:us-east-1,service:api"),
		[]byte("api.latency:12.5:13:14.75|ms|#env:prod"),
		[]byte("users.online:+5|g"),
		[]byte("users.unique:user-1234|s|#env:prod"),
		[]byte("bad/name with space:3|c|c:container|T1700000000"),
		[]byte("api.request.count,env=prod,region=us-east-1:1|c"),
		[]byte("api.request.count#env=prod,region=us-east-1:1|c"),
		[]byte("api.[env=prod,region=us-east-1]request.count:1|c"),
		[]byte("api.request.count;env=prod;region=us-east-1:1|c"),
		[]byte("api.request.count:1|c|#env:prod,région:üs"),
		[]byte("t:1::2:|ms"),
	}
	var m Metric
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(1000, func() {
		for _, l := range lines {
			buf = append(buf[:0], l...)
			if err := m.Parse(buf); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Parse allocates %.1f times per run of %d lines; want 0", allocs, len(lines))
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"counter", "api.request.count:1|c"},
		{"counter_tags_rate", "api.request.count:1|c|@0.5|#env:prod,region:us-east-1,service:api"},
		{"timer", "api.request.latency:123.45|ms|#env:prod"},
		{"gauge_delta", "queue.depth:-3|g"},
		{"set", "users.unique:user-12345|s"},
		{"packed", "t:1:2:3:4:5:6:7:8|ms"},
		{"tags_dogstatsd", "api.request.count:1|c|#env:prod,region:us-east-1,service:api"},
		{"tags_influxdb", "api.request.count,env=prod,region=us-east-1,service=api:1|c"},
		{"tags_librato", "api.request.count#env=prod,region=us-east-1,service=api:1|c"},
		{"tags_signalfx", "api.[env=prod,region=us-east-1,service=api]request.count:1|c"},
		{"tags_graphite", "api.request.count;env=prod;region=us-east-1;service=api:1|c"},
		{"timestamp", "api.request.count:1|c|#env:prod|T1700000000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var m Metric
			src := []byte(bc.line)
			buf := make([]byte, len(src))
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for i := 0; i < b.N; i++ {
				copy(buf, src)
				if err := m.Parse(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a:1|c", "a:1|c|@0.1|#x:y,z", "g:+3|g", "t:1:2:3|ms", "s:x|s", "a:1|c|c:abc|T123|zz",
		"_e{5,4}:hello|text|d:1|h:h|p:low|t:error|#a", "_sc|name|0|d:1|h:x|#t|m:msg",
		"", ":", "|", "a:", "a:|", "_e{", "_e{1,1}:a|", "_sc|", "a:1|c|@", "a:1|c|#", "\xff\x00:1|c",
		"a:1e309|c", strings.Repeat("a:1|c|#", 10), fmt.Sprintf("_e{%d,0}:x|", 1<<30),
		"a,k=v,b=c:1|c", "a#k=v:1|c", "a[k=v,x]b:1|c", "a;k=v;x=y,z:1|c", "a[k:1|c", "a]k[:1|c",
		"a,k=v:1|c|#x", "a:1::2:|g", "a:1|c|#k:\xc3\xa9", "_e{1,1}:a|b|d:x|p:urgent|t:test|c:x|e:y|card:z",
		"_sc|x|0|d:abc|c:x|m:m", "a:1|g|T1700000000|#x", "a:1|c|T-1", "a:1|c|T99999999999999999999", "s:m|s|T1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var m Metric
		err := m.Parse(line)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *statsd.Error", err)
			}
			return
		}
		switch m.Kind {
		case KindMetric:
			if len(m.Name) == 0 {
				t.Fatal("accepted an empty name")
			}
			for _, c := range m.Name {
				if !validName[c] {
					t.Fatalf("name %q has byte %q", m.Name, c)
				}
			}
			if m.Type != Set && len(m.Values) == 0 {
				t.Fatal("metric without values")
			}
			for _, v := range m.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("accepted value %v", v)
				}
			}
			if !(m.Rate > 0) {
				t.Fatalf("accepted rate %v", m.Rate)
			}
			if m.Timestamp < 0 || m.Timestamp > 0 && !bytes.Contains(line, []byte("|T")) {
				t.Fatalf("timestamp %d from %q", m.Timestamp, line)
			}
		case KindEvent:
			if m.Event == nil || m.Event.Title == "" {
				t.Fatal("event without title")
			}
		case KindServiceCheck:
			if m.Check == nil || m.Check.Name == "" {
				t.Fatal("service check without name")
			}
		}
	})
}
