package aggregator

import (
	"context"
	"fmt"
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
