package otlp

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	logsv1 "go.opentelemetry.io/proto/otlp/logs/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func testConfig(r *receiver) Options {
	return Options{
		MetricsEndpoint: r.srv.URL + "/v1/metrics", LogsEndpoint: r.srv.URL + "/v1/logs",
		MaxRequests: 2, MaxRetries: 3, MaxRequestElapsedTime: 5 * time.Second, CompressPayload: true,
		MetricsPerBatch: 1000, ResourceKeys: []string{"service"}, Conversion: AsGauge,
	}
}

func testSnapshot() *model.Snapshot {
	src := "10.0.0.7"
	return &model.Snapshot{
		Time: t0, Interval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "api.requests", Tags: []string{"canary", "env:prod", "service:web", "team:a", "team:b"}, Source: src}, Value: 3, PerSecond: 0.3},
			{Series: model.Series{Name: "frac", Source: src}, Value: 0.8, PerSecond: 0.08},
		},
		Gauges: []model.Gauge{
			{Series: model.Series{Name: "queue.depth", Source: src}, Value: 7.5},
			{Series: model.Series{Name: "bad", Source: src}, Value: math.NaN()},
			{Series: model.Series{Name: "hosted", Tags: []string{"host:web1"}, Source: src}, Value: math.Inf(1)},
		},
		Sets: []model.Set{{Series: model.Series{Name: "users", Tags: []string{"service:web"}, Source: src}, Members: map[string]struct{}{"a": {}, "b": {}}}},
		Timers: []model.Timer{
			{Series: model.Series{Name: "api.latency", Source: src}, Values: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
				SampledCount: 10, Count: 10, PerSecond: 1, Lower: 1, Upper: 10, Mean: 5.5, Median: 6, Std: 2.87, Sum: 55, SumSquares: 385,
				Percentiles: []model.Percentile{{Name: "upper_90", Value: 9}, {Name: "count_90", Value: 9}}},
			{Series: model.Series{Name: "resp.size", Tags: []string{"gsd_histogram:10_100"}, Source: src}, Values: []float64{5, 50, 500, 7},
				Histogram: []model.Bucket{{Le: 10, Count: 2}, {Le: 100, Count: 3}, {Le: math.Inf(1), Count: 4}}},
		},
		Disabled: model.SubStd | model.SubSumSquares,
	}
}

func TestMetricsAsGauge(t *testing.T) {
	r := newReceiver(t)
	c, dropped := garnertest.NewBackend(t, New, testConfig(r))
	if err := c.SendMetrics(context.Background(), testSnapshot()); err != nil {
		t.Fatal(err)
	}
	const h = "host=10.0.0.7"
	type want struct {
		kind, resource string
		value          float64
		isInt          bool
	}
	wants := map[string]want{
		"api.requests{canary=,env=prod," + h + ",team=[a b]}":       {"gauge", "service=web", 0.3, false},
		"api.requests.count{canary=,env=prod," + h + ",team=[a b]}": {"sum", "service=web", 3, true},
		"frac{" + h + "}":                                             {"gauge", "", 0.08, false},
		"frac.count{" + h + "}":                                       {"sum", "", 0.8, false},
		"queue.depth{" + h + "}":                                      {"gauge", "", 7.5, false},
		"hosted{host=web1}":                                           {"gauge", "", math.Inf(1), false},
		"users{" + h + "}":                                            {"gauge", "service=web", 2, true},
		"api.latency.lower{" + h + "}":                                {"gauge", "", 1, false},
		"api.latency.upper{" + h + "}":                                {"gauge", "", 10, false},
		"api.latency.count{" + h + "}":                                {"gauge", "", 10, true},
		"api.latency.count_ps{" + h + "}":                             {"gauge", "", 1, false},
		"api.latency.mean{" + h + "}":                                 {"gauge", "", 5.5, false},
		"api.latency.median{" + h + "}":                               {"gauge", "", 6, false},
		"api.latency.sum{" + h + "}":                                  {"gauge", "", 55, false},
		"api.latency.upper_90{" + h + "}":                             {"gauge", "", 9, false},
		"api.latency.count_90{" + h + "}":                             {"gauge", "", 9, false},
		"resp.size.histogram{gsd_histogram=10_100," + h + ",le=10}":   {"gauge", "", 2, false},
		"resp.size.histogram{gsd_histogram=10_100," + h + ",le=100}":  {"gauge", "", 3, false},
		"resp.size.histogram{gsd_histogram=10_100," + h + ",le=+Inf}": {"gauge", "", 4, false},
	}
	got := map[string]point{}
	for _, p := range r.points() {
		if _, dup := got[p.key()]; dup {
			t.Errorf("%s sent twice", p.key())
		}
		got[p.key()] = p
	}
	for k, w := range wants {
		p, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if p.kind != w.kind || p.resource != w.resource || p.value != w.value || p.isInt != w.isInt {
			t.Errorf("%s = %s %v (int %v) resource %q, want %s %v (int %v) resource %q", k, p.kind, p.value, p.isInt, p.resource, w.kind, w.value, w.isInt, w.resource)
		}
		if p.time != uint64(t0.UnixNano()) {
			t.Errorf("%s at %d, want the flush time", k, p.time)
		}
		if p.scope != ScopeName+"@"+c.scope.Version {
			t.Errorf("%s scope %q", k, p.scope)
		}
		if p.kind == "sum" {
			if p.sum.AggregationTemporality != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA || p.sum.IsMonotonic {
				t.Errorf("%s: want a delta, non-monotonic sum (as gostatsd), got %v", k, p.sum)
			}
			if p.start != uint64(t0.Add(-10*time.Second).UnixNano()) {
				t.Errorf("%s starts at %d, want the interval start", k, p.start)
			}
		}
	}
	for k := range got {
		if _, ok := wants[k]; !ok {
			t.Errorf("unexpected %s (disabled sub-metric or NaN sent?)", k)
		}
	}
	if n := testutil.ToFloat64(dropped); n != 1 {
		t.Errorf("dropped = %v, want 1 (the NaN gauge)", n)
	}
	if n := testutil.ToFloat64(c.nonFinite); n != 1 {
		t.Errorf("nonfinite = %v, want 1", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headers.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(r.headers.Get("User-Agent"), "garner/") {
		t.Errorf("headers %v", r.headers)
	}
	// One ResourceMetrics per distinct resource.
	if n := len(r.metrics[0].ResourceMetrics); n != 2 {
		t.Errorf("%d ResourceMetrics, want 2 (service=web and none)", n)
	}
}

func TestMetricsAsHistogram(t *testing.T) {
	r := newReceiver(t)
	cfg := testConfig(r)
	cfg.Conversion = AsHistogram
	cfg.CompressPayload = false
	c, _ := garnertest.NewBackend(t, New, cfg)
	s := testSnapshot()
	s.Timers = append(s.Timers, model.Timer{Series: model.Series{Name: "idle"}})
	if err := c.SendMetrics(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key      string
		count    uint64
		sum      float64
		min, max float64
		bounds   []float64
		buckets  []uint64
	}{
		{"api.latency{host=10.0.0.7}", 10, 55, 1, 10, nil, nil},
		{"resp.size{gsd_histogram=10_100,host=10.0.0.7}", 4, 562, 5, 500, []float64{10, 100}, []uint64{2, 1, 1}},
		{"idle{}", 0, -1, -1, -1, nil, nil},
	}
	got := map[string]point{}
	for _, p := range r.points() {
		got[p.key()] = p
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			p, ok := got[tc.key]
			if !ok || p.hist == nil {
				t.Fatalf("no histogram %s in %v", tc.key, slices.Collect(maps.Keys(got)))
			}
			h := p.hist
			if h.Count != tc.count || !slices.Equal(h.ExplicitBounds, tc.bounds) || !slices.Equal(h.BucketCounts, tc.buckets) {
				t.Errorf("count %d bounds %v buckets %v, want %d %v %v", h.Count, h.ExplicitBounds, h.BucketCounts, tc.count, tc.bounds, tc.buckets)
			}
			if tc.sum < 0 {
				if h.Sum != nil || h.Min != nil || h.Max != nil {
					t.Errorf("an idle timer has no sum, min or max: %v", h)
				}
				return
			}
			if h.Sum == nil || *h.Sum != tc.sum || *h.Min != tc.min || *h.Max != tc.max {
				t.Errorf("sum/min/max %v %v %v, want %v %v %v", h.GetSum(), h.GetMin(), h.GetMax(), tc.sum, tc.min, tc.max)
			}
		})
	}
	if _, ok := got["api.latency.lower{host=10.0.0.7}"]; ok {
		t.Error("AsHistogram must not send the timer gauges")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headers.Get("Content-Encoding") != "" {
		t.Errorf("compress_payload=false sent Content-Encoding %q", r.headers.Get("Content-Encoding"))
	}
}

func TestBatches(t *testing.T) {
	r := newReceiver(t)
	cfg := testConfig(r)
	cfg.MetricsPerBatch = 4
	c, _ := garnertest.NewBackend(t, New, cfg)
	s := &model.Snapshot{Time: t0}
	for i := range 10 {
		s.Gauges = append(s.Gauges, model.Gauge{Series: model.Series{Name: fmt.Sprintf("g%d", i)}, Value: float64(i)})
	}
	if err := c.SendMetrics(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if n := r.requestCount(); n != 3 {
		t.Errorf("10 metrics with metrics_per_batch 4 went in %d requests, want 3", n)
	}
	if n := len(r.points()); n != 10 {
		t.Errorf("received %d points, want 10", n)
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name        string
		maxRetries  int
		fail        []int
		wantErr     bool
		wantReqs    int
		wantDropped float64
	}{
		{"503 then ok", 3, []int{503}, false, 2, 0},
		{"429 twice then ok", 3, []int{429, 429}, false, 3, 0},
		{"no retries", 0, []int{503}, true, 1, 2},
		{"retries exhausted", 1, []int{503, 503, 503}, true, 2, 2},
		{"400 is final", 3, []int{400}, true, 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t)
			r.fail = tc.fail
			cfg := testConfig(r)
			cfg.MaxRetries = tc.maxRetries
			c, dropped := garnertest.NewBackend(t, New, cfg)
			s := &model.Snapshot{Time: t0, Counters: []model.Counter{{Series: model.Series{Name: "c"}, Value: 1, PerSecond: 0.1}}}
			err := c.SendMetrics(context.Background(), s)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if n := r.requestCount(); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
			if n := testutil.ToFloat64(dropped); n != tc.wantDropped {
				t.Errorf("dropped %v, want %v", n, tc.wantDropped)
			}
		})
	}
}

func TestEventAsLog(t *testing.T) {
	r := newReceiver(t)
	c, _ := garnertest.NewBackend(t, New, testConfig(r))
	e := &model.Event{
		Title: "deploy", Text: "v1.2 \xffdone", DateHappened: t0.Unix(), Hostname: "web1", AggregationKey: "agg",
		SourceTypeName: "ci", Tags: []string{"service:api", "env:prod", "canary"}, Source: "10.0.0.7",
		Priority: model.PriorityLow, AlertType: model.AlertWarning,
	}
	if err := c.SendEvent(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	recs, res := r.logRecords()
	if len(recs) != 1 {
		t.Fatalf("got %d log records", len(recs))
	}
	lr := recs[0]
	want := "aggregation_key=agg,alert_type=warning,hostname=web1,priority=low,source=10.0.0.7,source_type_name=ci," +
		"tags={canary=,env=prod},text=v1.2 \uFFFDdone,title=deploy"
	if got := formatAttrs(lr.Attributes); got != want {
		t.Errorf("attributes\n got %s\nwant %s", got, want)
	}
	if res[0] != "service=api" {
		t.Errorf("resource %q, want service=api", res[0])
	}
	if lr.TimeUnixNano != uint64(t0.UnixNano()) || lr.ObservedTimeUnixNano == 0 {
		t.Errorf("times %d %d", lr.TimeUnixNano, lr.ObservedTimeUnixNano)
	}
	if lr.SeverityNumber != logsv1.SeverityNumber_SEVERITY_NUMBER_WARN || lr.Body.GetStringValue() != "v1.2 \uFFFDdone" {
		t.Errorf("severity %v body %v", lr.SeverityNumber, lr.Body)
	}

	// Without logs_endpoint events are not sent.
	r2 := newReceiver(t)
	cfg := testConfig(r2)
	cfg.LogsEndpoint = ""
	c2, _ := garnertest.NewBackend(t, New, cfg)
	if err := c2.SendEvent(context.Background(), e); err != nil || r2.requestCount() != 0 {
		t.Errorf("without logs_endpoint: err %v, %d requests", err, r2.requestCount())
	}
}

func TestPutAttr(t *testing.T) {
	var kvs []*commonv1.KeyValue
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"a", "4"}, {"c\xff", "x"}} {
		kvs = putAttr(kvs, kv[0], kv[1])
	}
	if got, want := formatAttrs(kvs), "a=[1 3 4],b=2,c\uFFFD=x"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCheckHealth(t *testing.T) {
	r := newReceiver(t)
	garnertest.CheckReachableProbe(t, func(t *testing.T, base string) *Client {
		cfg := testConfig(r)
		cfg.MetricsEndpoint = base + "/v1/metrics"
		c, _ := garnertest.NewBackend(t, New, cfg)
		return c
	}, nil)
}

func BenchmarkEncode(b *testing.B) {
	c := &Client{scope: &commonv1.InstrumentationScope{Name: ScopeName}, resourceKeys: map[string]bool{"service": true}}
	s := &model.Snapshot{Time: t0, Interval: 10 * time.Second}
	for i := range 500 {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{
			Name: fmt.Sprintf("app.requests.%d", i), Tags: []string{"env:prod", "service:api"}, Source: "10.0.0.7"}, Value: 1, PerSecond: 0.1})
	}
	plan := c.plan(s)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.metricsData(s, plan)
	}
}
