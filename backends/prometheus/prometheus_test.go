package prometheus

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

func TestSanitize(t *testing.T) {
	cases := []struct {
		name, in, metric, label string
	}{
		{"valid", "api_requests", "api_requests", "api_requests"},
		{"dots and dashes", "api.req-time", "api_req_time", "api_req_time"},
		{"leading digit", "5xx.count", "_5xx_count", "_5xx_count"},
		{"colon", "a:b", "a:b", "a_b"},
		{"utf8", "héllo", "h__llo", "h__llo"},
		{"empty", "", "_", "_"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitizeMetricName(tc.in); got != tc.metric {
				t.Errorf("metric name %q → %q, want %q", tc.in, got, tc.metric)
			}
			if got := sanitizeLabelName(tc.in); got != tc.label {
				t.Errorf("label name %q → %q, want %q", tc.in, got, tc.label)
			}
		})
	}
}

func TestSeriesLabels(t *testing.T) {
	cases := []struct {
		name         string
		series       model.Series
		extra, value string
		want         string
	}{
		{"tags and host", model.Series{Name: "x", Tags: []string{"env:prod", "region:eu"}, Source: "10.0.0.7"}, "", "",
			`__name__="m",env="prod",host="10.0.0.7",region="eu"`},
		{"host tag wins over source", model.Series{Tags: []string{"host:web1"}, Source: "10.0.0.7"}, "", "",
			`__name__="m",host="web1"`},
		{"no source", model.Series{Tags: []string{"a:1"}}, "", "",
			`__name__="m",a="1"`},
		{"bare tag", model.Series{Tags: []string{"canary"}}, "", "",
			`__name__="m",unnamed="canary"`},
		{"first colon only", model.Series{Tags: []string{"url:http://x"}}, "", "",
			`__name__="m",url="http://x"`},
		{"label name sanitised", model.Series{Tags: []string{"k8s.pod-name:p1", "1st:yes"}}, "", "",
			`_1st="yes",__name__="m",k8s_pod_name="p1"`},
		{"same name merged", model.Series{Tags: []string{"env:a", "env:b", "x", "y"}}, "", "",
			`__name__="m",env="a,b",unnamed="x,y"`},
		{"empty value left out", model.Series{Tags: []string{"env:", "a:1"}}, "", "",
			`__name__="m",a="1"`},
		{"reserved name", model.Series{Tags: []string{"__name__:evil"}}, "", "",
			`__name__="m",exported___name__="evil"`},
		{"clash with quantile", model.Series{Tags: []string{"quantile:hi"}}, "quantile", "0.5",
			`__name__="m",exported_quantile="hi",quantile="0.5"`},
		{"le on a counter is kept", model.Series{Tags: []string{"le:5"}}, "", "",
			`__name__="m",le="5"`},
		{"uppercase sorts before __name__", model.Series{Tags: []string{"Env:x"}}, "", "",
			`Env="x",__name__="m"`},
		{"invalid utf8 value", model.Series{Tags: []string{"a:\xff"}}, "", "",
			`__name__="m",a="` + "\uFFFD" + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []label{{"keep", "me"}}
			got := seriesLabels(prefix, &tc.series, "m", tc.extra, tc.value)
			if got[0] != (label{"keep", "me"}) {
				t.Fatalf("seriesLabels changed what dst held: %v", got)
			}
			if s := formatLabels(got[1:]); s != tc.want {
				t.Fatalf("got  %s\nwant %s", s, tc.want)
			}
		})
	}
}

func formatLabels(ls []label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.name, l.value)
	}
	return strings.Join(parts, ",")
}

// ts is one decoded time series.
type ts struct {
	labels []label
	value  float64
	millis int64
	hist   *nativeHist // a native histogram sample instead of value
}

// key is name{labels but __name__} in the order sent.
func (s ts) key() string {
	var name string
	var rest []string
	for _, l := range s.labels {
		if l.name == "__name__" {
			name = l.value
			continue
		}
		rest = append(rest, l.name+"="+l.value)
	}
	return name + "{" + strings.Join(rest, ",") + "}"
}

// decodeWriteRequest parses a remote write 1.0 WriteRequest.
func decodeWriteRequest(b []byte) ([]ts, error) {
	var out []ts
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return fmt.Errorf("unexpected WriteRequest field %d type %d", num, typ)
		}
		var s ts
		samples := 0
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch num {
			case 1:
				var l label
				err := eachField(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
					switch num {
					case 1:
						l.name = string(v)
					case 2:
						l.value = string(v)
					default:
						return fmt.Errorf("unexpected Label field %d", num)
					}
					return nil
				})
				s.labels = append(s.labels, l)
				return err
			case 2:
				samples++
				return eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
					switch {
					case num == 1 && typ == protowire.Fixed64Type:
						s.value = math.Float64frombits(x)
					case num == 2 && typ == protowire.VarintType:
						s.millis = int64(x)
					default:
						return fmt.Errorf("unexpected Sample field %d type %d", num, typ)
					}
					return nil
				})
			case 4:
				samples++
				h, err := decodeNativeHistogram(v)
				s.hist, s.millis = h, h.millis
				return err
			}
			return fmt.Errorf("unexpected TimeSeries field %d", num)
		})
		if samples != 1 {
			return fmt.Errorf("time series with %d samples", samples)
		}
		out = append(out, s)
		return err
	})
	return out, err
}

func eachField(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			return fmt.Errorf("unexpected wire type %d", typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// receiver is a loopback remote write endpoint that decodes what it gets.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests int
	series   []ts
	headers  http.Header
	status   int // answer; 0 = 204
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, err := garnertest.DecodedBody(req)
		if err != nil {
			t.Error(err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		series, err := decodeWriteRequest(raw)
		if err != nil {
			t.Errorf("body is not a WriteRequest: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		r.headers = req.Header.Clone()
		if r.status != 0 {
			http.Error(w, "no", r.status)
			return
		}
		r.series = append(r.series, series...)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// take returns the series received so far, by key, and forgets them.
func (r *receiver) take() map[string]ts {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]ts, len(r.series))
	for _, s := range r.series {
		out[s.key()] = s
	}
	r.series = nil
	return out
}

func newClient(t *testing.T, cfg Options, pcts ...float64) (*Client, *prom.Registry, prom.Counter) {
	t.Helper()
	if cfg.MetricsPerBatch == 0 {
		cfg.MetricsPerBatch = 1000
	}
	if cfg.MaxRequests == 0 {
		cfg.MaxRequests = 2
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	deps, reg, dropped := garnertest.BackendDeps()
	c, err := New(cfg, pcts, deps)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg, dropped
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestSendMetrics(t *testing.T) {
	r := newReceiver(t)
	c, reg, dropped := newClient(t, Options{
		RemoteWriteURL: r.srv.URL + "/api/v1/write", BearerToken: "tok",
		Headers: map[string]string{"x-scope-orgid": "tenant-1"},
	}, 90, -10, 99.9)

	src := "10.0.0.7"
	timer := func(vals ...float64) model.Timer {
		t := model.Timer{Series: model.Series{Name: "api.latency", Source: src}, Values: vals}
		for _, v := range vals {
			t.Sum += v
		}
		t.SampledCount = float64(len(vals))
		if len(vals) > 0 {
			t.Median = vals[len(vals)/2]
		}
		return t
	}
	hist := model.Timer{Series: model.Series{Name: "resp.size", Tags: []string{"gsd_histogram:10_100"}, Source: src},
		Values:    []float64{5, 50, 500, 7},
		Histogram: []model.Bucket{{Le: 10, Count: 2}, {Le: 100, Count: 3}, {Le: math.Inf(1), Count: 4}}}
	snap1 := &model.Snapshot{
		Time: t0, Interval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "api.requests", Tags: []string{"env:prod"}, Source: src}, Value: 3},
			{Series: model.Series{Name: "gone", Source: src}, Value: 1},
		},
		Gauges: []model.Gauge{
			{Series: model.Series{Name: "queue.depth", Source: src}, Value: 7.5},
			{Series: model.Series{Name: "bad.gauge", Source: src}, Value: math.NaN()},
			{Series: model.Series{Name: "inf.gauge", Source: src}, Value: math.Inf(-1)},
		},
		Sets:   []model.Set{{Series: model.Series{Name: "users", Source: src}, Members: map[string]struct{}{"a": {}, "b": {}}}},
		Timers: []model.Timer{timer(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), hist},
	}
	if err := c.SendMetrics(context.Background(), snap1); err != nil {
		t.Fatal(err)
	}
	got := r.take()
	ms := t0.UnixMilli()
	want1 := map[string]float64{
		"api_requests_total{env=prod,host=10.0.0.7}":                   3,
		"gone_total{host=10.0.0.7}":                                    1,
		"queue_depth{host=10.0.0.7}":                                   7.5,
		"inf_gauge{host=10.0.0.7}":                                     math.Inf(-1),
		"users{host=10.0.0.7}":                                         2,
		"api_latency{host=10.0.0.7,quantile=0.5}":                      6,
		"api_latency{host=10.0.0.7,quantile=0.9}":                      9,
		"api_latency{host=10.0.0.7,quantile=0.999}":                    10,
		"api_latency_sum{host=10.0.0.7}":                               55,
		"api_latency_count{host=10.0.0.7}":                             10,
		"resp_size_bucket{gsd_histogram=10_100,host=10.0.0.7,le=10}":   2,
		"resp_size_bucket{gsd_histogram=10_100,host=10.0.0.7,le=100}":  3,
		"resp_size_bucket{gsd_histogram=10_100,host=10.0.0.7,le=+Inf}": 4,
		"resp_size_sum{gsd_histogram=10_100,host=10.0.0.7}":            562,
		"resp_size_count{gsd_histogram=10_100,host=10.0.0.7}":          4,
	}
	checkSeries(t, "flush 1", got, want1, ms)
	if n := testutil.ToFloat64(dropped); n != 1 {
		t.Errorf("dropped series = %v, want 1 (the NaN gauge)", n)
	}

	r.mu.Lock()
	h := r.headers
	r.mu.Unlock()
	for k, v := range map[string]string{
		"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0", "Authorization": "Bearer tok", "X-Scope-Orgid": "tenant-1",
	} {
		if h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
		}
	}

	// Second flush: totals grow; "gone" is absent and forgotten; an idle
	// timer sends only _sum and _count; a NaN increment is not added.
	snap2 := &model.Snapshot{
		Time: t0.Add(10 * time.Second), Interval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "api.requests", Tags: []string{"env:prod"}, Source: src}, Value: 2.5},
			{Series: model.Series{Name: "nan.counter", Source: src}, Value: math.NaN()},
		},
		Timers: []model.Timer{timer(), hist},
	}
	if err := c.SendMetrics(context.Background(), snap2); err != nil {
		t.Fatal(err)
	}
	want2 := map[string]float64{
		"api_requests_total{env=prod,host=10.0.0.7}":                   5.5,
		"nan_counter_total{host=10.0.0.7}":                             0,
		"api_latency_sum{host=10.0.0.7}":                               55,
		"api_latency_count{host=10.0.0.7}":                             10,
		"resp_size_bucket{gsd_histogram=10_100,host=10.0.0.7,le=10}":   4,
		"resp_size_bucket{gsd_histogram=10_100,host=10.0.0.7,le=100}":  6,
		"resp_size_bucket{gsd_histogram=10_100,host=10.0.0.7,le=+Inf}": 8,
		"resp_size_sum{gsd_histogram=10_100,host=10.0.0.7}":            1124,
		"resp_size_count{gsd_histogram=10_100,host=10.0.0.7}":          8,
	}
	checkSeries(t, "flush 2", r.take(), want2, ms+10000)

	// Third flush: "gone" comes back and restarts from its own value.
	snap3 := &model.Snapshot{Time: t0.Add(20 * time.Second), Counters: []model.Counter{{Series: model.Series{Name: "gone", Source: src}, Value: 4}}}
	if err := c.SendMetrics(context.Background(), snap3); err != nil {
		t.Fatal(err)
	}
	checkSeries(t, "flush 3", r.take(), map[string]float64{"gone_total{host=10.0.0.7}": 4}, ms+20000)
	if n := testutil.ToFloat64(c.tracked); n != 1 {
		t.Errorf("running series = %v, want 1 after the others left", n)
	}
	if n, err := testutil.GatherAndCount(reg, "garner_prometheus_nonfinite_values_total"); err != nil || n != 1 {
		t.Errorf("nonfinite metric: %d %v", n, err)
	}
	if n := testutil.ToFloat64(c.nonFinite); n != 2 {
		t.Errorf("nonfinite values = %v, want 2", n)
	}
}

func checkSeries(t *testing.T, what string, got map[string]ts, want map[string]float64, ms int64) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(got))
	if len(got) != len(want) {
		t.Errorf("%s: got %d series, want %d: %v", what, len(got), len(want), keys)
	}
	for k, v := range want {
		s, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: series %s missing; got %v", what, k, keys)
		case s.value != v:
			t.Errorf("%s: %s = %v, want %v", what, k, s.value, v)
		case s.millis != ms:
			t.Errorf("%s: %s at %d, want %d", what, k, s.millis, ms)
		}
	}
	for _, s := range got {
		for i := 1; i < len(s.labels); i++ {
			if s.labels[i-1].name >= s.labels[i].name {
				t.Errorf("%s: labels of %s not sorted and unique: %v", what, s.key(), s.labels)
			}
		}
	}
}

func TestBatchesAndBasicAuth(t *testing.T) {
	r := newReceiver(t)
	c, _, _ := newClient(t, Options{
		RemoteWriteURL: r.srv.URL, MetricsPerBatch: 3, BasicAuthUsername: "u", BasicAuthPassword: "p",
	})
	snap := &model.Snapshot{Time: t0}
	for i := range 10 {
		snap.Gauges = append(snap.Gauges, model.Gauge{Series: model.Series{Name: fmt.Sprintf("g%d", i)}, Value: float64(i)})
	}
	if err := c.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	reqs, auth := r.requests, r.headers.Get("Authorization")
	r.mu.Unlock()
	if reqs != 4 {
		t.Errorf("10 series with metrics-per-batch 3 went in %d requests, want 4", reqs)
	}
	if auth != "Basic dTpw" {
		t.Errorf("Authorization = %q", auth)
	}
	if got := r.take(); len(got) != 10 || got["g9{}"].value != 9 {
		t.Errorf("got %d series: %v", len(got), got)
	}
}

func TestRejectedCountsDropped(t *testing.T) {
	r := newReceiver(t)
	r.status = http.StatusBadRequest
	c, _, dropped := newClient(t, Options{RemoteWriteURL: r.srv.URL, MetricsPerBatch: 2})
	snap := &model.Snapshot{Time: t0, Counters: []model.Counter{
		{Series: model.Series{Name: "a"}, Value: 1}, {Series: model.Series{Name: "b"}, Value: 1}, {Series: model.Series{Name: "c"}, Value: 1},
	}}
	err := c.SendMetrics(context.Background(), snap)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("want an error naming the 400, got %v", err)
	}
	if n := testutil.ToFloat64(dropped); n != 3 {
		t.Errorf("dropped = %v, want 3", n)
	}
	r.mu.Lock()
	reqs := r.requests
	r.mu.Unlock()
	if reqs != 2 {
		t.Errorf("a 400 must not be retried: %d requests, want 2", reqs)
	}
}

func TestDownDoesNotBlock(t *testing.T) {
	// A listener that never answers: the send must end with ctx.
	srv := garnertest.HangingServer(t)
	c, _, dropped := newClient(t, Options{RemoteWriteURL: srv.URL, Timeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.SendMetrics(ctx, &model.Snapshot{Time: t0, Gauges: []model.Gauge{{Series: model.Series{Name: "g"}, Value: 1}}})
	if err == nil {
		t.Fatal("want an error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("send took %s, want it bounded by ctx", d)
	}
	if n := testutil.ToFloat64(dropped); n != 1 {
		t.Errorf("dropped = %v, want 1", n)
	}
}

func TestCheckHealth(t *testing.T) {
	garnertest.CheckReachableProbe(t, func(t *testing.T, base string) *Client {
		c, _, _ := newClient(t, Options{RemoteWriteURL: base + "/api/v1/write", BearerToken: "tok"})
		return c
	}, func(t *testing.T, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("probe without auth")
		}
	})
}

func TestNewRequiresURL(t *testing.T) {
	deps, _, _ := garnertest.BackendDeps()
	_, err := New(Options{}, nil, deps)
	if err == nil || !strings.Contains(err.Error(), "remote-write-url") {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	c := &Client{quantiles: []quantile{{0.5, "0.5"}, {0.9, "0.9"}}}
	snap := &model.Snapshot{Time: t0}
	var plan []sample
	for i := range 1000 {
		snap.Counters = append(snap.Counters, model.Counter{Series: model.Series{
			Name: fmt.Sprintf("app.requests.%d", i), Tags: []string{"env:prod", "region:eu-west-1"}, Source: "10.0.0.7"}, Value: 1})
		plan = append(plan, sample{kind: kindCounter, idx: int32(i), value: float64(i)})
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = c.encode(buf[:0], snap, plan, nil, t0.UnixMilli())
	}
	b.SetBytes(int64(len(buf)))
}
