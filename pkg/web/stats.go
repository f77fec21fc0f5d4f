package web

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Totals is garner's own counters, read from the self-metrics registry: the
// numbers the status page and /expvar show.
type Totals struct {
	ReceivedLines     float64            `json:"received_lines"`
	ReceivedDatagrams float64            `json:"received_datagrams"`
	ReceivedBytes     float64            `json:"received_bytes"`
	BadLines          float64            `json:"bad_lines"`
	BadLinesByReason  map[string]float64 `json:"bad_lines_by_reason"`
	// Drops is every garner_*dropped*_total counter, summed over its labels,
	// by metric name (the units differ: lines, flushes, series, bytes).
	Drops      map[string]float64 `json:"drops"`
	DropsTotal float64            `json:"drops_total"` // lines, series and datagrams lost (not flushes or bytes)
	Series     map[string]float64 `json:"series"`      // by type, at the last flush
	Flushes    float64            `json:"flushes"`
}

// readTotals sums the families garner's components register. A family that
// is absent (its component is not configured) reads as zero.
func readTotals(g prometheus.Gatherer) Totals {
	t := Totals{BadLinesByReason: map[string]float64{}, Drops: map[string]float64{}, Series: map[string]float64{}}
	if g == nil {
		return t
	}
	mfs, _ := g.Gather() // partial results are still useful
	for _, mf := range mfs {
		name := mf.GetName()
		switch name {
		case "garner_receiver_lines_total":
			t.ReceivedLines = sum(mf)
		case "garner_receiver_datagrams_total":
			t.ReceivedDatagrams = sum(mf)
		case "garner_receiver_bytes_total":
			t.ReceivedBytes = sum(mf)
		case "garner_receiver_bad_lines_total":
			t.BadLines = sum(mf)
			for _, m := range mf.GetMetric() {
				if r := label(m, "reason"); r != "" {
					t.BadLinesByReason[r] += value(m)
				}
			}
		case "garner_aggregator_series":
			for _, m := range mf.GetMetric() {
				t.Series[label(m, "type")] += value(m)
			}
		case "garner_flush_total":
			t.Flushes = sum(mf)
		}
		if isDropCounter(name) {
			v := sum(mf)
			t.Drops[name] = v
			if strings.HasSuffix(name, "_lines_total") || strings.HasSuffix(name, "_series_total") || name == "garner_receiver_kernel_drops_total" {
				t.DropsTotal += v
			}
		}
	}
	return t
}

// isDropCounter matches garner_*_dropped_*_total and garner_*_drops_total.
func isDropCounter(name string) bool {
	return strings.HasPrefix(name, "garner_") && strings.HasSuffix(name, "_total") &&
		(strings.Contains(name, "_dropped_") || strings.HasSuffix(name, "_drops_total"))
}

func sum(mf *dto.MetricFamily) float64 {
	var s float64
	for _, m := range mf.GetMetric() {
		s += value(m)
	}
	return s
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// statsSampler reads the totals on an interval to compute rates.
type statsSampler struct {
	g     prometheus.Gatherer
	flush func() (time.Time, time.Duration)

	mu        sync.Mutex
	prevAt    time.Time
	prevLines float64
	prevBad   float64
	prevDrops float64
	linesPS   float64
	badPS     float64
	dropsPS   float64
	sampled   bool
}

func newStatsSampler(g prometheus.Gatherer, flush func() (time.Time, time.Duration)) *statsSampler {
	return &statsSampler{g: g, flush: flush}
}

func (s *statsSampler) run(ctx context.Context, every time.Duration) {
	s.sample(time.Now())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

func (s *statsSampler) sample(now time.Time) {
	tot := readTotals(s.g)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.prevAt.IsZero() {
		if dt := now.Sub(s.prevAt).Seconds(); dt > 0 {
			s.linesPS = max(0, tot.ReceivedLines-s.prevLines) / dt
			s.badPS = max(0, tot.BadLines-s.prevBad) / dt
			s.dropsPS = max(0, tot.DropsTotal-s.prevDrops) / dt
			s.sampled = true
		}
	}
	s.prevAt, s.prevLines, s.prevBad, s.prevDrops = now, tot.ReceivedLines, tot.BadLines, tot.DropsTotal
}

// Rates are per-second rates over the last sampling interval; Valid is false
// until two samples were taken.
type Rates struct {
	LinesPerSecond    float64 `json:"lines_per_second"`
	BadLinesPerSecond float64 `json:"bad_lines_per_second"`
	DropsPerSecond    float64 `json:"drops_per_second"`
	Valid             bool    `json:"valid"`
}

func (s *statsSampler) rates() Rates {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Rates{LinesPerSecond: s.linesPS, BadLinesPerSecond: s.badPS, DropsPerSecond: s.dropsPS, Valid: s.sampled}
}
