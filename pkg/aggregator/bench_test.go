package aggregator

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/statsd"
)

func benchAgg(b *testing.B, shards int) (*Aggregator, func()) {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	a := New(Options{Shards: shards, MaxQueuedSamples: 1 << 20, PercentThresholds: []float64{90}, HistogramLimit: 64}, log, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	return a, func() { cancel(); <-done }
}

// waitDrained waits until the shards applied everything queued.
func waitDrained(a *Aggregator) {
	for a.QueuedSamples() > 0 {
		time.Sleep(50 * time.Microsecond)
	}
}

// BenchmarkFlush1M measures one flush of 1M series (250k of each type) held
// by two shards.
func BenchmarkFlush1M(b *testing.B) {
	a, stop := benchAgg(b, 2)
	defer stop()
	bt := a.NewBatcher(NeverBlock)
	fill := func() {
		var key, name []byte
		for i := 0; i < 250_000; i++ {
			for _, f := range []struct {
				name string
				typ  statsd.Type
			}{{"c.%d", statsd.Counter}, {"g.%d", statsd.Gauge}, {"t.%d", statsd.Timer}, {"s.%d", statsd.Set}} {
				name = fmt.Appendf(name[:0], f.name, i)
				key = AppendSeriesKey(key[:0], name, nil, nil)
				bt.Series(key)
				if f.typ == statsd.Set {
					bt.Member([]byte("x"), 1)
				} else {
					bt.Sample(f.typ, 1, 1, false)
				}
			}
			if i%1000 == 0 {
				bt.Send(context.Background())
				waitDrained(a)
			}
		}
		bt.Send(context.Background())
		waitDrained(a)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill()
		b.StartTimer()
		s, err := a.Snapshot(context.Background(), time.Now())
		if err != nil || s.Len() != 1_000_000 {
			b.Fatalf("flush: %v, %d series", err, s.Len())
		}
	}
}

// BenchmarkHighCardinality is the UDP high-cardinality row of BENCHMARKS.md
// without the sockets: 100k series of each of c, g, ms, s (400k), the types
// interleaved and the series in turn as garner-load sends them, through a
// Batcher (key copy, hash, hand-off) into two shards applied on this
// goroutine. Every sample's series is cold: 400k series do not fit in the
// caches. One op is one sample.
func BenchmarkHighCardinality(b *testing.B) {
	a, sample, apply := highCardinality(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		sample()
	}
	apply()
	b.StopTimer()
	// CPU time is steadier than wall time on a machine shared with other work.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if got := a.shards[0].queued.Load() + a.shards[1].queued.Load(); got != 0 {
		b.Fatalf("%d samples not applied", got)
	}
}

// BenchmarkCardinalityAsked is /debug/cardinality without
// max-series-per-metric: the two running shards count the names of 400k
// series (BenchmarkHighCardinality's), the aggregator adds them up and
// sorts them. One op is one answer.
func BenchmarkCardinalityAsked(b *testing.B) {
	a, _, _ := highCardinality(100_000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		total, top, err := a.Cardinality(ctx, 20)
		if err != nil || total != 400_000 || len(top) != 20 {
			b.Fatalf("Cardinality: %d series, %d names, %v", total, len(top), err)
		}
	}
}

// highCardinality is an aggregator of two shards (not running: apply runs
// them on the caller's goroutine) holding perType series of each of c, g,
// ms, s, the types interleaved and the series in turn as garner-load sends
// them. sample hands the next sample over through a Batcher (key copy,
// hash, hand-off); apply sends the batch and applies what is queued.
func highCardinality(perType int) (a *Aggregator, sample, apply func()) {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	a = New(Options{Shards: 2, MaxQueuedSamples: 1 << 20, PercentThresholds: []float64{90}, HistogramLimit: 64}, log, prometheus.NewRegistry())
	types := []statsd.Type{statsd.Counter, statsd.Gauge, statsd.Timer, statsd.Set}
	prefixes := []string{"gl.c.s", "gl.g.s", "gl.ms.s", "gl.s.s"}
	keys := make([][]byte, 0, len(types)*perType)
	for i := 0; i < perType; i++ {
		for _, p := range prefixes {
			name := strconv.AppendInt([]byte(p), int64(i), 10)
			keys = append(keys, AppendSeriesKey(nil, name, nil, []byte("127.0.0.1")))
		}
	}
	var members [1000][]byte
	for i := range members {
		members[i] = strconv.AppendInt(nil, int64(i), 10)
	}
	bt := a.NewBatcher(NeverBlock)
	apply = func() {
		bt.Send(context.Background())
		for _, s := range a.shards {
			s.drain()
		}
	}
	n := 0
	sample = func() {
		series := n / len(types)
		typ := types[n%len(types)]
		bt.Series(keys[n])
		if typ == statsd.Set {
			bt.Member(members[series%1000], 1)
		} else {
			bt.Sample(typ, float64(series%1000), 1, false)
		}
		if n++; n == len(keys) {
			n = 0
		}
		if n%64 == 0 { // a datagram's worth
			bt.Send(context.Background())
		}
		if n%1024 == 0 {
			apply()
		}
	}
	for range keys { // create every series first
		sample()
	}
	apply()
	return a, sample, apply
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
