// Package otlp sends aggregates to an OpenTelemetry collector (or any
// OTLP/HTTP receiver) as OTLP/HTTP protobuf metrics, and events as OTLP
// logs, mapped as gostatsd's otlp backend maps them.
//
// # Mapping (as gostatsd)
//
// Every series gets a host:<source> tag unless it has a host tag or no
// source. Tags whose key is in resource_keys become resource attributes
// (one ResourceMetrics per distinct set), the others data point attributes:
// k:v → k="v", a bare tag x → x="" and a key given twice → an array of its
// values. The scope is garner/aggregation with garner's version. Points
// carry the flush time; delta sums and histograms also the interval start.
//
//   - counter → gauge <name> = per-second rate, and sum <name>.count = the
//     interval's count (delta temporality, not monotonic: statsd counters
//     may go down), an int when the count is whole.
//   - gauge → gauge <name>; set → gauge <name> = unique members (int).
//   - timer, conversion AsGauge (default) → gauges <name>.lower, .upper,
//     .count (int), .count_ps, .mean, .median, .std, .sum, .sum_squares and
//     one per percentile (<name>.upper_90, ...), disabled-sub-metrics left
//     out; a timer with a gsd_histogram tag → gauges <name>.histogram, one
//     per bucket with an le attribute ("+Inf" for the last), value = the
//     cumulative count.
//   - timer, conversion AsHistogram → histogram <name> (delta) with count
//     (samples, sample rate applied), sum, min and max, and with a
//     gsd_histogram tag its explicit bounds and per-bucket counts.
//   - timer, conversion AsExponentialHistogram (garner's) → exponential
//     histogram <name> (delta) with scale, zero count (exact zeros: zero
//     threshold 0), positive and negative offset and bucket counts, count,
//     sum, min and max: the aggregator's histogram of the interval as it is
//     (timer-aggregation = "histogram"), or in exact mode one built from the
//     interval's raw values (at most 512 buckets per range). The bucket
//     counts carry the sample rate: they add up to count (the sampled
//     count, rounded), each within 1 of its share; sum, min and max are
//     those of the values. A timer with a gsd_histogram tag is sent as with
//     AsHistogram (its explicit buckets are exact); an interval without
//     samples sends a point with count 0.
//
// Events become log records sent to logs_endpoint (not sent when it is
// empty) with the attributes title, text, source, priority, alert_type,
// aggregation_key, source_type_name, tags (a key/value list of the
// non-resource tags) and hostname (when set); resource_keys tags become the
// resource. garner also sets the body to the text and the severity from the
// alert type. Service checks are not sent.
//
// Request bodies are the official ExportMetricsServiceRequest /
// ExportLogsServiceRequest messages (encoded through their wire-identical
// MetricsData / LogsData twins, which spares the binary the gRPC stubs),
// gzip-compressed with compress_payload.
//
// NaN and ±Inf: OTLP carries any IEEE double; ±Inf is sent as is. A NaN
// data point is not sent (receivers turn it into a staleness marker or
// reject it) and is counted in garner_otlp_nonfinite_values_total and
// garner_backend_dropped_series_total; a histogram whose sum is not finite
// is sent without a sum.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/version"
)

// Name is the backend's name in the backends key.
const Name = "otlp"

// ScopeName is the instrumentation scope of everything garner sends.
const ScopeName = "garner/aggregation"

// Client is the OTLP backend. Safe for concurrent use.
type Client struct {
	cfg          Options
	asHistogram  bool // AsHistogram or AsExponentialHistogram
	asExp        bool // AsExponentialHistogram
	log          logrus.FieldLogger
	sender       *httpsend.Sender
	metricsReq   httpsend.Request
	logsReq      httpsend.Request
	scope        *commonv1.InstrumentationScope
	resourceKeys map[string]bool
	dropped      prom.Counter
	nonFinite    prom.Counter
}

var (
	_ backends.Backend       = (*Client)(nil)
	_ backends.HealthChecker = (*Client)(nil)
)

// New builds the backend from the [otlp] section.
func New(cfg Options, deps backends.Deps) (*Client, error) {
	if cfg.MetricsEndpoint == "" {
		return nil, errors.New("otlp.metrics_endpoint is required")
	}
	c := &Client{
		cfg: cfg, log: deps.Log,
		scope:        &commonv1.InstrumentationScope{Name: ScopeName, Version: version.Get().Version},
		resourceKeys: make(map[string]bool, len(cfg.ResourceKeys)),
		dropped:      deps.DroppedSeries,
	}
	if c.dropped == nil {
		c.dropped = prom.NewCounter(prom.CounterOpts{Name: "unused"})
	}
	switch cfg.Conversion {
	case "", AsGauge:
	case AsHistogram:
		c.asHistogram = true
	case AsExponentialHistogram:
		c.asHistogram, c.asExp = true, true
	default:
		return nil, fmt.Errorf("otlp.conversion: %q is not one of %s, %s, %s", cfg.Conversion, AsGauge, AsHistogram, AsExponentialHistogram)
	}
	for _, k := range cfg.ResourceKeys {
		c.resourceKeys[k] = true
	}
	h := http.Header{"Content-Type": {"application/x-protobuf"}}
	c.metricsReq = httpsend.Request{URL: cfg.MetricsEndpoint, Header: h}
	c.logsReq = httpsend.Request{URL: cfg.LogsEndpoint, Header: h}
	compression := httpsend.None
	if cfg.CompressPayload {
		compression = httpsend.Gzip
	}
	retries := cfg.MaxRetries
	if retries == 0 {
		retries = -1 // httpsend: negative = never retry
	}
	var err error
	c.sender, err = httpsend.New(httpsend.Options{
		Subsystem:             Name,
		MaxRequests:           cfg.MaxRequests,
		Timeout:               min(cfg.MaxRequestElapsedTime, 10*time.Second),
		MaxRequestElapsedTime: cfg.MaxRequestElapsedTime,
		MaxRetries:            retries,
		Compression:           compression,
		TLS:                   cfg.TLS,
		UserAgent:             cfg.UserAgent,
		Deps:                  deps,
	})
	if err != nil {
		return nil, err
	}
	if c.nonFinite, err = deps.NonFinite(Name, "NaN data points the otlp backend did not send."); err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// CheckHealth sends a GET to the metrics endpoint: any answer but an auth
// refusal (401, 403) or a server error (5xx) means the receiver is there
// (an OTLP/HTTP receiver answers a GET with 405).
func (c *Client) CheckHealth(ctx context.Context) error {
	return c.sender.CheckReachable(ctx, c.cfg.MetricsEndpoint, nil, "OTLP metrics endpoint")
}

// SendMetrics posts the snapshot in requests of at most metrics_per_batch
// metrics (one data point each), at most max_requests at once, retried as
// configured. Batches not delivered are counted as dropped series.
func (c *Client) SendMetrics(ctx context.Context, s *model.Snapshot) error {
	plan := c.plan(s)
	if len(plan) == 0 {
		return nil
	}
	p := httpsend.Split(len(plan), c.cfg.MetricsPerBatch, func(dst []byte, lo, hi int) ([]byte, error) {
		return proto.MarshalOptions{}.MarshalAppend(dst, c.metricsData(s, plan[lo:hi]))
	})
	return c.sender.Send(ctx, c.metricsReq, p)
}

// Item kinds of a plan.
const (
	kindCounterRate  uint8 = iota // gauge <name>
	kindCounterCount              // sum <name>.count
	kindGauge
	kindSet
	kindTimerStat      // sub = index into model.TimerStats
	kindTimerPct       // sub = index into Percentiles
	kindTimerBucket    // sub = bucket index
	kindTimerHistogram // AsHistogram (and gsd_histogram timers with AsExponentialHistogram)
	kindTimerExp       // AsExponentialHistogram
)

// item is one OTLP metric (with one data point) of a snapshot.
type item struct {
	kind uint8
	sub  int32
	idx  int32 // index into the snapshot's slice of that type
}

// plan lists the metrics of a snapshot, leaving out NaN points.
func (c *Client) plan(s *model.Snapshot) []item {
	plan := make([]item, 0, 2*len(s.Counters)+len(s.Gauges)+len(s.Sets)+len(s.Timers)*12)
	ok := func(v float64) bool {
		if math.IsNaN(v) {
			c.nonFinite.Inc()
			c.dropped.Inc()
			return false
		}
		return true
	}
	for i := range s.Counters {
		x := &s.Counters[i]
		if ok(x.PerSecond) {
			plan = append(plan, item{kind: kindCounterRate, idx: int32(i)})
		}
		if ok(x.Value) {
			plan = append(plan, item{kind: kindCounterCount, idx: int32(i)})
		}
	}
	for i := range s.Gauges {
		if ok(s.Gauges[i].Value) {
			plan = append(plan, item{kind: kindGauge, idx: int32(i)})
		}
	}
	for i := range s.Sets {
		plan = append(plan, item{kind: kindSet, idx: int32(i)})
	}
	for i := range s.Timers {
		t := &s.Timers[i]
		switch {
		case c.asExp && t.Histogram == nil:
			plan = append(plan, item{kind: kindTimerExp, idx: int32(i)})
		case c.asHistogram:
			plan = append(plan, item{kind: kindTimerHistogram, idx: int32(i)})
		case t.Histogram != nil:
			for j := range t.Histogram {
				plan = append(plan, item{kind: kindTimerBucket, sub: int32(j), idx: int32(i)})
			}
		default:
			for j, st := range model.TimerStats {
				if !s.Disabled.Has(st.Sub) && ok(st.Value(t)) {
					plan = append(plan, item{kind: kindTimerStat, sub: int32(j), idx: int32(i)})
				}
			}
			for j, p := range t.Percentiles {
				if ok(p.Value) {
					plan = append(plan, item{kind: kindTimerPct, sub: int32(j), idx: int32(i)})
				}
			}
		}
	}
	return plan
}

// metricsData builds the request of a batch. It only reads the snapshot
// and the plan, so batches are built concurrently.
func (c *Client) metricsData(s *model.Snapshot, plan []item) *metricsv1.MetricsData {
	end := uint64(s.Time.UnixNano())
	start := uint64(s.Time.Add(-s.Interval).UnixNano())
	if s.Interval <= 0 {
		start = 0
	}
	md := &metricsv1.MetricsData{}
	byResource := make(map[string]*metricsv1.ScopeMetrics)
	var (
		lastSeries *model.Series
		res, attrs []*commonv1.KeyValue
		sm         *metricsv1.ScopeMetrics
	)
	for _, it := range plan {
		ser := c.seriesOf(s, it)
		if ser != lastSeries {
			lastSeries = ser
			var resKey string
			res, attrs, resKey = c.splitTags(ser)
			sm = byResource[resKey]
			if sm == nil {
				sm = &metricsv1.ScopeMetrics{Scope: c.scope}
				md.ResourceMetrics = append(md.ResourceMetrics, &metricsv1.ResourceMetrics{
					Resource:     &resourcev1.Resource{Attributes: res},
					ScopeMetrics: []*metricsv1.ScopeMetrics{sm},
				})
				byResource[resKey] = sm
			}
		}
		sm.Metrics = append(sm.Metrics, c.metric(s, it, attrs, start, end))
	}
	return md
}

func (c *Client) seriesOf(s *model.Snapshot, it item) *model.Series {
	switch it.kind {
	case kindCounterRate, kindCounterCount:
		return &s.Counters[it.idx].Series
	case kindGauge:
		return &s.Gauges[it.idx].Series
	case kindSet:
		return &s.Sets[it.idx].Series
	}
	return &s.Timers[it.idx].Series
}

// pointAt is the time of a past interval's counter or gauge (timestamps =
// "honor"), unix nanos; 0 for every other point.
func pointAt(s *model.Snapshot, it item) int64 {
	switch it.kind {
	case kindCounterRate, kindCounterCount:
		return s.Counters[it.idx].At
	case kindGauge:
		return s.Gauges[it.idx].At
	}
	return 0
}

// metric builds one metric of the plan.
func (c *Client) metric(s *model.Snapshot, it item, attrs []*commonv1.KeyValue, start, end uint64) *metricsv1.Metric {
	if at := pointAt(s, it); at != 0 { // that interval's start and end
		start, end = uint64(at-int64(s.PastInterval)), uint64(at)
	}
	gauge := func(name string, dp *metricsv1.NumberDataPoint) *metricsv1.Metric {
		dp.Attributes, dp.TimeUnixNano = attrs, end
		return &metricsv1.Metric{Name: validUTF8(name), Data: &metricsv1.Metric_Gauge{Gauge: &metricsv1.Gauge{DataPoints: []*metricsv1.NumberDataPoint{dp}}}}
	}
	switch it.kind {
	case kindCounterRate:
		x := &s.Counters[it.idx]
		return gauge(x.Name, double(x.PerSecond))
	case kindCounterCount:
		x := &s.Counters[it.idx]
		dp := number(x.Value)
		dp.Attributes, dp.StartTimeUnixNano, dp.TimeUnixNano = attrs, start, end
		return &metricsv1.Metric{Name: validUTF8(x.Name + ".count"), Data: &metricsv1.Metric_Sum{Sum: &metricsv1.Sum{
			AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
			DataPoints:             []*metricsv1.NumberDataPoint{dp},
		}}}
	case kindGauge:
		g := &s.Gauges[it.idx]
		return gauge(g.Name, double(g.Value))
	case kindSet:
		st := &s.Sets[it.idx]
		return gauge(st.Name, integer(int64(st.Count())))
	case kindTimerStat:
		t := &s.Timers[it.idx]
		stat := model.TimerStats[it.sub]
		if stat.Sub == model.SubCount {
			return gauge(t.Name+"."+stat.Name, number(t.Count))
		}
		return gauge(t.Name+"."+stat.Name, double(stat.Value(t)))
	case kindTimerPct:
		t := &s.Timers[it.idx]
		p := t.Percentiles[it.sub]
		return gauge(t.Name+"."+p.Name, double(p.Value))
	case kindTimerBucket:
		t := &s.Timers[it.idx]
		b := t.Histogram[it.sub]
		le := &commonv1.KeyValue{Key: "le", Value: str(model.FormatBound(b.Le))}
		m := gauge(t.Name+".histogram", double(float64(b.Count)))
		dp := m.GetGauge().DataPoints[0]
		dp.Attributes = append(append(make([]*commonv1.KeyValue, 0, len(attrs)+1), attrs...), le)
		return m
	}
	t := &s.Timers[it.idx]
	if it.kind == kindTimerExp {
		return &metricsv1.Metric{Name: validUTF8(t.Name), Data: &metricsv1.Metric_ExponentialHistogram{ExponentialHistogram: &metricsv1.ExponentialHistogram{
			AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
			DataPoints:             []*metricsv1.ExponentialHistogramDataPoint{c.exponentialPoint(t, attrs, start, end)},
		}}}
	}
	return &metricsv1.Metric{Name: validUTF8(t.Name), Data: &metricsv1.Metric_Histogram{Histogram: &metricsv1.Histogram{
		AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
		DataPoints:             []*metricsv1.HistogramDataPoint{c.histogramPoint(t, attrs, start, end)},
	}}}
}

// histogramPoint is a timer as an OTLP histogram point.
func (c *Client) histogramPoint(t *model.Timer, attrs []*commonv1.KeyValue, start, end uint64) *metricsv1.HistogramDataPoint {
	dp := &metricsv1.HistogramDataPoint{Attributes: attrs, StartTimeUnixNano: start, TimeUnixNano: end}
	if t.Histogram != nil {
		// garner's buckets are cumulative (≤ le); OTLP wants the count of
		// each bucket and the bounds without +Inf.
		var prev uint64
		for _, b := range t.Histogram {
			dp.BucketCounts = append(dp.BucketCounts, b.Count-prev)
			prev = b.Count
			if !math.IsInf(b.Le, 1) {
				dp.ExplicitBounds = append(dp.ExplicitBounds, b.Le)
			}
		}
		dp.Count = prev
	} else {
		dp.Count = uint64(max(t.Count, 0))
	}
	if t.Exp != nil && t.Exp.Count() > 0 { // timer-aggregation = histogram: exact statistics kept
		lo, hi, sum := t.Lower, t.Upper, t.Sum
		dp.Sum, dp.Min, dp.Max = &sum, &lo, &hi
		return dp
	}
	if len(t.Values) == 0 {
		return dp
	}
	lo, hi, sum := t.Values[0], t.Values[0], 0.0
	for _, v := range t.Values {
		lo, hi, sum = min(lo, v), max(hi, v), sum+v
	}
	dp.Sum, dp.Min, dp.Max = c.stats(sum, lo, hi)
	return dp
}

// exponentialPoint is a timer as an OTLP exponential histogram point: its
// histogram (built from the raw values in exact mode), the bucket counts
// scaled to the sampled count.
func (c *Client) exponentialPoint(t *model.Timer, attrs []*commonv1.KeyValue, start, end uint64) *metricsv1.ExponentialHistogramDataPoint {
	dp := &metricsv1.ExponentialHistogramDataPoint{Attributes: attrs, StartTimeUnixNano: start, TimeUnixNano: end}
	h := t.Exp
	if h == nil {
		if len(t.Values) == 0 {
			return dp
		}
		h = histogram.FromValues(t.Values, histogram.DefaultMaxBuckets)
	}
	if h.Count() == 0 {
		return dp
	}
	var d histogram.Data
	h.ExportScaled(&d, histogram.WeightedCount(t.SampledCount, h.Count()))
	dp.Count, dp.Scale, dp.ZeroCount = d.Count, d.Scale, d.ZeroCount
	dp.Positive = &metricsv1.ExponentialHistogramDataPoint_Buckets{Offset: d.PositiveOffset, BucketCounts: d.Positive}
	if len(d.Negative) > 0 {
		dp.Negative = &metricsv1.ExponentialHistogramDataPoint_Buckets{Offset: d.NegativeOffset, BucketCounts: d.Negative}
	}
	lo, hi, sum := d.Min, d.Max, d.Sum
	if t.Exp != nil { // the aggregator's exact statistics
		lo, hi, sum = t.Lower, t.Upper, t.Sum
	}
	dp.Sum, dp.Min, dp.Max = c.stats(sum, lo, hi)
	return dp
}

// stats are a histogram point's sum, min and max; a sum that is not
// finite is left out and counted.
func (c *Client) stats(sum, lo, hi float64) (*float64, *float64, *float64) {
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		c.nonFinite.Inc()
		return nil, &lo, &hi
	}
	return &sum, &lo, &hi
}

// splitTags turns a series' tags (plus host:<source>) into resource and
// data point attributes, and returns a key identifying the resource.
func (c *Client) splitTags(s *model.Series) (res, attrs []*commonv1.KeyValue, resKey string) {
	var key strings.Builder
	haveHost := false
	add := func(k, v string) {
		if c.resourceKeys[k] {
			res = putAttr(res, k, v)
			key.WriteString(k)
			key.WriteByte(0)
			key.WriteString(v)
			key.WriteByte(0)
		} else {
			attrs = putAttr(attrs, k, v)
		}
	}
	for _, t := range s.Tags {
		k, v, _ := strings.Cut(t, ":")
		if k == "host" {
			haveHost = true
		}
		add(k, v)
	}
	if !haveHost && s.Source != "" {
		add("host", s.Source)
	}
	return res, attrs, key.String()
}

// putAttr adds k=v; a key already there becomes an array of its values.
func putAttr(kvs []*commonv1.KeyValue, k, v string) []*commonv1.KeyValue {
	k, v = validUTF8(k), validUTF8(v)
	for _, kv := range kvs {
		if kv.Key != k {
			continue
		}
		if arr, ok := kv.Value.Value.(*commonv1.AnyValue_ArrayValue); ok {
			arr.ArrayValue.Values = append(arr.ArrayValue.Values, str(v))
		} else {
			kv.Value = &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{
				Values: []*commonv1.AnyValue{kv.Value, str(v)},
			}}}
		}
		return kvs
	}
	return append(kvs, &commonv1.KeyValue{Key: k, Value: str(v)})
}

func str(s string) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: validUTF8(s)}}
}

// validUTF8 replaces invalid UTF-8 (proto3 strings must be valid, or the
// whole request fails to encode).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func double(v float64) *metricsv1.NumberDataPoint {
	return &metricsv1.NumberDataPoint{Value: &metricsv1.NumberDataPoint_AsDouble{AsDouble: v}}
}

func integer(v int64) *metricsv1.NumberDataPoint {
	return &metricsv1.NumberDataPoint{Value: &metricsv1.NumberDataPoint_AsInt{AsInt: v}}
}

// number is an int point when v is whole (gostatsd's counters are ints),
// a double otherwise (garner's counters are floats: 0.4|c twice is 0.8).
func number(v float64) *metricsv1.NumberDataPoint {
	if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
		return integer(int64(v))
	}
	return double(v)
}
