//go:build linux

package receiver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/model"
)

var src = netip.MustParseAddr("10.0.0.7")

// newLines runs an aggregator of shards shards (0: 3) and returns the line
// handling that feeds it, with rules compiled from cfg (nil: none).
func newLines(t testing.TB, shards int, opts Options, cfg *filter.Config) *Lines {
	t.Helper()
	reg := prometheus.NewRegistry()
	if cfg != nil {
		rules, err := filter.New(*cfg, reg)
		if err != nil {
			t.Fatal(err)
		}
		opts.Rules = rules
	}
	if shards == 0 {
		shards = 3
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	a := aggregator.New(aggregator.Options{Shards: shards, MaxQueuedSamples: 1 << 16, PercentThresholds: []float64{90}, HistogramLimit: 64}, log, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return NewLines(opts, a, nil, log, reg)
}

// snapshot flushes l's aggregator.
func snapshot(t testing.TB, l *Lines) *model.Snapshot {
	t.Helper()
	s, err := l.agg.Snapshot(context.Background(), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitDrained waits until the shards applied everything queued.
func waitDrained(l *Lines) {
	for l.agg.QueuedSamples() > 0 {
		time.Sleep(50 * time.Microsecond)
	}
}

// harness sends datagrams from src through one LineHandler.
type harness struct {
	t *testing.T
	l *Lines
	r *LineHandler
}

func newHarness(t *testing.T, opts Options) *harness {
	l := newLines(t, 3, opts, nil)
	return &harness{t: t, l: l, r: l.NewHandler("test")}
}

// send feeds one datagram from src.
func (h *harness) send(lines ...string) {
	h.r.HandleDatagram([]byte(strings.Join(lines, "\n")), src, false)
	h.r.Handoff()
}

func (h *harness) flush() *model.Snapshot { return snapshot(h.t, h.l) }

// allocsPerLine is the allocations per line of one datagram of lines
// through h's LineHandler, after a warm-up in which their series and the
// pooled batches come to exist.
func (h *harness) allocsPerLine(lines []string) float64 {
	dg := []byte(strings.Join(lines, "\n"))
	buf := make([]byte, len(dg))
	run := func() {
		copy(buf, dg)
		h.r.HandleDatagram(buf, src, false)
		h.r.Handoff()
	}
	for i := 0; i < 100; i++ {
		run()
	}
	return testing.AllocsPerRun(200, run) / float64(len(lines))
}

// key is a series as "name|tags|source".
func key(s model.Series) string {
	return s.Name + "|" + strings.Join(s.Tags, ",") + "|" + s.Source
}

// byKey indexes series by key.
func byKey[T any](xs []T, series func(*T) model.Series) map[string]T {
	out := make(map[string]T, len(xs))
	for i := range xs {
		out[key(series(&xs[i]))] = xs[i]
	}
	return out
}

func counters(s *model.Snapshot) map[string]model.Counter {
	return byKey(s.Counters, func(c *model.Counter) model.Series { return c.Series })
}

func gauges(s *model.Snapshot) map[string]model.Gauge {
	return byKey(s.Gauges, func(g *model.Gauge) model.Series { return g.Series })
}

func timers(s *model.Snapshot) map[string]model.Timer {
	return byKey(s.Timers, func(t *model.Timer) model.Series { return t.Series })
}

// benchLines times datagrams of 20 lines made from format (with a series
// number) through one LineHandler of l; one op is one line.
func benchLines(b *testing.B, l *Lines, format string) {
	r := l.NewHandler("bench")
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, fmt.Sprintf(format, i*53%1000))
	}
	dg := []byte(strings.Join(lines, "\n"))
	buf := make([]byte, len(dg))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(lines) {
		copy(buf, dg)
		r.HandleDatagram(buf, src, false)
		r.Handoff()
		if i%(1<<16) == 0 {
			waitDrained(l) // keep the queues from overflowing
		}
	}
}
