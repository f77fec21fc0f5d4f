package aggregator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

func benchAgg(b *testing.B, shards int) (*Aggregator, func()) {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	a := New(Options{Shards: shards, QueueLines: 1 << 20, PercentThresholds: []float64{90}, HistogramLimit: 64}, nil, log, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	return a, func() { cancel(); <-done }
}

// waitDrained waits until the shards applied everything queued.
func waitDrained(a *Aggregator) {
	for a.QueuedLines() > 0 {
		time.Sleep(50 * time.Microsecond)
	}
}

// BenchmarkRoute measures parse + route + apply per line, per type, through
// one reader and two shards, with 1000 distinct series.
func BenchmarkRoute(b *testing.B) {
	for _, bc := range []struct{ name, format string }{
		{"counter", "api.request.%d:1|c|#env:prod,region:us"},
		{"gauge", "queue.depth.%d:+1|g"},
		{"timer", "api.latency.%d:12.5|ms|#env:prod"},
		{"set", "users.%d:user123|s"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, stop := benchAgg(b, 2)
			defer stop()
			r := a.NewRouter("bench")
			var lines []string
			for i := 0; i < 20; i++ {
				lines = append(lines, fmt.Sprintf(bc.format, i*53%1000))
			}
			dg := []byte(strings.Join(lines, "\n"))
			buf := make([]byte, len(dg))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(lines) {
				copy(buf, dg)
				r.HandleDatagram(buf, src, false)
				r.Flush()
				if i%(1<<16) == 0 {
					waitDrained(a) // keep the queues from overflowing
				}
			}
			waitDrained(a)
		})
	}
}

// BenchmarkFlush1M measures one flush of 1M series (250k of each type) held
// by two shards.
func BenchmarkFlush1M(b *testing.B) {
	a, stop := benchAgg(b, 2)
	defer stop()
	r := a.NewRouter("bench")
	fill := func() {
		var line []byte
		for i := 0; i < 250_000; i++ {
			for _, f := range []string{"c.%d:1|c", "g.%d:1|g", "t.%d:1|ms", "s.%d:x|s"} {
				line = fmt.Appendf(line[:0], f, i)
				r.HandleLine(line)
			}
			if i%1000 == 0 {
				r.Flush()
				waitDrained(a)
			}
		}
		r.Flush()
		waitDrained(a)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill()
		b.StartTimer()
		s, err := a.Flush(context.Background(), time.Now())
		if err != nil || s.Len() != 1_000_000 {
			b.Fatalf("flush: %v, %d series", err, s.Len())
		}
	}
}
