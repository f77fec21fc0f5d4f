package datadog

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/model"
)

// ddSeries is the Datadog v1 series object, as the API decodes it.
type ddSeries struct {
	Metric   string       `json:"metric"`
	Points   [][2]float64 `json:"points"`
	Type     string       `json:"type"`
	Interval int64        `json:"interval"`
	Host     string       `json:"host"`
	Tags     []string     `json:"tags"`
}

func decodeBody(t *testing.T, body []byte) []ddSeries {
	t.Helper()
	var b struct {
		Series []ddSeries `json:"series"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("body is not valid JSON: %v\n%s", err, body)
	}
	for i := range b.Series {
		if b.Series[i].Tags == nil {
			t.Errorf("series %q has no tags field (VictoriaMetrics needs it, even empty)", b.Series[i].Metric)
		}
		if len(b.Series[i].Tags) == 0 {
			b.Series[i].Tags = nil // compare as the cases write it
		}
	}
	return b.Series
}

const ts = 1700000000

func TestSeriesMapping(t *testing.T) {
	ser := func(name, src string, tags ...string) model.Series {
		return model.Series{Name: name, Tags: tags, Source: src}
	}
	pt := func(v float64) [][2]float64 { return [][2]float64{{ts, v}} }
	cases := []struct {
		name string
		snap model.Snapshot
		want []ddSeries
	}{
		{
			name: "counter is a rate plus a .count gauge",
			snap: model.Snapshot{Counters: []model.Counter{{Series: ser("api.req", "10.0.0.7", "env:prod", "bare"), Value: 42, PerSecond: 4.2}}},
			want: []ddSeries{
				{Metric: "api.req", Points: pt(4.2), Type: "rate", Interval: 10, Host: "10.0.0.7", Tags: []string{"env:prod", "bare"}},
				{Metric: "api.req.count", Points: pt(42), Type: "gauge", Interval: 10, Host: "10.0.0.7", Tags: []string{"env:prod", "bare"}},
			},
		},
		{
			name: "gauge and set without source or tags",
			snap: model.Snapshot{
				Gauges: []model.Gauge{{Series: ser("temp", ""), Value: -1.5}},
				Sets:   []model.Set{{Series: ser("users", ""), Members: map[string]struct{}{"a": {}, "b": {}}}},
			},
			want: []ddSeries{
				{Metric: "temp", Points: pt(-1.5), Type: "gauge", Interval: 10},
				{Metric: "users", Points: pt(2), Type: "gauge", Interval: 10},
			},
		},
		{
			name: "timer stats, count_ps as a rate, percentiles, disabled left out",
			snap: model.Snapshot{Disabled: model.SubSumSquares | model.SubMedian, Timers: []model.Timer{{
				Series: ser("lat", "h"), Count: 3, PerSecond: 0.3, Lower: 1, Upper: 9, Mean: 4, Median: 2, Std: 3.5, Sum: 12, SumSquares: 86,
				Percentiles: []model.Percentile{{Name: "upper_90", Value: 9}},
			}}},
			want: []ddSeries{
				{Metric: "lat.lower", Points: pt(1), Type: "gauge", Interval: 10, Host: "h"},
				{Metric: "lat.upper", Points: pt(9), Type: "gauge", Interval: 10, Host: "h"},
				{Metric: "lat.count", Points: pt(3), Type: "gauge", Interval: 10, Host: "h"},
				{Metric: "lat.count_ps", Points: pt(0.3), Type: "rate", Interval: 10, Host: "h"},
				{Metric: "lat.mean", Points: pt(4), Type: "gauge", Interval: 10, Host: "h"},
				{Metric: "lat.std", Points: pt(3.5), Type: "gauge", Interval: 10, Host: "h"},
				{Metric: "lat.sum", Points: pt(12), Type: "gauge", Interval: 10, Host: "h"},
				{Metric: "lat.upper_90", Points: pt(9), Type: "gauge", Interval: 10, Host: "h"},
			},
		},
		{
			name: "histogram buckets",
			snap: model.Snapshot{Timers: []model.Timer{{Series: ser("h", "", "gsd_histogram:5"),
				Histogram: []model.Bucket{{Le: 5, Count: 1}, {Le: math.Inf(1), Count: 2}}}}},
			want: []ddSeries{
				{Metric: "h.histogram", Points: pt(1), Type: "gauge", Interval: 10, Tags: []string{"gsd_histogram:5", "le:5"}},
				{Metric: "h.histogram", Points: pt(2), Type: "gauge", Interval: 10, Tags: []string{"gsd_histogram:5", "le:+Inf"}},
			},
		},
		{
			name: "a past interval's counter and gauge carry its end, the timer after them the flush's time",
			snap: model.Snapshot{
				Counters: []model.Counter{{Series: ser("c", ""), Value: 5, PerSecond: 0.5, At: time.Unix(ts-30, 0).UnixNano()}},
				Timers:   []model.Timer{{Series: ser("t", ""), Count: 1}},
				Gauges:   []model.Gauge{{Series: ser("g", ""), Value: 7, At: time.Unix(ts-20, 0).UnixNano()}, {Series: ser("g", ""), Value: 2}},
			},
			want: []ddSeries{
				{Metric: "c", Points: [][2]float64{{ts - 30, 0.5}}, Type: "rate", Interval: 10},
				{Metric: "c.count", Points: [][2]float64{{ts - 30, 5}}, Type: "gauge", Interval: 10},
				{Metric: "t.lower", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "t.upper", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "t.count", Points: pt(1), Type: "gauge", Interval: 10},
				{Metric: "t.count_ps", Points: pt(0), Type: "rate", Interval: 10},
				{Metric: "t.mean", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "t.median", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "t.std", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "t.sum", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "t.sum_squares", Points: pt(0), Type: "gauge", Interval: 10},
				{Metric: "g", Points: [][2]float64{{ts - 20, 7}}, Type: "gauge", Interval: 10},
				{Metric: "g", Points: pt(2), Type: "gauge", Interval: 10},
			},
		},
		{
			name: "NaN left out, Inf clamped",
			snap: model.Snapshot{Gauges: []model.Gauge{
				{Series: ser("nan", ""), Value: math.NaN()},
				{Series: ser("pinf", ""), Value: math.Inf(1)},
				{Series: ser("ninf", ""), Value: math.Inf(-1)},
			}},
			want: []ddSeries{
				{Metric: "pinf", Points: pt(math.MaxFloat64), Type: "gauge", Interval: 10},
				{Metric: "ninf", Points: pt(-math.MaxFloat64), Type: "gauge", Interval: 10},
			},
		},
		{
			name: "names and tags that need JSON escaping",
			snap: model.Snapshot{Gauges: []model.Gauge{{Series: ser(`q"n\x`, "", "k:\"v\"\n\x01", "bad:\xff"), Value: 1}}},
			want: []ddSeries{{Metric: `q"n\x`, Points: pt(1), Type: "gauge", Interval: 10, Tags: []string{"k:\"v\"\n\x01", "bad:\ufffd"}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.snap.Time = time.Unix(ts, 900_000_000)
			c.snap.Interval = 10*time.Second + 3*time.Millisecond
			nf := prometheus.NewCounter(prometheus.CounterOpts{Name: "x", Help: "x"})
			e := encoder{snap: &c.snap, nonFinite: nf}
			got := decodeBody(t, e.appendSeriesBody(nil, 0, c.snap.Len()))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
			if c.name == "NaN left out, Inf clamped" && testutil.ToFloat64(nf) != 3 {
				t.Errorf("non-finite counter = %v, want 3", testutil.ToFloat64(nf))
			}
		})
	}
}

func TestBatchBoundaries(t *testing.T) {
	snap := &model.Snapshot{Time: time.Unix(ts, 0), Interval: 0, Gauges: []model.Gauge{
		{Series: model.Series{Name: "a"}, Value: 1}, {Series: model.Series{Name: "b"}, Value: math.NaN()}, {Series: model.Series{Name: "c"}, Value: 3},
	}}
	for _, r := range [][2]int{{0, 1}, {1, 2}, {1, 3}, {0, 3}} {
		e := encoder{snap: snap}
		got := decodeBody(t, e.appendSeriesBody(nil, r[0], r[1]))
		var names []string
		for _, s := range got {
			names = append(names, s.Metric)
			if s.Interval != 1 {
				t.Errorf("interval = %d, want at least 1 when the measured interval is 0", s.Interval)
			}
		}
		want := map[[2]int][]string{{0, 1}: {"a"}, {1, 2}: nil, {1, 3}: {"c"}, {0, 3}: {"a", "c"}}[r]
		if !reflect.DeepEqual(names, want) {
			t.Errorf("range %v: %v, want %v", r, names, want)
		}
	}
}

func TestEventAndServiceCheckBodies(t *testing.T) {
	ev := &model.Event{Title: "deploy", Text: "v2\nok", DateHappened: ts, AggregationKey: "k", SourceTypeName: "ci",
		Tags: []string{"env:prod"}, Source: "10.0.0.1", Priority: model.PriorityLow, AlertType: model.AlertWarning}
	var gotEv map[string]any
	if err := json.Unmarshal(appendEvent(nil, ev), &gotEv); err != nil {
		t.Fatal(err)
	}
	wantEv := map[string]any{"title": "deploy", "text": "v2\nok", "date_happened": float64(ts), "host": "10.0.0.1",
		"aggregation_key": "k", "source_type_name": "ci", "tags": []any{"env:prod"}, "priority": "low", "alert_type": "warning"}
	if !reflect.DeepEqual(gotEv, wantEv) {
		t.Errorf("event body %v\nwant %v", gotEv, wantEv)
	}

	sc := &model.ServiceCheck{Name: "db.up", Status: model.CheckCritical, Timestamp: ts, Hostname: "db1", Tags: []string{"role:primary"}, Message: "down"}
	var gotSC map[string]any
	if err := json.Unmarshal(appendServiceCheck(nil, sc), &gotSC); err != nil {
		t.Fatal(err)
	}
	wantSC := map[string]any{"check": "db.up", "host_name": "db1", "status": float64(2), "timestamp": float64(ts), "message": "down", "tags": []any{"role:primary"}}
	if !reflect.DeepEqual(gotSC, wantSC) {
		t.Errorf("service check body %v\nwant %v", gotSC, wantSC)
	}
}

func BenchmarkEncode(b *testing.B) {
	snap := benchSnapshot()
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		e := encoder{snap: snap}
		dst = e.appendSeriesBody(dst[:0], 0, snap.Len())
	}
	b.SetBytes(int64(len(dst)))
}

// benchSnapshot is 1000 counters, 100 timers and 100 gauges.
func benchSnapshot() *model.Snapshot {
	s := &model.Snapshot{Time: time.Unix(ts, 0), Interval: 10 * time.Second}
	for i := range 1000 {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{Name: "app.requests." + strconv.Itoa(i), Tags: []string{"env:prod", "region:eu"}, Source: "10.0.0.1"}, Value: float64(i), PerSecond: float64(i) / 10})
	}
	for i := range 100 {
		s.Timers = append(s.Timers, model.Timer{Series: model.Series{Name: "app.lat." + strconv.Itoa(i), Source: "10.0.0.1"}, Count: 10, Lower: 1, Upper: 100, Mean: 50.5,
			Percentiles: []model.Percentile{{Name: "upper_90", Value: 90}}})
		s.Gauges = append(s.Gauges, model.Gauge{Series: model.Series{Name: "app.g." + strconv.Itoa(i)}, Value: 1.5})
	}
	return s
}
