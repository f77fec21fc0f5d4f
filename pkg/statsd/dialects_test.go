package statsd

import (
	"errors"
	"reflect"
	"testing"

	"github.com/garner-metrics/garner/pkg/model"
)

func TestParseTagStyles(t *testing.T) {
	c1 := func(name string, tags ...string) parsed {
		return parsed{Name: name, Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Tags: tags}
	}
	cases := []struct {
		name string
		off  TagFormats
		line string
		want parsed
	}{
		{"dogstatsd", 0, "a.b:1|c|#k1:v1,k2:v2", c1("a.b", "k1:v1", "k2:v2")},
		{"influxdb", 0, "a.b,k1=v1,k2=v2:1|c", c1("a.b", "k1:v1", "k2:v2")},
		{"librato", 0, "a.b#k1=v1,k2=v2:1|c", c1("a.b", "k1:v1", "k2:v2")},
		{"signalfx at the end", 0, "a.b[k1=v1,k2=v2]:1|c", c1("a.b", "k1:v1", "k2:v2")},
		{"signalfx in the middle", 0, "a.[k1=v1,k2=v2]b.c:1|c", c1("a.b.c", "k1:v1", "k2:v2")},
		{"signalfx at the start", 0, "[k1=v1]a.b:1|c", c1("a.b", "k1:v1")},
		{"signalfx rest sanitised", 0, "a[k=v]b/c d:1|c", c1("ab-c_d", "k:v")},
		{"signalfx empty is the name", 0, "a[]b:1|c", c1("ab")},
		{"no key=value is the name (gostatsd)", 0, "smp,gge$:1|g", parsed{Name: "smpgge", Type: Gauge, Values: []float64{1}, Delta: []bool{false}, Rate: 1}},
		{"an index is the name", 0, "a[0]:1|c", c1("a0")},
		{"an empty key is no pair", 0, "a,=v:1|c", c1("av")},
		{"an index then influxdb", 0, "a[0],k=v:1|c", c1("a0", "k:v")},
		{"no pair is no mix", 0, "a[]b,x:1|c|#x", c1("abx", "x")},
		{"signalfx unclosed is the name", 0, "a[k=v:1|c", c1("akv")},
		{"signalfx wins over influxdb", 0, "a,x=y[k=v]:1|c", c1("axy", "k:v")},
		{"graphite", 0, "a.b;k1=v1;k2=v2:1|c", c1("a.b", "k1:v1", "k2:v2")},
		{"graphite comma in a value", 0, "a;k=v,w:1|c", c1("a", "k:v_w")},
		{"first delimiter wins", 0, "a#k=v,x=y;z=w:1|c", c1("a", "k:v", "x:y;z=w")},
		{"bare tag next to a pair", 0, "a,k=v,bare:1|c", c1("a", "k:v", "bare")},
		{"second equals kept", 0, "a,k=v=w:1|c", c1("a", "k:v=w")},
		{"empty tags skipped", 0, "a,,k=v,:1|c", c1("a", "k:v")},
		{"nul and pipe in a name tag", 0, "a,k=v\x00w|x:1|c", c1("a", "k:v_w_x")},
		{"with sections", 0, "a,k=v:2|ms|@0.5", parsed{Name: "a", Type: Timer, Values: []float64{2}, Delta: []bool{false}, Rate: 0.5, Tags: []string{"k:v"}}},
		{"set", 0, "s,k=v:m|s", parsed{Name: "s", Type: Set, Member: "m", Rate: 1, Tags: []string{"k:v"}}},
		{"utf-8 tag", 0, "a,k=é:1|c", c1("a", "k:é")},
		{"utf-8 name sanitised", 0, "café:1|c", c1("caf")},
		{"utf-8 dogstatsd tag", 0, "a:1|c|#k:é,x", c1("a", "k:é", "x")},
		{"influxdb off", TagInfluxDB, "a.b,k1=v1:1|c", c1("a.bk1v1")},
		{"librato off", TagLibrato, "a.b#k1=v1:1|c", c1("a.bk1v1")},
		{"signalfx off", TagSignalFx, "a.[k1=v1]b:1|c", c1("a.k1v1b")},
		{"graphite off", TagGraphite, "a.b;k1=v1:1|c", c1("a.bk1v1")},
		{"all name styles off", AllTagFormats &^ TagDogStatsD, "a,k=v#x;y[z]:1|c|#t", c1("akvxyz", "t")},
		{"dogstatsd off", TagDogStatsD, "a:1|c|#k:v", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Unknown: 1}},
		{"dogstatsd off, influxdb on", TagDogStatsD, "a,k=v:1|c|#x", parsed{Name: "a", Type: Counter, Values: []float64{1}, Delta: []bool{false}, Rate: 1, Tags: []string{"k:v"}, Unknown: 1}},
		{"other style with dogstatsd off is not mixed", TagInfluxDB, "a,k=v:1|c|#x", c1("akv", "x")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Metric{DisabledTagFormats: tc.off}
			if err := m.Parse([]byte(tc.line)); err != nil {
				t.Fatalf("Parse(%q): %v", tc.line, err)
			}
			if got := snapshot(&m); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
			}
		})
	}
}

func TestParseNameTagLimits(t *testing.T) {
	m := Metric{Limits: Limits{Tags: 2, TagLength: 5}}
	for line, want := range map[string]*Error{
		"a,x=1,y=2:1|c":      nil,
		"a,x=1,y=2,z=3:1|c":  ErrTooManyTags,
		"a;k=long1:1|c":      ErrTagTooLong,
		"a[k=v,w=x,y=z]:1|c": ErrTooManyTags,
		",k=v:1|c":           ErrEmptyName,
		"[k=v]:1|c":          ErrEmptyName,
	} {
		if err := m.Parse([]byte(line)); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("Parse(%q) = %v, want %v", line, err, want)
		}
	}
}

func TestParseEmptyPackedValues(t *testing.T) {
	cases := []struct {
		line string
		want []float64
	}{
		{"a:1:2:|ms", []float64{1, 2}},
		{"a:1::2|g", []float64{1, 2}},
		{"a::1|c", []float64{1}},
		{"a:1:|c", []float64{1}},
	}
	var m Metric
	for _, tc := range cases {
		if err := m.Parse([]byte(tc.line)); err != nil {
			t.Errorf("Parse(%q): %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(m.Values, tc.want) || len(m.Delta) != len(tc.want) {
			t.Errorf("Parse(%q) = %v %v, want %v", tc.line, m.Values, m.Delta, tc.want)
		}
	}
	for _, bad := range []string{"a:|c", "a::|ms", "a:::|g"} {
		if err := m.Parse([]byte(bad)); !errors.Is(err, ErrBadValue) {
			t.Errorf("Parse(%q) = %v, want %v", bad, err, ErrBadValue)
		}
	}
	m.Limits.Values = 2
	if err := m.Parse([]byte("a:1::2:|ms")); err != nil {
		t.Errorf("empty values must not count against the limit: %v", err)
	}
	if err := m.Parse([]byte("a:1:2:3|ms")); !errors.Is(err, ErrTooManyValue) {
		t.Errorf("3 values over a limit of 2: %v", err)
	}
}

func TestParseLenientEvents(t *testing.T) {
	cases := []struct {
		name    string
		line    string
		want    model.Event
		unknown int
	}{
		{"bad date", "_e{1,1}:a|b|d:abc|h:x", model.Event{Title: "a", Text: "b", Hostname: "x"}, 1},
		{"bad priority", "_e{1,1}:a|b|p:urgent|k:g", model.Event{Title: "a", Text: "b", AggregationKey: "g"}, 1},
		{"bad alert type", "_e{1,1}:a|b|t:test|t:error", model.Event{Title: "a", Text: "b", AlertType: model.AlertError}, 1},
		{"container, external data, cardinality", "_e{1,1}:a|b|c:ci-123|e:it-false,cn-x|card:high|#k:v",
			model.Event{Title: "a", Text: "b", Tags: []string{"k:v"}}, 3},
		{"escaped newline", `_e{1,4}:a|b\nc`, model.Event{Title: "a", Text: "b\nc"}, 0},
		{"unknown field", "_e{1,1}:a|b|z:1|zz", model.Event{Title: "a", Text: "b"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m Metric
			if err := m.Parse([]byte(tc.line)); err != nil {
				t.Fatalf("Parse(%q): %v", tc.line, err)
			}
			if m.Kind != KindEvent || !reflect.DeepEqual(*m.Event, tc.want) || m.Unknown != tc.unknown {
				t.Fatalf("Parse(%q) = %+v (unknown %d), want %+v (unknown %d)", tc.line, m.Event, m.Unknown, tc.want, tc.unknown)
			}
		})
	}
}

func TestParseLenientServiceChecks(t *testing.T) {
	var m Metric
	line := "_sc|db.up|1|d:abc|h:db1|c:ci-1|e:x|card:low|#k:v|m:slow"
	if err := m.Parse([]byte(line)); err != nil {
		t.Fatal(err)
	}
	want := model.ServiceCheck{Name: "db.up", Status: model.CheckWarning, Hostname: "db1", Tags: []string{"k:v"}, Message: "slow"}
	if m.Kind != KindServiceCheck || !reflect.DeepEqual(*m.Check, want) || m.Unknown != 4 {
		t.Fatalf("got %+v (unknown %d), want %+v (unknown 4)", m.Check, m.Unknown, want)
	}
}

func TestParseMetricExtensions(t *testing.T) {
	var m Metric
	if err := m.Parse([]byte("a:1|c|c:ci-1|e:it-false|card:orchestrator|#k:v")); err != nil {
		t.Fatal(err)
	}
	if m.Unknown != 3 || string(m.ContainerID) != "ci-1" || len(m.Tags) != 1 {
		t.Fatalf("got %+v", snapshot(&m))
	}
}

func TestParseTagFormats(t *testing.T) {
	f, err := ParseTagFormats([]string{"influxdb", "graphite"})
	if err != nil || f != TagInfluxDB|TagGraphite {
		t.Fatalf("ParseTagFormats = %v, %v", f, err)
	}
	if got := AllTagFormats.Names(); !reflect.DeepEqual(got, TagFormatNames) {
		t.Fatalf("Names() = %v", got)
	}
	if _, err := ParseTagFormats([]string{"statsd"}); err == nil {
		t.Fatal("an unknown format must be refused")
	}
}
