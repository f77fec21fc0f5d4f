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

	Ingestion Ingestion `json:"ingestion"` // HTTP ingestion (an aggregator)
	Forwarder Forwarder `json:"forwarder"` // forwarder mode
}

// Ingestion is the aggregator's HTTP ingestion figures (garner_ingest_*).
type Ingestion struct {
	Requests float64 `json:"requests"` // every answered request
	Rejects  float64 `json:"rejects"`  // requests not accepted (bad_request, too_large, ...)
	Series   float64 `json:"series"`   // series applied
	Bytes    float64 `json:"bytes"`    // request bodies, before decompression
}

// Forwarder is the forwarder's figures (garner_forwarder_*).
type Forwarder struct {
	SeriesSent    float64 `json:"series_sent"`
	BufferedBytes float64 `json:"buffered_bytes"`
	Retries       float64 `json:"retries"`
	UpstreamsUp   float64 `json:"upstreams_up"`
	UpstreamsDown float64 `json:"upstreams_down"`
}

// readTotals sums the families garner's components register. A family that
// is absent (its component is not configured) reads as zero.
func readTotals(g prometheus.Gatherer) Totals {
	t := Totals{BadLinesByReason: map[string]float64{}, Drops: map[string]float64{}, Series: map[string]float64{}}
	if g == nil {
		return t
	}
	// The families read as the sum of their values.
	summed := map[string]*float64{
		"garner_receiver_lines_total":     &t.ReceivedLines,
		"garner_receiver_datagrams_total": &t.ReceivedDatagrams,
		"garner_receiver_bytes_total":     &t.ReceivedBytes,
		"garner_flush_total":              &t.Flushes,
		"garner_ingest_series_total":      &t.Ingestion.Series,
		"garner_ingest_body_bytes_total":  &t.Ingestion.Bytes,
		"garner_forwarder_buffered_bytes": &t.Forwarder.BufferedBytes,
		"garner_forwarder_retries_total":  &t.Forwarder.Retries,
	}
	mfs, _ := g.Gather() // partial results are still useful
	for _, mf := range mfs {
		name := mf.GetName()
		if f, ok := summed[name]; ok {
			*f = sum(mf)
		}
		switch name {
		case "garner_receiver_bad_lines_total":
			t.BadLines = sum(mf)
			t.BadLinesByReason = byLabel(mf, "reason")
			delete(t.BadLinesByReason, "")
		case "garner_aggregator_series":
			t.Series = byLabel(mf, "type")
		case "garner_ingest_requests_total":
			by := byLabel(mf, "result")
			t.Ingestion.Requests = sum(mf)
			t.Ingestion.Rejects = t.Ingestion.Requests - by["accepted"] - by["duplicate"]
		case "garner_forwarder_sent_series_total":
			t.Forwarder.SeriesSent = byLabel(mf, "kind")["raw"]
		case "garner_forwarder_upstreams":
			t.Forwarder.UpstreamsUp = byLabel(mf, "state")["up"]
			t.Forwarder.UpstreamsDown = sum(mf) - t.Forwarder.UpstreamsUp
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

// byLabel sums mf's values by the value of one label ("" where it is absent).
func byLabel(mf *dto.MetricFamily, name string) map[string]float64 {
	by := map[string]float64{}
	for _, m := range mf.GetMetric() {
		by[label(m, name)] += value(m)
	}
	return by
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

// statsSampler reads the totals on an interval to compute rates, and keeps
// the last hour of them (a fixed-size ring) for the status page's charts.
type statsSampler struct {
	g     prometheus.Gatherer
	flush func() (time.Time, time.Duration)

	mu      sync.Mutex
	prevAt  time.Time
	prev    Totals
	rates   Rates
	history *ring
}

func newStatsSampler(g prometheus.Gatherer, flush func() (time.Time, time.Duration), every time.Duration) *statsSampler {
	return &statsSampler{g: g, flush: flush, history: newRing(int(historySpan / every))}
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
	var flushMs float64
	if s.flush != nil {
		_, d := s.flush()
		flushMs = float64(d.Microseconds()) / 1000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.prevAt.IsZero() {
		if dt := now.Sub(s.prevAt).Seconds(); dt > 0 {
			per := func(cur, prev float64) float64 { return max(0, cur-prev) / dt }
			s.rates = Rates{
				LinesPerSecond:          per(tot.ReceivedLines, s.prev.ReceivedLines),
				BadLinesPerSecond:       per(tot.BadLines, s.prev.BadLines),
				DropsPerSecond:          per(tot.DropsTotal, s.prev.DropsTotal),
				IngestRequestsPerSecond: per(tot.Ingestion.Requests, s.prev.Ingestion.Requests),
				IngestSeriesPerSecond:   per(tot.Ingestion.Series, s.prev.Ingestion.Series),
				Valid:                   true,
			}
			p := Point{
				Time: now.UTC(), LinesPerSecond: s.rates.LinesPerSecond,
				SeriesPerSecond: s.rates.IngestSeriesPerSecond + per(tot.Forwarder.SeriesSent, s.prev.Forwarder.SeriesSent),
				FlushDurationMs: flushMs, DropsPerSecond: map[string]float64{},
			}
			for name, v := range tot.Drops {
				if r := per(v, s.prev.Drops[name]); r > 0 {
					p.DropsPerSecond[name] = r
				}
			}
			s.history.add(p)
		}
	}
	s.prevAt, s.prev = now, tot
}

// Rates are per-second rates over the last sampling interval; Valid is false
// until two samples were taken.
type Rates struct {
	LinesPerSecond          float64 `json:"lines_per_second"`
	BadLinesPerSecond       float64 `json:"bad_lines_per_second"`
	DropsPerSecond          float64 `json:"drops_per_second"`
	IngestRequestsPerSecond float64 `json:"ingest_requests_per_second"`
	IngestSeriesPerSecond   float64 `json:"ingest_series_per_second"`
	Valid                   bool    `json:"valid"`
}

func (s *statsSampler) current() (Rates, []Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rates, s.history.points()
}

// historySpan is how far back the status page's charts go.
const historySpan = time.Hour

// Point is one sample of the charts: rates over the interval before Time.
type Point struct {
	Time            time.Time          `json:"t"`
	LinesPerSecond  float64            `json:"lines_per_second"`
	SeriesPerSecond float64            `json:"series_per_second"` // ingested plus forwarded
	FlushDurationMs float64            `json:"flush_duration_ms"` // of the last flush then
	DropsPerSecond  map[string]float64 `json:"drops_per_second"`  // by drop counter; absent = 0
}

// ring keeps the last n points; its memory is fixed at construction.
type ring struct {
	buf  []Point
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]Point, max(n, 2))} }

func (r *ring) add(p Point) {
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
}

// points returns the points kept, oldest first.
func (r *ring) points() []Point {
	if !r.full {
		return append([]Point(nil), r.buf[:r.next]...)
	}
	return append(append([]Point(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}
