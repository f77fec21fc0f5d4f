package exporter

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
)

const testMappings = `
defaults:
  ttl: 0
mappings:
- match: "test.dispatcher.*.*.*"
  name: "dispatcher_events_total"
  labels:
    processor: "$1"
    action: "$2"
    outcome: "$3"
    job: "test_dispatcher"
- match: "api.request.*"
  name: "api_request_seconds"
  observer_type: histogram
  histogram_options:
    buckets: [0.01, 0.1, 1]
    native_histogram_bucket_factor: 1.1
  labels:
    route: "$1"
- match: "api.summary.*"
  name: "api_summary_seconds"
  summary_options:
    quantiles: [{quantile: 0.5, error: 0.01}]
  labels:
    route: "$1"
- match: "honor.*"
  name: "honored"
  honor_labels: true
  labels:
    env: "mapping"
- match: "short.*"
  name: "short_lived"
  ttl: 1m
- match: "noise.*"
  action: drop
- match: "classic.*"
  name: "classic_seconds"
  observer_type: histogram
  histogram_options:
    buckets: [0.001, 0.01, 1]
  labels:
    route: "$1"
`

type fixture struct {
	e    *Exporter
	reg  *prom.Registry
	path string
	t0   time.Time
}

func newFixture(t testing.TB, mappings string) *fixture {
	t.Helper()
	path := garnertest.WriteFile(t, filepath.Join(t.TempDir(), "mapping.yml"), mappings)
	o := DefaultOptions()
	o.ListenAddress, o.MappingConfig = "127.0.0.1:0", path
	deps, reg, _ := garnertest.BackendDeps()
	e, err := New(o, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &fixture{e: e, reg: reg, path: path, t0: time.Unix(1_800_000_000, 0)}
}

func (f *fixture) send(t *testing.T, at time.Duration, s model.Snapshot) {
	t.Helper()
	s.Time = f.t0.Add(at)
	if err := f.e.SendMetrics(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
}

// scrape reads the endpoint in the text format, as Prometheus would.
func (f *fixture) scrape(t *testing.T, accept string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.e.Addr()+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics answered %s: %s", resp.Status, b)
	}
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		out[mf.GetName()] = mf
	}
	return out
}

func ser(name string, tags ...string) model.Series {
	return model.Series{Name: name, Tags: tags, Source: "10.0.0.1"}
}

func labelsOf(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func one(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) *dto.Metric {
	t.Helper()
	mf := fams[name]
	if mf == nil || mf.GetType() != typ || len(mf.Metric) != 1 {
		t.Fatalf("%s: want one %s series, got %v", name, typ, mf)
	}
	return mf.Metric[0]
}

func TestTypes(t *testing.T) {
	f := newFixture(t, testMappings)
	f.send(t, 0, model.Snapshot{
		Counters: []model.Counter{{Series: ser("test.dispatcher.p.send.ok", "env:prod"), Value: 3}},
		Gauges:   []model.Gauge{{Series: ser("queue.depth"), Value: 7}},
		Sets:     []model.Set{{Series: ser("users.unique"), Members: map[string]struct{}{"a": {}, "b": {}}}},
		Timers: []model.Timer{
			{Series: ser("api.request.home"), Values: []float64{5, 50, 500, 5000}, SampledCount: 4},
			{Series: ser("api.summary.home"), Values: []float64{100, 200}, SampledCount: 20}, // @0.1: each value 10 times
		},
	})
	f.send(t, 10*time.Second, model.Snapshot{
		Counters: []model.Counter{{Series: ser("test.dispatcher.p.send.ok", "env:prod"), Value: 2}},
		Gauges:   []model.Gauge{{Series: ser("queue.depth"), Value: 4}},
	})
	fams := f.scrape(t, "")
	c := one(t, fams, "dispatcher_events_total", dto.MetricType_COUNTER)
	if c.GetCounter().GetValue() != 5 || labelsOf(c) != "action=send,env=prod,job=test_dispatcher,outcome=ok,processor=p" {
		t.Errorf("counter: %v %s", c.GetCounter().GetValue(), labelsOf(c))
	}
	if g := one(t, fams, "queue_depth", dto.MetricType_GAUGE); g.GetGauge().GetValue() != 4 {
		t.Errorf("gauge = %v", g.GetGauge().GetValue())
	}
	if s := one(t, fams, "users_unique", dto.MetricType_GAUGE); s.GetGauge().GetValue() != 2 {
		t.Errorf("set = %v", s.GetGauge().GetValue())
	}
	h := one(t, fams, "api_request_seconds", dto.MetricType_HISTOGRAM).GetHistogram()
	var cum []uint64
	for _, b := range h.Bucket {
		cum = append(cum, b.GetCumulativeCount())
	}
	if h.GetSampleCount() != 4 || math.Abs(h.GetSampleSum()-5.555) > 1e-9 || len(cum) < 3 || cum[0] != 1 || cum[1] != 2 || cum[2] != 3 {
		t.Errorf("histogram: count %d sum %v buckets %v", h.GetSampleCount(), h.GetSampleSum(), cum)
	}
	s := one(t, fams, "api_summary_seconds", dto.MetricType_SUMMARY).GetSummary()
	if s.GetSampleCount() != 20 || math.Abs(s.GetSampleSum()-3) > 1e-9 || len(s.Quantile) != 1 || s.Quantile[0].GetQuantile() != 0.5 {
		t.Errorf("summary: %v", s)
	}
	if q := s.Quantile[0].GetValue(); q != 0.1 && q != 0.2 {
		t.Errorf("median %v", q)
	}
	if got := testutil.ToFloat64(f.e.m.capped); got != 0 {
		t.Errorf("capped observations %v, want 0", got)
	}
	// @0.00001: 100000 observations asked per value, 10000 made, the rest counted.
	f.send(t, 20*time.Second, model.Snapshot{Timers: []model.Timer{{Series: ser("api.summary.rare"), Values: []float64{7}, SampledCount: 1e5}}})
	var rare *dto.Summary
	for _, m := range f.scrape(t, "")["api_summary_seconds"].GetMetric() {
		if labelsOf(m) == "route=rare" {
			rare = m.GetSummary()
		}
	}
	if rare.GetSampleCount() != maxRepeat || testutil.ToFloat64(f.e.m.capped) != 1e5-maxRepeat {
		t.Errorf("rare: count %d, capped %v", rare.GetSampleCount(), testutil.ToFloat64(f.e.m.capped))
	}

	// The protobuf exposition carries the native histogram too.
	pb := f.scrape(t, `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`)
	nh := one(t, pb, "api_request_seconds", dto.MetricType_HISTOGRAM).GetHistogram()
	if nh.Schema == nil || len(nh.PositiveSpan) == 0 || len(nh.Bucket) < 3 {
		t.Errorf("protobuf histogram has no native buckets: %v", nh)
	}
}

func TestConflictsNeverFailTheScrape(t *testing.T) {
	f := newFixture(t, testMappings)
	f.send(t, 0, model.Snapshot{
		Counters: []model.Counter{
			{Series: ser("clash.x"), Value: 1},
			{Series: ser("labels.change", "a:1"), Value: 1},
		},
		Gauges: []model.Gauge{{Series: ser("clash.x"), Value: 9}},
		Timers: []model.Timer{{Series: ser("api.summary.x", "quantile:bad"), Values: []float64{1}, SampledCount: 1}},
	})
	f.send(t, time.Second, model.Snapshot{
		Counters: []model.Counter{{Series: ser("labels.change", "a:1", "b:2"), Value: 1}},
	})
	fams := f.scrape(t, "")
	if c := one(t, fams, "clash_x", dto.MetricType_COUNTER); c.GetCounter().GetValue() != 1 {
		t.Errorf("first type kept: %v", c)
	}
	if n := len(fams["labels_change"].GetMetric()); n != 2 {
		t.Errorf("a changed label set is a new series: %d series", n)
	}
	if _, ok := fams["api_summary_seconds"]; ok {
		t.Errorf("a quantile label on a summary is dropped")
	}
	if got := testutil.ToFloat64(f.e.m.dropped.WithLabelValues(reasonTypeConflict)); got != 1 {
		t.Errorf("type conflicts counted %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.e.m.dropped.WithLabelValues(reasonReservedLabel)); got != 1 {
		t.Errorf("reserved labels counted %v, want 1", got)
	}
}

func TestLabelsTTLDropAndReload(t *testing.T) {
	f := newFixture(t, testMappings)
	f.send(t, 0, model.Snapshot{
		Counters: []model.Counter{
			{Series: ser("honor.a", "env:tag"), Value: 1},
			{Series: ser("short.a"), Value: 1},
			{Series: ser("noise.a"), Value: 1},
			{Series: ser("bad.tags", "bare", ":v", "k:", "ok-key:v"), Value: 1},
			{Series: ser("neg.c"), Value: -1},
		},
	})
	fams := f.scrape(t, "")
	if h := one(t, fams, "honored", dto.MetricType_COUNTER); labelsOf(h) != "env=tag" {
		t.Errorf("honor_labels: %s", labelsOf(h))
	}
	if b := one(t, fams, "bad_tags", dto.MetricType_COUNTER); labelsOf(b) != "ok_key=v" {
		t.Errorf("tags: %s", labelsOf(b))
	}
	if _, ok := fams["noise_a"]; ok {
		t.Error("action: drop exposed the series")
	}
	if got := testutil.ToFloat64(f.e.m.tags); got != 3 {
		t.Errorf("skipped tags %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.e.m.dropped.WithLabelValues(reasonNegative)); got != 1 {
		t.Errorf("negative counters %v", got)
	}
	// Idle past its 1m ttl (zero increments do not count as samples).
	f.send(t, 2*time.Minute, model.Snapshot{Counters: []model.Counter{{Series: ser("short.a"), Value: 0}}})
	fams = f.scrape(t, "")
	if _, ok := fams["short_lived"]; ok {
		t.Error("series idle past its ttl still exposed")
	}
	if _, ok := fams["honored"]; !ok {
		t.Error("ttl 0 series expired")
	}

	// A bad file keeps the old mappings; a good one applies at the next flush.
	garnertest.WriteFile(t, f.path, "mappings:\n- match: x\n  name: y\n")
	if err := f.e.ReloadMapping(f.path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad file: %v", err)
	}
	f.send(t, 3*time.Minute, model.Snapshot{Counters: []model.Counter{{Series: ser("short.b"), Value: 1}}})
	if _, ok := f.scrape(t, "")["short_lived"]; !ok {
		t.Error("old mappings lost after a bad reload")
	}
	garnertest.WriteFile(t, f.path, "mappings:\n- match: short.*\n  name: renamed\n")
	if err := f.e.ReloadMapping(f.path); err != nil {
		t.Fatal(err)
	}
	f.send(t, 4*time.Minute, model.Snapshot{Counters: []model.Counter{{Series: ser("short.b"), Value: 1}}})
	if c := one(t, f.scrape(t, ""), "renamed", dto.MetricType_COUNTER); c.GetCounter().GetValue() != 1 {
		t.Errorf("renamed = %v", c)
	}
}

func TestRefusesBadMappingFileAtStart(t *testing.T) {
	path := garnertest.WriteFile(t, filepath.Join(t.TempDir(), "m.yml"), "mappings:\n- match: a.b\n  name: ok\n- match: a.*\n  name: bad-name\n")
	o := DefaultOptions()
	o.ListenAddress, o.MappingConfig = "127.0.0.1:0", path
	_, err := New(o, backends.Deps{Registerer: prom.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "exporter.mapping-config") {
		t.Fatalf("New = %v, want the key and line 4 named", err)
	}
}

// TestHistogramModeTimers: a timer-aggregation=histogram timer (Exp, no
// Values) is observed into the mapped summary and histogram from its
// buckets: counts exact, each value within its bucket, native buckets
// those of the same values sent exactly.
func TestHistogramModeTimers(t *testing.T) {
	f := newFixture(t, testMappings)
	// Values (ms) in the middle of native buckets at schema 3, so that the
	// estimates (within 2.19%) stay in the bucket of the value.
	var vals []float64
	for _, k := range []int{-60, -40, -20, -5, 3, 20} {
		vals = append(vals, 1000*math.Exp2((float64(k)+0.5)/8))
	}
	exp := histogram.New(histogram.DefaultMaxBuckets)
	for _, v := range vals {
		exp.Add(v)
	}
	sum := 0.0
	for _, v := range vals {
		sum += v / 1000
	}
	f.send(t, 0, model.Snapshot{Timers: []model.Timer{
		{Series: ser("api.request.hist"), Exp: exp, SampledCount: float64(len(vals)) * 2}, // @0.5
		{Series: ser("api.request.exact"), Values: vals, SampledCount: float64(len(vals)) * 2},
		{Series: ser("api.summary.hist"), Exp: exp, SampledCount: float64(len(vals))},
	}})
	pb := f.scrape(t, `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`)
	var hist, exact *dto.Histogram
	for _, m := range pb["api_request_seconds"].GetMetric() {
		switch labelsOf(m) {
		case "route=hist":
			hist = m.GetHistogram()
		case "route=exact":
			exact = m.GetHistogram()
		}
	}
	if hist == nil || exact == nil {
		t.Fatalf("histograms missing: %v", pb["api_request_seconds"])
	}
	if hist.GetSampleCount() != uint64(2*len(vals)) || math.Abs(hist.GetSampleSum()-2*sum) > 0.022*2*sum {
		t.Errorf("histogram-mode count %d sum %v, want %d and ~%v", hist.GetSampleCount(), hist.GetSampleSum(), 2*len(vals), 2*sum)
	}
	for i, b := range exact.GetBucket() {
		if hb := hist.GetBucket()[i]; hb.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("classic bucket le=%v: %d, exact mode %d", b.GetUpperBound(), hb.GetCumulativeCount(), b.GetCumulativeCount())
		}
	}
	if fmt.Sprint(hist.GetPositiveSpan(), hist.GetPositiveDelta(), hist.GetSchema()) != fmt.Sprint(exact.GetPositiveSpan(), exact.GetPositiveDelta(), exact.GetSchema()) {
		t.Errorf("native buckets differ:\n hist  %v %v\n exact %v %v", hist.GetPositiveSpan(), hist.GetPositiveDelta(), exact.GetPositiveSpan(), exact.GetPositiveDelta())
	}
	s := one(t, pb, "api_summary_seconds", dto.MetricType_SUMMARY).GetSummary()
	slices.Sort(vals)
	if med := s.GetQuantile()[0].GetValue(); s.GetSampleCount() != uint64(len(vals)) || med < vals[2]/1000*0.978 || med > vals[3]/1000*1.022 {
		t.Errorf("summary count %d median %v, want %d and ~%v..%v", s.GetSampleCount(), med, len(vals), vals[2]/1000, vals[3]/1000)
	}
	if got := testutil.ToFloat64(f.e.m.estimated); got != float64(2*len(vals)) {
		t.Errorf("estimated observations %v, want %d (values, not repeats)", got, 2*len(vals))
	}
}

// TestNoMappingFile: without exporter.mapping-config every name is escaped
// and exposed with statsd_exporter's defaults (New used to crash on it).
func TestNoMappingFile(t *testing.T) {
	o := DefaultOptions()
	o.ListenAddress = "127.0.0.1:0"
	e, err := New(o, backends.Deps{Registerer: prom.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SendMetrics(context.Background(), &model.Snapshot{
		Counters: []model.Counter{{Series: ser("no.mapping-here"), Value: 2}},
		Timers:   []model.Timer{{Series: ser("no.timer"), Values: []float64{10}, SampledCount: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	fams, _ := e.gather()
	if len(fams) != 2 || fams[0].GetName() != "no_mapping_here" || fams[1].GetType() != dto.MetricType_SUMMARY {
		t.Errorf("families %v", fams)
	}
}

// TestUnscaledTimers: values sent as h or d are observed as they are, ms
// values ÷ 1000, as statsd_exporter's line parser does.
func TestUnscaledTimers(t *testing.T) {
	f := newFixture(t, testMappings)
	f.send(t, 0, model.Snapshot{Timers: []model.Timer{
		{Series: ser("api.summary.h"), Values: []float64{0.25, 0.5}, SampledCount: 2, Unscaled: true},
		{Series: ser("api.summary.ms"), Values: []float64{250, 500}, SampledCount: 2},
		{Series: ser("classic.h"), Values: []float64{0.5}, SampledCount: 1, Unscaled: true},
	}})
	fams := f.scrape(t, "")
	for _, m := range fams["api_summary_seconds"].GetMetric() {
		if s := m.GetSummary(); s.GetSampleSum() != 0.75 || s.GetSampleCount() != 2 {
			t.Errorf("%s: sum %v count %d, want 0.75 and 2", labelsOf(m), s.GetSampleSum(), s.GetSampleCount())
		}
	}
	if h := one(t, fams, "classic_seconds", dto.MetricType_HISTOGRAM).GetHistogram(); h.GetSampleSum() != 0.5 || h.GetBucket()[2].GetCumulativeCount() != 1 || h.GetBucket()[1].GetCumulativeCount() != 0 {
		t.Errorf("classic h: %v", h)
	}
}
