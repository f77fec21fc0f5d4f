//go:build linux

package receiver

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/metrics"
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
func snapshot(t testing.TB, l *Lines) *metrics.Snapshot {
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

func (h *harness) flush() *metrics.Snapshot { return snapshot(h.t, h.l) }

// key is a series as "name|tags|source".
func key(s metrics.Series) string {
	return s.Name + "|" + strings.Join(s.Tags, ",") + "|" + s.Source
}

func counters(s *metrics.Snapshot) map[string]metrics.Counter {
	out := map[string]metrics.Counter{}
	for _, c := range s.Counters {
		out[key(c.Series)] = c
	}
	return out
}

func gauges(s *metrics.Snapshot) map[string]float64 {
	out := map[string]float64{}
	for _, g := range s.Gauges {
		out[key(g.Series)] = g.Value
	}
	return out
}

func timers(s *metrics.Snapshot) map[string]metrics.Timer {
	out := map[string]metrics.Timer{}
	for _, x := range s.Timers {
		out[key(x.Series)] = x
	}
	return out
}

// counterValue is the sum of the counter name's children in g.
func counterValue(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
