package aggregator

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// src is the source of the lines a harness sends.
const src = "10.0.0.7"

type harness struct {
	t   *testing.T
	a   *Aggregator
	b   *Batcher
	reg *prometheus.Registry
	now time.Time

	m    statsd.Metric
	key  []byte
	tags [][]byte
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.PercentThresholds == nil {
		opts.PercentThresholds = []float64{90}
	}
	if opts.HistogramLimit == 0 {
		opts.HistogramLimit = 64
	}
	if opts.Shards == 0 {
		opts.Shards = 3
	}
	if opts.MaxQueuedSamples == 0 {
		opts.MaxQueuedSamples = 1 << 16
	}
	reg := prometheus.NewRegistry()
	a := New(opts, garnertest.QuietLog(), reg)
	garnertest.RunUntilCleanup(t, a)
	h := &harness{t: t, a: a, b: a.NewBatcher(NeverBlock), reg: reg, now: time.Now()}
	a.lastTime = h.now
	return h
}

// cardinality is Aggregator.Cardinality, failing the test on a timeout.
func (h *harness) cardinality(n int) (int, []NameCount) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	total, top, err := h.a.Cardinality(ctx, n)
	if err != nil {
		h.t.Fatalf("Cardinality: %v", err)
	}
	return total, top
}

// send hands the samples of statsd lines from src to the shards, as a
// listener does minus its line handling (no host tag, no shaping, gauge
// deltas on: package receiver tests those). Lines that do not parse are
// skipped.
func (h *harness) send(lines ...string) {
	m := &h.m
	for _, l := range lines {
		if m.Parse([]byte(l)) != nil || m.Kind != statsd.KindMetric {
			continue
		}
		h.tags = append(h.tags[:0], m.Tags...)
		h.key = AppendSeriesKey(h.key[:0], m.Name, h.tags, []byte(src))
		h.b.SeriesAt(h.key, m.Timestamp*int64(time.Second)) // |T: as the receiver with timestamps = "honor"
		if m.Type == statsd.Set {
			h.b.Member(m.Member, m.Rate)
			continue
		}
		for i, v := range m.Values {
			h.b.Sample(m.Type, v, m.Rate, m.Type == statsd.Gauge && m.Delta[i])
		}
	}
	h.b.Send(context.Background())
}

// flush advances the clock by d and flushes.
func (h *harness) flush(d time.Duration) *model.Snapshot {
	h.t.Helper()
	h.now = h.now.Add(d)
	s, err := h.a.Snapshot(context.Background(), h.now)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func key(s model.Series) string {
	return s.Name + "|" + strings.Join(s.Tags, ",") + "|" + s.Source
}

func counters(s *model.Snapshot) map[string]model.Counter {
	out := map[string]model.Counter{}
	for _, c := range s.Counters {
		out[key(c.Series)] = c
	}
	return out
}

func gauges(s *model.Snapshot) map[string]float64 {
	out := map[string]float64{}
	for _, g := range s.Gauges {
		out[key(g.Series)] = g.Value
	}
	return out
}

func timers(s *model.Snapshot) map[string]model.Timer {
	out := map[string]model.Timer{}
	for _, x := range s.Timers {
		out[key(x.Series)] = x
	}
	return out
}

func pcts(t model.Timer) map[string]float64 {
	out := map[string]float64{}
	for _, p := range t.Percentiles {
		out[p.Name] = p.Value
	}
	return out
}

func TestCounters(t *testing.T) {
	h := newHarness(t, Options{})
	h.send("c:0.4|c", "c:0.4|c", "r:1|c|@0.1", "p:1:2:3|c", "n:5|c", "n:-2|c")
	s := h.flush(10 * time.Second)
	cs := counters(s)
	for name, want := range map[string]float64{"c||10.0.0.7": 0.8, "r||10.0.0.7": 10, "p||10.0.0.7": 6, "n||10.0.0.7": 3} {
		c, ok := cs[name]
		if !ok {
			t.Fatalf("missing %s in %v", name, cs)
		}
		if math.Abs(c.Value-want) > 1e-12 || math.Abs(c.PerSecond-want/10) > 1e-12 {
			t.Errorf("%s = %v (%v/s), want %v (%v/s)", name, c.Value, c.PerSecond, want, want/10)
		}
	}
}

func TestGauges(t *testing.T) {
	h := newHarness(t, Options{})
	// Last value in arrival order wins, within one datagram too.
	h.send("g:1|g", "g:7|g", "g:3|g", "d:10|g", "d:+5|g", "d:-2|g", "p:1:2:9|g", "new:-4|g")
	gs := gauges(h.flush(time.Second))
	for k, want := range map[string]float64{"g||10.0.0.7": 3, "d||10.0.0.7": 13, "p||10.0.0.7": 9, "new||10.0.0.7": -4} {
		if gs[k] != want {
			t.Errorf("%s = %v, want %v", k, gs[k], want)
		}
	}
	h.send("d:+1|g")
	if got := gauges(h.flush(time.Second))["d||10.0.0.7"]; got != 14 {
		t.Errorf("delta across flushes: %v, want 14", got)
	}

}

func TestTimers(t *testing.T) {
	h := newHarness(t, Options{PercentThresholds: []float64{90, 99.9, -10, 50}})
	var lines []string
	for i := 1; i <= 10; i++ {
		lines = append(lines, fmt.Sprintf("t:%d|ms", i))
	}
	lines = append(lines, "packed:1:2:3|ms", "rate:5|ms|@0.5", "one:4|ms")
	h.send(lines...)
	ts := timers(h.flush(2 * time.Second))

	tm := ts["t||10.0.0.7"]
	if tm.Count != 10 || tm.Lower != 1 || tm.Upper != 10 || tm.Mean != 5.5 || tm.Median != 5.5 || tm.Sum != 55 || tm.SumSquares != 385 || tm.PerSecond != 5 {
		t.Errorf("timer stats wrong: %+v", tm)
	}
	if math.Abs(tm.Std-math.Sqrt(8.25)) > 1e-12 {
		t.Errorf("std = %v", tm.Std)
	}
	p := pcts(tm)
	want := map[string]float64{
		"count_90": 9, "mean_90": 5, "sum_90": 45, "sum_squares_90": 285, "upper_90": 9,
		"count_99_9": 10, "upper_99_9": 10,
		"count_-10": 1, "mean_-10": 10, "sum_-10": 10, "lower_-10": 10,
		"count_50": 5, "upper_50": 5,
	}
	for k, v := range want {
		if got, ok := p[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if pk := ts["packed||10.0.0.7"]; pk.Count != 3 || pk.Sum != 6 {
		t.Errorf("packed values must each count: %+v", pk)
	}
	if rt := ts["rate||10.0.0.7"]; rt.Count != 2 || rt.SampledCount != 2 || rt.PerSecond != 1 {
		t.Errorf("sample rate must scale the count: %+v", rt)
	}
	if one := pcts(ts["one||10.0.0.7"]); one["lower_-10"] != 4 || one["upper_90"] != 4 || one["count_90"] != 1 {
		t.Errorf("one value: %v", one)
	}

	// Idle: zeros, no percentiles.
	idle := timers(h.flush(time.Second))["t||10.0.0.7"]
	if idle.Count != 0 || idle.Upper != 0 || len(idle.Percentiles) != 0 {
		t.Errorf("idle timer: %+v", idle)
	}
}

// TestNegativePercentileAllValues is gostatsd's crash: -100 with a few values.
func TestNegativePercentileAllValues(t *testing.T) {
	h := newHarness(t, Options{PercentThresholds: []float64{-100, 100}})
	h.send("t:1|ms", "t:2|ms", "t:3|ms")
	p := pcts(timers(h.flush(time.Second))["t||10.0.0.7"])
	if p["count_-100"] != 3 || p["sum_-100"] != 6 || p["lower_-100"] != 1 || p["upper_100"] != 3 {
		t.Fatalf("got %v", p)
	}
}

func TestDisabledSubMetrics(t *testing.T) {
	h := newHarness(t, Options{DisabledSubMetrics: model.SubMeanPct | model.SubUpperPct})
	h.send("t:1|ms", "t:2|ms")
	p := pcts(timers(h.flush(time.Second))["t||10.0.0.7"])
	if _, ok := p["mean_90"]; ok {
		t.Error("mean_90 disabled but present")
	}
	if _, ok := p["upper_90"]; ok {
		t.Error("upper_90 disabled but present")
	}
	if _, ok := p["count_90"]; !ok {
		t.Error("count_90 missing")
	}
}

func TestHistogram(t *testing.T) {
	h := newHarness(t, Options{HistogramLimit: 3})
	h.send("h:1|ms|#gsd_histogram:5_10_20_50", "h:7|ms|#gsd_histogram:5_10_20_50", "h:100|ms|#gsd_histogram:5_10_20_50")
	tm := timers(h.flush(time.Second))["h|gsd_histogram:5_10_20_50|10.0.0.7"]
	want := []model.Bucket{{Le: 5, Count: 1}, {Le: 10, Count: 2}, {Le: 20, Count: 2}, {Le: math.Inf(1), Count: 3}}
	if fmt.Sprint(tm.Histogram) != fmt.Sprint(want) {
		t.Fatalf("buckets %v, want %v (limit 3 keeps the first three bounds)", tm.Histogram, want)
	}
}

func TestSets(t *testing.T) {
	h := newHarness(t, Options{})
	h.send("s:a|s", "s:b|s", "s:a|s", "s:a:b|s")
	s := h.flush(time.Second)
	if len(s.Sets) != 1 || len(s.Sets[0].Members) != 3 {
		t.Fatalf("sets: %+v", s.Sets)
	}
	s = h.flush(time.Second)
	if len(s.Sets) != 1 || len(s.Sets[0].Members) != 0 {
		t.Fatalf("idle set must be 0: %+v", s.Sets)
	}
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, Options{Expiry: Expiry{Counter: 3 * time.Second, Gauge: 0, Set: -1, Timer: 3 * time.Second}})
	h.send("c:1|c", "g:5|g", "s:x|s", "t:1|ms")
	s := h.flush(time.Second)
	if s.Len() != 4 {
		t.Fatalf("first flush: %d series", s.Len())
	}
	// The set expires at once (negative); the counter and timer live 3s idle;
	// the gauge never expires and repeats its value.
	for i, want := range []int{3, 3, 3, 1, 1} {
		s = h.flush(time.Second)
		if s.Len() != want {
			t.Fatalf("flush %d: %d series, want %d", i+2, s.Len(), want)
		}
	}
	if gauges(s)["g||10.0.0.7"] != 5 {
		t.Fatalf("gauge must keep its value: %v", gauges(s))
	}
}

// A negative expiry (forwarder mode sets -1ns) drops every series at the
// flush after its samples, even when the samples are stamped later than the
// flush's clock (a batch handed off while the flush starts): otherwise a
// forwarder sends the series again as a zero, and the tier stores a 0 that
// nobody sent.
func TestNegativeExpiryEveryFlush(t *testing.T) {
	h := newHarness(t, Options{Expiry: Expiry{Counter: -1, Gauge: -1, Set: -1, Timer: -1}})
	h.send("c:1|c", "g:5|g", "s:x|s", "t:1|ms") // stamped after h.now
	if s := h.flush(0); s.Len() != 4 {
		t.Fatalf("first flush: %d series, want 4", s.Len())
	}
	if s := h.flush(time.Second); s.Len() != 0 {
		t.Fatalf("second flush: %d series, want none (counters %v)", s.Len(), counters(s))
	}
}

// TestExpiredSeriesFreeTheirCardinality: a series that expires gives its
// place under max-series and max-series-per-metric back, for every type,
// flush after flush (the index zeroes a deleted state: the cardinality
// count must be given back with the name before that).
func TestExpiredSeriesFreeTheirCardinality(t *testing.T) {
	h := newHarness(t, Options{Shards: 2, MaxSeries: 100, MaxSeriesPerMetric: 2, CardinalityOverflow: true,
		Expiry: Expiry{Counter: -1, Gauge: -1, Set: -1, Timer: -1}})
	for i := range 5 {
		h.send("fz:1|c", "fg:1|g", "fs:a|s", "ft:1|ms")
		cs := counters(h.flush(time.Duration(i+1) * time.Second))
		if c, ok := cs["fz||10.0.0.7"]; !ok || c.Value != 1 {
			t.Fatalf("flush %d: counters %v, want fz = 1, not the overflow series", i, cs)
		}
		h.a.card.mu.Lock()
		total, names := h.a.card.total.Load(), maps.Clone(h.a.card.byName)
		h.a.card.mu.Unlock()
		if total != 0 || len(names) != 0 {
			t.Fatalf("flush %d: every series expired, yet the cardinality index holds %d series: %v", i, total, names)
		}
	}
}

func TestQueueFullDropsAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(Options{Shards: 1, MaxQueuedSamples: batchRecords}, garnertest.QuietLog(), reg) // shards not running
	b := a.NewBatcher(NeverBlock)
	b.Series([]byte("c\x00\x00"))
	for i := 0; i < 3*batchRecords; i++ {
		b.Sample(statsd.Counter, 1, 1, false)
	}
	if dropped := b.Send(context.Background()); dropped != 2*batchRecords {
		t.Errorf("Send says %d dropped, want %d", dropped, 2*batchRecords)
	}
	if got := testutil.ToFloat64(a.m.queueDropped); got != 2*batchRecords {
		t.Fatalf("dropped %v, want %d", got, 2*batchRecords)
	}
}

func TestShardsSplitSeries(t *testing.T) {
	h := newHarness(t, Options{Shards: 4})
	var lines []string
	for i := 0; i < 1000; i++ {
		lines = append(lines, fmt.Sprintf("c%d:1|c", i%100))
	}
	h.send(lines...)
	cs := counters(h.flush(time.Second))
	if len(cs) != 100 {
		t.Fatalf("%d series, want 100", len(cs))
	}
	for k, c := range cs {
		if c.Value != 10 {
			t.Fatalf("%s = %v, want 10 (a series split across shards?)", k, c.Value)
		}
	}
	var n []int
	for _, s := range h.a.shards {
		n = append(n, s.counters.len())
	}
	sort.Ints(n)
	if n[0] == 0 {
		t.Errorf("a shard got no series: %v", n)
	}
}

func TestCardinalityLimits(t *testing.T) {
	h := newHarness(t, Options{MaxSeries: 6, MaxSeriesPerMetric: 3, CardinalityOverflow: true})
	var lines []string
	for i := 0; i < 5; i++ {
		lines = append(lines, fmt.Sprintf("req:1|c|#user:%d", i))
	}
	h.send(lines...)
	cs := counters(h.flush(time.Second))
	// 3 series of req, the 2 refused samples folded into req.__overflow__.
	if len(cs) != 4 || cs["req.__overflow__||"].Value != 2 {
		t.Fatalf("per-metric limit: %v", cs)
	}
	if got := testutil.ToFloat64(h.a.card.rejected[rejectMaxSeriesPerMetric]); got != 2 {
		t.Errorf("rejected samples = %v, want 2", got)
	}
	// max-series: 6 in all (4 taken), no overflow series beyond it.
	lines = lines[:0]
	for i := 0; i < 4; i++ {
		lines = append(lines, fmt.Sprintf("m%d:1|c", i))
	}
	h.send(lines...)
	h.flush(time.Second)
	total, top := h.cardinality(2)
	if total != 6 || len(top) != 2 || top[0].Name != "req" || top[0].Series != 3 {
		t.Fatalf("max-series: total %d, top %v", total, top)
	}
	if got := testutil.ToFloat64(h.a.card.rejected[rejectMaxSeries]); got != 2 {
		t.Errorf("max_series rejections = %v, want 2", got)
	}
}

func TestCardinalityExpiryFreesSlots(t *testing.T) {
	h := newHarness(t, Options{MaxSeries: 3, Expiry: Expiry{Counter: -1}})
	h.send("a:1|c", "b:1|c", "c:1|c", "d:1|c")
	if n := len(h.flush(time.Second).Counters); n != 3 {
		t.Fatalf("%d series, want 3", n)
	}
	h.send("e:1|c", "f:1|c", "g:1|c")
	if n := len(h.flush(time.Second).Counters); n != 3 {
		t.Fatalf("expired series must free their slots: %d series, want 3", n)
	}
}

// TestCardinalityCountedOrAsked: the names the shards count when asked
// (no max-series-per-metric) are those counted as series come and go (with
// it), timestamp slots and expiry included.
func TestCardinalityCountedOrAsked(t *testing.T) {
	var got [2]string
	for i, perMetric := range []int{0, 1000} {
		h := newHarness(t, Options{Shards: 3, MaxSeriesPerMetric: perMetric,
			Expiry:         Expiry{Counter: -1, Gauge: time.Hour, Set: time.Hour, Timer: time.Hour},
			TimestampSlots: TimestampSlots{Interval: 10 * time.Second}})
		h.flush(10 * time.Second)
		var lines []string
		for k := range 50 {
			lines = append(lines, fmt.Sprintf("g%d:1|g|#k:%d", k%7, k), fmt.Sprintf("t%d:1|ms|#k:%d", k%3, k),
				fmt.Sprintf("s:%d|s|#k:%d", k, k%5), fmt.Sprintf("c%d:1|c|#k:%d", k%4, k))
		}
		h.send(lines...)
		h.flush(10 * time.Second) // the counters expire: negative expiry
		h.send("c0:1|c", fmt.Sprintf("p:1|c|T%d", h.now.Unix()-25), fmt.Sprintf("p:1|c|#k:1|T%d", h.now.Unix()-25))
		// A barrier: asking the shards drains their queues first, so
		// that the counted names include every sample sent.
		if _, err := h.a.countNames(context.Background()); err != nil {
			t.Fatal(err)
		}
		total, top := h.cardinality(0)
		got[i] = fmt.Sprint(total, top)
	}
	// 50 gauges, 50 timers, 5 sets (the tag k%5), two slot counters and
	// the live c0; the first counters expired.
	const want = "108 [{t0 17} {t1 17} {t2 16} {g0 8} {g1 7} {g2 7} {g3 7} {g4 7} {g5 7} {g6 7} {s 5} {p 2} {c0 1}]"
	for i, mode := range []string{"asked", "counted"} {
		if got[i] != want {
			t.Errorf("%s: %s, want %s", mode, got[i], want)
		}
	}
}

func TestCardinalityTopNames(t *testing.T) {
	h := newHarness(t, Options{})
	h.send("a:1|c|#x:1", "a:1|c|#x:2", "a:1|g|#x:3", "b:1|c", "c:1|ms|#k:1", "c:1|ms|#k:2")
	h.flush(time.Second) // make sure the shards applied everything
	total, top := h.cardinality(2)
	if total != 6 || fmt.Sprint(top) != "[{a 3} {c 2}]" {
		t.Fatalf("total %d top %v", total, top)
	}
}

// TestTopNamesMatchesSort: the heap's top n are the first n of all the
// names sorted by series (most first), then name.
func TestTopNamesMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	byName := make(map[string]int)
	for i := range 3000 {
		byName[fmt.Sprintf("m%d", i)] = 1 + rng.IntN(50) // many ties
	}
	var all []NameCount
	for name, k := range byName {
		all = append(all, NameCount{name, k})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Series != all[j].Series {
			return all[i].Series > all[j].Series
		}
		return all[i].Name < all[j].Name
	})
	for _, n := range []int{0, 1, 2, 20, 2999, 3000, 10000} {
		want := all
		if n > 0 && n < len(all) {
			want = all[:n]
		}
		if got := topNames(byName, n); !slices.Equal(got, want) {
			t.Fatalf("n=%d: got %d names, first %v; want %d, first %v", n, len(got), got[:min(3, len(got))], len(want), want[:3])
		}
	}
}
