package aggregator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// latencies are lognormal values of about 1 ms to 2.3 s, as a statsd line each.
func latencies(r *rand.Rand, n int, suffix string) []string {
	lines := make([]string, n)
	for i, v := range garnertest.Latencies(r, n, 1) {
		lines[i] = fmt.Sprintf("lat:%g|ms%s", v, suffix)
	}
	return lines
}

// In histogram mode count, lower, upper and sum stay exact and the
// estimates are within 2% of exact mode's, for the load.
func TestHistogramTimersMatchExact(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	lines := append(latencies(r, 20000, ""), latencies(r, 5000, "|@0.5")...)
	opts := Options{PercentThresholds: []float64{50, 90, 99, -10}}
	exact := newHarness(t, opts)
	opts.TimerAggregation = TimerHistogram
	opts.HistogramMaxBuckets = histogram.DefaultMaxBuckets
	hist := newHarness(t, opts)
	exact.send(lines...)
	hist.send(lines...)
	e := timers(exact.flush(10 * time.Second))["lat||"+src]
	h := timers(hist.flush(10 * time.Second))["lat||"+src]
	if h.Values != nil || h.Exp == nil || e.Exp != nil {
		t.Fatalf("histogram mode: values %d, histogram %v; exact mode histogram %v", len(h.Values), h.Exp != nil, e.Exp != nil)
	}
	if h.Count != 30000 || h.Count != e.Count || h.SampledCount != e.SampledCount || h.PerSecond != e.PerSecond ||
		h.Lower != e.Lower || h.Upper != e.Upper {
		t.Errorf("count/lower/upper %g/%g/%g, exact %g/%g/%g", h.Count, h.Lower, h.Upper, e.Count, e.Lower, e.Upper)
	}
	for name, v := range map[string][2]float64{"sum": {h.Sum, e.Sum}, "sum_squares": {h.SumSquares, e.SumSquares},
		"mean": {h.Mean, e.Mean}, "std": {h.Std, e.Std}} {
		garnertest.CheckRel(t, name, v[0], v[1], 1e-9)
	}
	garnertest.CheckRel(t, "median", h.Median, e.Median, 0.02)
	hp, ep := pcts(h), pcts(e)
	if len(hp) != len(ep) {
		t.Fatalf("percentiles %v, exact %v", hp, ep)
	}
	for name, want := range ep {
		garnertest.CheckRel(t, name, hp[name], want, 0.02)
	}
}

func TestHistogramModeKeepsGsdHistogramExact(t *testing.T) {
	lines := []string{"h:1|ms|#gsd_histogram:1_5", "h:3|ms|#gsd_histogram:1_5", "h:7|ms|#gsd_histogram:1_5"}
	exact := newHarness(t, Options{})
	hist := newHarness(t, Options{TimerAggregation: TimerHistogram})
	exact.send(lines...)
	hist.send(lines...)
	k := "h|gsd_histogram:1_5|" + src
	e, h := timers(exact.flush(time.Second))[k], timers(hist.flush(time.Second))[k]
	if h.Exp != nil || !slices.Equal(h.Histogram, e.Histogram) || len(h.Histogram) != 3 {
		t.Errorf("buckets %v, exact %v", h.Histogram, e.Histogram)
	}
}

func hist(vs ...float64) *histogram.Histogram {
	h := histogram.New(histogram.DefaultMaxBuckets)
	for _, v := range vs {
		h.Add(v)
	}
	return h
}

// exported is the wire form x exports: a histogram's *histogram.Data or a
// sketch's *hll.Data.
func exported[D any](x interface{ Export(*D) }) *D {
	var d D
	x.Export(&d)
	return &d
}

// A series merges forwarded histograms of different scales and raw samples
// into what one histogram of every value would be.
func TestForwardedHistogramsMerge(t *testing.T) {
	h := newHarness(t, Options{TimerAggregation: TimerHistogram, HistogramMaxBuckets: 64})
	narrow, wide := hist(1, 1.001, 1.002), hist(0.001, 5, 7000, -3)
	k := AppendSeriesKey(nil, []byte("t"), nil, []byte(src))
	h.b.Series(k)
	if err := h.b.Histogram(exported[histogram.Data](narrow), 30); err != nil { // sampled at 0.1
		t.Fatal(err)
	}
	if err := h.b.Histogram(exported[histogram.Data](wide), 0); err != nil {
		t.Fatal(err)
	}
	h.b.Sample(statsd.Timer, 42, 1, false)
	h.b.Send(context.Background())
	got := timers(h.flush(time.Second))["t||"+src]
	all := histogram.New(64)
	all.Merge(narrow)
	all.Merge(wide)
	all.Add(42)
	if got.Exp == nil || got.Count != 35 || got.SampledCount != 35 || got.Lower != -3 || got.Upper != 7000 {
		t.Fatalf("count %g, lower %g, upper %g, histogram %v", got.Count, got.Lower, got.Upper, got.Exp != nil)
	}
	gd, wd := exported[histogram.Data](got.Exp), exported[histogram.Data](all)
	if gd.Scale != wd.Scale || !slices.Equal(gd.Positive, wd.Positive) || gd.PositiveOffset != wd.PositiveOffset ||
		!slices.Equal(gd.Negative, wd.Negative) || gd.Count != 8 {
		t.Errorf("merged %+v\nwant %+v", gd, wd)
	}
}

// An aggregator in exact mode takes a forwarded histogram as the values
// its buckets stand for; an invalid one is refused with ErrInvalid.
func TestForwardedHistogramExactMode(t *testing.T) {
	h := newHarness(t, Options{})
	k := AppendSeriesKey(nil, []byte("t"), nil, []byte(src))
	h.b.Series(k)
	if err := h.b.Histogram(exported[histogram.Data](hist(1, 2, 3, 4)), 8); err != nil {
		t.Fatal(err)
	}
	bad := exported[histogram.Data](hist(1))
	bad.Count = 7
	if err := h.b.Histogram(bad, 0); !errors.Is(err, histogram.ErrInvalid) {
		t.Errorf("invalid histogram: %v", err)
	}
	h.b.Send(context.Background())
	got := timers(h.flush(time.Second))["t||"+src]
	if len(got.Values) != 4 || got.Count != 8 || got.Lower != 1 || got.Upper != 4 || got.Exp != nil {
		t.Errorf("values %v, count %g", got.Values, got.Count)
	}
}

// One series, 1M samples in one interval: its memory stays bounded.
func TestHistogramTimerMemoryBounded(t *testing.T) {
	h := newHarness(t, Options{TimerAggregation: TimerHistogram, HistogramMaxBuckets: histogram.DefaultMaxBuckets, Shards: 1, MaxQueuedSamples: 1 << 20})
	r := rand.New(rand.NewPCG(13, 14))
	k := AppendSeriesKey(nil, []byte("t"), nil, []byte(src))
	for sent := 0; sent < 1000000; {
		h.b.Series(k)
		for _, v := range garnertest.Latencies(r, 10000, 2) {
			h.b.Sample(statsd.Timer, v, 1, false)
		}
		sent += 10000
		if d := h.b.Send(context.Background()); d > 0 {
			t.Fatalf("%d samples dropped", d)
		}
		for deadline := time.Now().Add(time.Minute); h.a.QueuedSamples() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	got := timers(h.flush(time.Second))["t||"+src]
	if got.Count != 1000000 || got.Exp == nil {
		t.Fatalf("count %g", got.Count)
	}
	if b := got.Exp.Bytes(); b > 2*1024 {
		t.Errorf("1M samples: the series' histogram holds %d bytes, want ≤ 2 KiB", b)
	}
	t.Logf("1M samples: histogram of %d bytes at scale %d", got.Exp.Bytes(), got.Exp.Scale())
}

func benchTimerSamples(b *testing.B, mode TimerAggregation) {
	a, stop := benchAgg(b, 1)
	stop() // the benchmark drives the shard itself, on its goroutine
	a.opts.TimerAggregation, a.opts.HistogramMaxBuckets = mode, histogram.DefaultMaxBuckets
	s := a.shards[0]
	r := rand.New(rand.NewPCG(1, 1))
	vals := garnertest.Latencies(r, 4096, 1)
	var keys [][]byte
	for i := 0; i < 16; i++ {
		keys = append(keys, AppendSeriesKey(nil, fmt.Appendf(nil, "t.%d", i), nil, nil))
	}
	flush := func() {
		c := s.counts()
		snap := &model.Snapshot{Timers: make([]model.Timer, c.timers)}
		s.snapshot(flushReq{now: time.Now(), interval: time.Second}, fillSpec{snap: snap, pcts: make([]model.Percentile, 0, c.pctsMax)})
	}
	batch := getBatch(0, time.Now().UnixNano())
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rec := batch.addKey(keys[n&15])
		rec.typ, rec.val = statsd.Timer, vals[n&4095]
		batch.recs = append(batch.recs, rec)
		n++
		if batch.full() {
			s.queued.Add(int64(len(batch.recs)))
			s.apply(batch)
			batch = getBatch(0, time.Now().UnixNano())
		}
		if n%100000 == 0 { // a flush every 100k samples (6250 per series): exact mode's sort is part of its cost
			flush()
		}
	}
}

// BenchmarkTimerSample is the CPU per timer sample, ingest and flush, of
// each mode.
func BenchmarkTimerSample(b *testing.B) {
	b.Run("exact", func(b *testing.B) { benchTimerSamples(b, TimerExact) })
	b.Run("histogram", func(b *testing.B) { benchTimerSamples(b, TimerHistogram) })
}
