// Package prometheus sends aggregates to a Prometheus remote write 1.0
// endpoint (Prometheus with --web.enable-remote-write-receiver,
// VictoriaMetrics, Mimir, Thanos receive, ...): protobuf WriteRequest,
// snappy block compression, X-Prometheus-Remote-Write-Version: 0.1.0.
//
// # Mapping
//
// Names follow the Prometheus rules: every byte outside [a-zA-Z0-9_:]
// becomes '_' ("api.req-time" → "api_req_time") and a leading digit gets a
// '_' in front. Every sample of a flush carries the flush time.
//
//   - counter → <name>_total, the running total since garner started (or
//     since the series last reappeared): a Prometheus counter.
//   - gauge → <name>; set → <name> = number of unique members this interval.
//   - timer → <name>{quantile="0.5"} (the median) and one quantile per
//     positive percent-threshold P (quantile="P/100", the nearest-rank value
//     of this interval's samples, as upper_P), plus the running
//     <name>_sum (sum of the values) and <name>_count (samples, sample rate
//     applied) since start: a Prometheus summary. An interval without
//     samples sends no quantiles, only _sum and _count.
//   - timer with a gsd_histogram tag → <name>_bucket{le="..."} with running
//     bucket counts, <name>_sum and <name>_count: a Prometheus histogram.
//   - timer with timers = "native-histogram" → <name> as one native
//     histogram sample (schema = the histogram's scale, at most 8; zero
//     threshold 0; spans and delta-encoded bucket counts), cumulative since
//     the series appeared, built from the aggregator's exponential histogram
//     or, in exact timer mode, from the interval's raw values; bucket counts
//     carry the sample rate (they add up to the sampled count, rounded), the
//     sum is the sum of the values. No quantiles, _sum or _count then;
//     gsd_histogram timers stay classic histograms. See native.go.
//
// Labels: tag k:v → k="v", bare tag x → unnamed="x", host="<source>"
// unless a tag names the host; see seriesLabels for the edge cases.
//
// Running totals are kept per series in the backend. A series absent from
// a snapshot (expired in the aggregator) is forgotten, so memory follows the
// aggregator's live series; if it comes back its totals restart at zero,
// which Prometheus' rate() and increase() read as a counter reset. Because
// the totals are cumulative, a flush that fails loses no counts: the next
// flush that gets through carries them.
//
// NaN and ±Inf: both servers store ±Inf, which is sent as is. A NaN sample
// is not sent (NaN is how Prometheus marks staleness), and a NaN or ±Inf
// increment is not added to a running total (it would stay NaN or Inf for
// good); each is counted in garner_prometheus_nonfinite_values_total and in
// garner_backend_dropped_series_total.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "prometheus"

// Client is the Prometheus remote write backend. Safe for concurrent use;
// the flusher calls SendMetrics for one snapshot at a time.
type Client struct {
	backends.NoEvents // remote write has none

	cfg       Options
	quantiles []quantile
	log       logrus.FieldLogger
	sender    *httpsend.Sender
	req       httpsend.Request
	dropped   prom.Counter // garner_backend_dropped_series_total{backend="prometheus"}
	nonFinite prom.Counter
	tracked   prom.Gauge
	native    bool // timers = native-histogram

	mu     sync.Mutex
	totals map[string]*running // by series key; see key
	gen    uint64              // flushes seen, to forget absent series
	// nativeCounters is how many bucket counters the last flush's native
	// histograms exported.
	nativeCounters int
	keyBuf         []byte
}

// quantile is one timer quantile sent as <name>{quantile="label"}.
type quantile struct {
	q     float64
	label string
}

// running holds a series' totals since it appeared.
type running struct {
	gen     uint64               // last flush that had the series
	sum     float64              // counter total, or timer sum
	count   float64              // timer sample count
	buckets []float64            // histogram bucket counts (cumulative over le, and over time)
	nh      *histogram.Histogram // native histogram since the series appeared
	sent    bool                 // nh has been in a plan (its first sample carries the reset hint)
}

var (
	_ backends.Backend       = (*Client)(nil)
	_ backends.HealthChecker = (*Client)(nil)
)

// New builds the backend from the [prometheus] section. percentThreshold is
// the percent-threshold key: each positive P adds the quantile P/100 to
// timers (0.5 is always sent).
func New(cfg Options, percentThreshold []float64, deps backends.Deps) (*Client, error) {
	if cfg.RemoteWriteURL == "" {
		return nil, errors.New("prometheus.remote-write-url is required")
	}
	c := &Client{cfg: cfg, log: deps.Log, dropped: deps.DroppedSeries, totals: make(map[string]*running)}
	switch cfg.Timers {
	case "", TimersSummary:
	case TimersNativeHistogram:
		c.native = true
	default:
		return nil, fmt.Errorf("prometheus.timers: %q is not one of %s, %s", cfg.Timers, TimersSummary, TimersNativeHistogram)
	}
	if c.dropped == nil {
		c.dropped = prom.NewCounter(prom.CounterOpts{Name: "unused"})
	}
	qs := []float64{0.5}
	for _, p := range percentThreshold {
		if p > 0 && p <= 100 {
			qs = append(qs, math.Round(p*1e7)/1e9) // 99.9 → 0.999, not 0.9990000000000001
		}
	}
	slices.Sort(qs)
	for _, q := range slices.Compact(qs) {
		c.quantiles = append(c.quantiles, quantile{q, strconv.FormatFloat(q, 'f', -1, 64)})
	}

	h := make(http.Header)
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	switch {
	case cfg.BearerToken != "":
		h.Set("Authorization", "Bearer "+cfg.BearerToken)
	case cfg.BasicAuthUsername != "":
		r, _ := http.NewRequest(http.MethodPost, cfg.RemoteWriteURL, nil)
		if r != nil {
			r.SetBasicAuth(cfg.BasicAuthUsername, cfg.BasicAuthPassword)
			h.Set("Authorization", r.Header.Get("Authorization"))
		}
	}
	c.req = httpsend.Request{URL: cfg.RemoteWriteURL, Header: h}

	var err error
	c.sender, err = httpsend.New(httpsend.Options{
		Subsystem:   Name,
		MaxRequests: cfg.MaxRequests,
		Timeout:     cfg.Timeout,
		Compression: httpsend.Snappy,
		TLS:         cfg.TLS,
		Deps:        deps,
	})
	if err != nil {
		return nil, err
	}
	if c.nonFinite, err = deps.NonFinite(Name, "NaN samples not sent, and NaN or ±Inf increments not added to a running total, by the prometheus backend."); err != nil {
		return nil, err
	}
	c.tracked = prom.NewGauge(prom.GaugeOpts{
		Name: "garner_prometheus_running_series",
		Help: "Series whose running totals (counters, timer sums and counts, histogram buckets) the prometheus backend keeps.",
	})
	if err := deps.Register(Name, c.tracked); err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendMetrics updates the running totals with the snapshot, then posts it
// in requests of at most metrics-per-batch time series, at most
// max-requests at once, each attempt bounded by timeout and retried until
// ctx ends. Batches not delivered are counted as dropped series.
func (c *Client) SendMetrics(ctx context.Context, s *model.Snapshot) error {
	c.mu.Lock()
	plan, hists := c.planLocked(s)
	c.mu.Unlock()
	if len(plan) == 0 {
		return nil
	}
	ts := s.Time.UnixMilli()
	p := httpsend.Split(len(plan), c.cfg.MetricsPerBatch, func(dst []byte, lo, hi int) ([]byte, error) {
		return c.encode(dst, s, plan[lo:hi], hists, ts), nil
	})
	return c.sender.Send(ctx, c.req, p)
}

// CheckHealth sends a GET to the remote write URL: any answer but an auth
// refusal (401, 403) or a server error (5xx) means the endpoint is there
// (a write endpoint answers a GET with 405).
func (c *Client) CheckHealth(ctx context.Context) error {
	return c.sender.CheckReachable(ctx, c.cfg.RemoteWriteURL, c.authHeader(), "remote write endpoint")
}

func (c *Client) authHeader() http.Header {
	h := c.req.Header.Clone()
	h.Del("Content-Type")
	return h
}

// Sample kinds of a plan.
const (
	kindCounter uint8 = iota
	kindGauge
	kindSet
	kindQuantile // sub = quantile index
	kindSum      // timer or histogram _sum
	kindCount    // timer or histogram _count
	kindBucket   // sub = bucket index
	kindNative   // native histogram: hist
)

// sample is one time series of the write request: which aggregate it comes
// from and its value (running totals applied).
type sample struct {
	kind  uint8
	reset bool  // kindNative: send the reset hint
	sub   int32 // quantile or bucket index; kindNative: index of the exported histogram
	idx   int32 // index into the snapshot's slice of that type
	value float64
}

// planLocked lists the time series of a snapshot, updating the running
// totals, and forgets the totals of series the snapshot no longer has.
// hists are the native histograms of the plan (exported: they do not change
// when the running ones do).
func (c *Client) planLocked(s *model.Snapshot) (plan []sample, hists []histogram.Data) {
	c.gen++
	plan = make([]sample, 0, s.Len()+len(s.Timers)*(len(c.quantiles)+2))
	for i := range s.Counters {
		x := &s.Counters[i]
		r := c.runningLocked('c', &x.Series, 0)
		c.addLocked(&r.sum, x.Value)
		plan = append(plan, sample{kind: kindCounter, idx: int32(i), value: r.sum})
	}
	plan = c.onePerCounterLocked(s, plan)
	for i := range s.Gauges {
		g := &s.Gauges[i]
		if g.At != 0 {
			// A past interval's value (timestamps = "honor"): it must not
			// replace the current one, nor be a second sample of the
			// series at the flush's timestamp (remote write refuses those).
			c.dropped.Inc()
			continue
		}
		if c.finite(g.Value, true) {
			plan = append(plan, sample{kind: kindGauge, idx: int32(i), value: g.Value})
		}
	}
	for i := range s.Sets {
		plan = append(plan, sample{kind: kindSet, idx: int32(i), value: float64(s.Sets[i].Count())})
	}
	var ex exports // native histograms
	for i := range s.Timers {
		t := &s.Timers[i]
		if t.Histogram != nil {
			r := c.runningLocked('h', &t.Series, len(t.Histogram))
			var sum float64
			for _, v := range t.Values {
				sum += v
			}
			c.addLocked(&r.sum, sum)
			for j, b := range t.Histogram {
				r.buckets[j] += float64(b.Count)
				plan = append(plan, sample{kind: kindBucket, sub: int32(j), idx: int32(i), value: r.buckets[j]})
			}
			r.count += float64(t.Histogram[len(t.Histogram)-1].Count)
			plan = append(plan,
				sample{kind: kindSum, idx: int32(i), value: r.sum},
				sample{kind: kindCount, idx: int32(i), value: r.count})
			continue
		}
		if c.native {
			if ex.counts == nil {
				ex.data = make([]histogram.Data, 0, len(s.Timers)-i)
				ex.counts = make([]uint64, 0, c.nativeCounters+c.nativeCounters/8)
			}
			plan = c.planNativeLocked(plan, &ex, t, i)
			continue
		}
		r := c.runningLocked('t', &t.Series, 0)
		n := len(t.Values)
		if t.Exp != nil && n == 0 { // timer-aggregation = histogram: estimated from the buckets
			n = int(t.Exp.Count())
		}
		if n > 0 {
			for j, q := range c.quantiles {
				v := t.Median
				if q.q != 0.5 {
					k := min(max(int(math.Floor(q.q*float64(n)+0.5)), 1), n)
					if len(t.Values) > 0 {
						v = t.Values[k-1]
					} else {
						v = t.Exp.ValueAt(uint64(k))
					}
				}
				if c.finite(v, true) {
					plan = append(plan, sample{kind: kindQuantile, sub: int32(j), idx: int32(i), value: v})
				}
			}
		}
		c.addLocked(&r.sum, t.Sum)
		c.addLocked(&r.count, t.SampledCount)
		plan = append(plan,
			sample{kind: kindSum, idx: int32(i), value: r.sum},
			sample{kind: kindCount, idx: int32(i), value: r.count})
	}
	if ex.counts != nil {
		c.nativeCounters = len(ex.counts) // sizes the next flush's exports
	}
	for k, r := range c.totals {
		if r.gen != c.gen {
			delete(c.totals, k)
		}
	}
	c.tracked.Set(float64(len(c.totals)))
	return plan, ex.data
}

// finite reports whether v may be sent: NaN never, ±Inf when inf is true.
// Refused values are counted.
func (c *Client) finite(v float64, inf bool) bool {
	if math.IsNaN(v) || (!inf && math.IsInf(v, 0)) {
		c.nonFinite.Inc()
		c.dropped.Inc()
		return false
	}
	return true
}

// addLocked adds a finite increment to a running total.
func (c *Client) addLocked(total *float64, inc float64) {
	if c.finite(inc, false) {
		*total += inc
	}
}

// onePerCounterLocked makes the counters' samples, all of plan so far, one
// per series. A series is there twice with a counter of a past interval
// (timestamps = "honor"): both added to its running total, and its one
// sample, at the flush's time as every other, carries the total. A
// remote-write series cannot go back in time, and two samples of a series
// at one timestamp are refused.
func (c *Client) onePerCounterLocked(s *model.Snapshot, plan []sample) []sample {
	past := false
	for i := range s.Counters {
		past = past || s.Counters[i].At != 0
	}
	if !past {
		return plan
	}
	first := make(map[*running]int, len(plan))
	out := plan[:0]
	for _, p := range plan {
		r := c.runningLocked('c', &s.Counters[p.idx].Series, 0)
		if j, dup := first[r]; dup {
			out[j].value = r.sum
			continue
		}
		first[r] = len(out)
		p.value = r.sum
		out = append(out, p)
	}
	return out
}

// runningLocked returns the running totals of a series, creating them.
// kind separates counters ('c'), timers ('t') and histograms ('h') of the
// same name; buckets sizes a histogram's bucket counts.
func (c *Client) runningLocked(kind byte, s *model.Series, buckets int) *running {
	b := append(c.keyBuf[:0], kind)
	b = append(b, s.Name...)
	for _, t := range s.Tags {
		b = append(b, 0)
		b = append(b, t...)
	}
	b = append(b, 1)
	b = append(b, s.Source...)
	c.keyBuf = b
	r := c.totals[string(b)]
	if r == nil {
		r = &running{}
		c.totals[string(b)] = r
	}
	if len(r.buckets) != buckets {
		r.buckets = make([]float64, buckets)
	}
	r.gen = c.gen
	return r
}

// encode appends the WriteRequest of the samples to dst. It only reads the
// snapshot and the plan, so batches are encoded concurrently.
func (c *Client) encode(dst []byte, s *model.Snapshot, plan []sample, hists []histogram.Data, ts int64) []byte {
	var (
		ls   []label
		hist []byte
	)
	for i := range plan {
		p := &plan[i]
		if p.kind == kindNative {
			ser := &s.Timers[p.idx].Series
			ls = seriesLabels(ls[:0], ser, sanitizeMetricName(ser.Name), "", "")
			hist = appendHistogram(hist[:0], &hists[p.sub], ts, p.reset)
			dst = appendHistogramSeries(dst, ls, hist)
			continue
		}
		var (
			ser         *model.Series
			suffix      string
			xName, xVal string
		)
		switch p.kind {
		case kindCounter:
			ser, suffix = &s.Counters[p.idx].Series, "_total"
		case kindGauge:
			ser = &s.Gauges[p.idx].Series
		case kindSet:
			ser = &s.Sets[p.idx].Series
		case kindQuantile:
			ser, xName, xVal = &s.Timers[p.idx].Series, "quantile", c.quantiles[p.sub].label
		case kindSum:
			ser, suffix = &s.Timers[p.idx].Series, "_sum"
		case kindCount:
			ser, suffix = &s.Timers[p.idx].Series, "_count"
		case kindBucket:
			t := &s.Timers[p.idx]
			ser, suffix, xName, xVal = &t.Series, "_bucket", "le", model.FormatBound(t.Histogram[p.sub].Le)
		}
		ls = seriesLabels(ls[:0], ser, sanitizeMetricName(ser.Name)+suffix, xName, xVal)
		dst = appendTimeSeries(dst, ls, p.value, ts)
	}
	return dst
}
