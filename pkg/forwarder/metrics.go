package forwarder

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/ratelog"
)

// Reasons a batch is dropped (the reason label).
const (
	reasonBufferFull = "buffer_full" // max-buffer-size reached: the oldest batch goes
	reasonExpired    = "expired"     // older than max-buffer-age, unsent (upstream out)
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
	droppedS   map[string]prometheus.Counter
	drops      dropLog
	retries    prometheus.Counter
	duration   prometheus.Histogram
	rerouted   prometheus.Counter
	down, up   prometheus.Counter
	probeUp    prometheus.Counter
	probeDown  prometheus.Counter
	fallbacks  prometheus.Counter
	evDropped  prometheus.Counter
	dnsFailure prometheus.Counter
	estimated  prometheus.Counter
	estSets    prometheus.Counter
	v2Past     prometheus.Counter
}

// upstreamCounts reports the upstreams in the choice (up) and out of it,
// and the bytes all of them hold, for the gauges.
type upstreamCounts interface {
	upstreams() []*upstream
	allUpstreams() []*upstream
}

func newMetrics(reg prometheus.Registerer, ups upstreamCounts, log logrus.FieldLogger) (*fwdMetrics, error) {
	droppedB := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_batches_total",
		Help: "Forwarder requests given up, by reason: buffer_full (max-buffer-size), expired (unsent after max-buffer-age while the upstream was out), retries (failed until the retry budget ran out), rejected (4xx with fast-fail, or not sendable as v2), shutdown (unsent at the end of the drain).",
	}, []string{"reason"})
	droppedI := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_series_total",
		Help: "Series (and events) in the dropped forwarder requests, by reason.",
	}, []string{"reason"})
	droppedS := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_samples_total",
		Help: "Values in the dropped forwarder requests, by reason: one per counter and gauge, the members of a set, the values of a timer, one per event.",
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
		droppedS:  map[string]prometheus.Counter{},
		drops:     dropLog{log: log, lim: ratelog.Every(10*time.Second, 1), pending: map[dropKey]dropCount{}},
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
		estimated:  prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_v2_estimated_timers_total", Help: "Histogram timers (timer-aggregation = histogram) sent to a v2 upstream as values estimated from their buckets, each within its bucket's relative width of a real one: v2 has no histograms."}),
		estSets:    prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_v2_estimated_sets_total", Help: "Dense set sketches (set-aggregation = hll) sent to a v2 upstream as made-up members, as many as their estimate: v2 has no sketches, and the upstream's union of such sets from several forwarders is their largest count. Sparse sketches go as their member hashes, exactly, and are not counted."}),
		v2Past:     prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_v2_dropped_past_points_total", Help: "Counters and gauges of past flush intervals (DogStatsD timestamps, timestamps = \"honor\") not sent to a v2 upstream: v2 has no point time, and the upstream would take them for the current interval."}),
	}
	for _, r := range dropReasons {
		m.droppedB[r] = droppedB.WithLabelValues(r)
		m.droppedI[r] = droppedI.WithLabelValues(r)
		m.droppedS[r] = droppedS.WithLabelValues(r)
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
		m.batches, m.sentItems, m.sentBytes, droppedB, droppedI, droppedS, m.retries, m.duration, m.rerouted,
		m.down, m.up, probes, m.fallbacks, m.evDropped, m.dnsFailure, m.estimated, m.estSets, m.v2Past,
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

// dropped counts b as given up for reason by upstream ("" when none) and
// logs it, rate-limited (see dropLog).
func (m *fwdMetrics) dropped(b *batch, reason, upstream string) {
	m.droppedB[reason].Inc()
	m.droppedI[reason].Add(float64(b.items))
	m.droppedS[reason].Add(float64(b.samples))
	m.drops.add(dropKey{upstream, reason}, b)
}

// dropLog logs the forwarder's drops: at most one round of lines per 10s,
// one line per upstream and reason with the batches, series and samples
// dropped since the previous round. What the limiter holds back is logged
// by a later round (flush, called by every upstream's loop), so every drop
// is in some line.
type dropLog struct {
	log     logrus.FieldLogger
	lim     *ratelog.Limiter
	mu      sync.Mutex
	pending map[dropKey]dropCount
}

type dropKey struct{ upstream, reason string }

type dropCount struct{ batches, series, samples int }

func (d *dropLog) add(k dropKey, b *batch) {
	d.mu.Lock()
	c := d.pending[k]
	c.batches++
	c.series += b.items
	c.samples += b.samples
	d.pending[k] = c
	d.mu.Unlock()
	d.flush(false)
}

// flush logs the pending drops if the limiter lets a round through, or
// whatever the limiter says when force (at the end of the drain).
func (d *dropLog) flush(force bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) == 0 {
		return
	}
	if ok, _ := d.lim.Allow(); !ok && !force {
		return
	}
	for k, c := range d.pending {
		d.log.WithFields(logrus.Fields{
			"upstream": k.upstream, "reason": k.reason, "batches": c.batches, "series": c.series, "samples": c.samples,
		}).Warn("forwarder dropped data it could not deliver (garner_forwarder_dropped_*_total)")
	}
	clear(d.pending)
}

// delivered counts b as accepted by an upstream.
func (m *fwdMetrics) delivered(b *batch) {
	m.sentBytes.Add(float64(len(b.body)))
	m.sentItems.WithLabelValues(b.kind.String()).Add(float64(b.items))
}
