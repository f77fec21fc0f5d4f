package forwarder

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a batch is dropped (the reason label).
const (
	reasonBufferFull = "buffer_full" // max-buffer-size reached: the oldest batch goes
	reasonExpired    = "expired"     // waited past its retry budget (upstream out)
	reasonRetries    = "retries"     // failed until its retry budget ran out
	reasonRejected   = "rejected"    // a 4xx with fast-fail, or not convertible to v2
	reasonShutdown   = "shutdown"    // still unsent when the drain timeout ended
)

var dropReasons = []string{reasonBufferFull, reasonExpired, reasonRetries, reasonRejected, reasonShutdown}

// fwdMetrics are the forwarder's self-metrics; the upstreams get a pointer
// to them at construction.
type fwdMetrics struct {
	batches    *prometheus.CounterVec
	sentItems  *prometheus.CounterVec
	sentBytes  prometheus.Counter
	droppedB   map[string]prometheus.Counter
	droppedI   map[string]prometheus.Counter
	retries    prometheus.Counter
	duration   prometheus.Histogram
	rerouted   prometheus.Counter
	down, up   prometheus.Counter
	probeUp    prometheus.Counter
	probeDown  prometheus.Counter
	fallbacks  prometheus.Counter
	evDropped  prometheus.Counter
	dnsFailure prometheus.Counter
}

// upstreamCounts reports the upstreams in the choice (up) and out of it,
// and the bytes all of them hold, for the gauges.
type upstreamCounts interface {
	upstreams() []*upstream
	allUpstreams() []*upstream
}

func newMetrics(reg prometheus.Registerer, ups upstreamCounts) (*fwdMetrics, error) {
	droppedB := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_batches_total",
		Help: "Forwarder requests given up, by reason: buffer_full (max-buffer-size), expired (waited past the retry budget while the upstream was out), retries (failed until the retry budget ran out), rejected (4xx with fast-fail, or not sendable as v2), shutdown (unsent at the end of the drain).",
	}, []string{"reason"})
	droppedI := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_series_total",
		Help: "Series (and events) in the dropped forwarder requests, by reason.",
	}, []string{"reason"})
	probes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_forwarder_probes_total", Help: "Probes of upstreams that were out, by result (up, down)."}, []string{"result"})
	m := &fwdMetrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_forwarder_batches_total", Help: "Forwarder requests built, by kind (raw, event).",
		}, []string{"kind"}),
		sentItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_forwarder_sent_series_total", Help: "Series (kind=raw) and events (kind=event) accepted by an upstream.",
		}, []string{"kind"}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_sent_bytes_total", Help: "Request body bytes (compressed) accepted by an upstream."}),
		droppedB:  map[string]prometheus.Counter{},
		droppedI:  map[string]prometheus.Counter{},
		retries:   prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_retries_total", Help: "Forwarder request attempts after the first."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "garner_forwarder_request_duration_seconds", Help: "Duration of one forwarder request attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		rerouted:   prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_rerouted_series_total", Help: "Series sent to their next choice because their first-choice upstream was out."}),
		down:       prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_upstream_down_total", Help: "Times an upstream was taken out of the choice after upstream-failures failures in a row."}),
		up:         prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_upstream_up_total", Help: "Times an upstream came back into the choice after a successful probe."}),
		probeUp:    probes.WithLabelValues("up"),
		probeDown:  probes.WithLabelValues("down"),
		fallbacks:  prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_protocol_fallbacks_total", Help: "Upstreams that answered 404 to /v3 and are spoken to in v2 since."}),
		evDropped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_dropped_events_total", Help: "Events and service checks dropped before batching: too many waiting."}),
		dnsFailure: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_dns_failures_total", Help: "Failed resolutions of an api-endpoint name (the previous addresses are kept)."}),
	}
	for _, r := range dropReasons {
		m.droppedB[r] = droppedB.WithLabelValues(r)
		m.droppedI[r] = droppedI.WithLabelValues(r)
	}
	for _, k := range []string{"raw", "event"} {
		m.batches.WithLabelValues(k)
		m.sentItems.WithLabelValues(k)
	}
	byState := func(up bool) func() float64 {
		return func() float64 {
			n := 0
			for _, u := range ups.upstreams() {
				if u.up.Load() == up {
					n++
				}
			}
			return float64(n)
		}
	}
	cs := []prometheus.Collector{
		m.batches, m.sentItems, m.sentBytes, droppedB, droppedI, m.retries, m.duration, m.rerouted,
		m.down, m.up, probes, m.fallbacks, m.evDropped, m.dnsFailure,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "garner_forwarder_upstreams", Help: "Upstreams by state.", ConstLabels: prometheus.Labels{"state": "up"}}, byState(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "garner_forwarder_upstreams", Help: "Upstreams by state.", ConstLabels: prometheus.Labels{"state": "down"}}, byState(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "garner_forwarder_buffered_bytes", Help: "Request bytes queued or in flight, all upstreams."}, func() float64 {
			n := 0
			for _, u := range ups.allUpstreams() {
				_, _, b := u.pending()
				n += b
			}
			return float64(n)
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register forwarder metrics: %w", err)
		}
	}
	return m, nil
}

// dropped counts b as given up for reason.
func (m *fwdMetrics) dropped(b *batch, reason string) {
	m.droppedB[reason].Inc()
	m.droppedI[reason].Add(float64(b.items))
}

// delivered counts b as accepted by an upstream.
func (m *fwdMetrics) delivered(b *batch) {
	m.sentBytes.Add(float64(len(b.body)))
	m.sentItems.WithLabelValues(b.kind.String()).Add(float64(b.items))
}
