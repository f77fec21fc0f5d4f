package prometheus

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
)

// Native histograms (timers = "native-histogram").
//
// A timer series keeps a running exponential histogram in the backend: each
// flush merges the interval's histogram into it (the aggregator's, or one
// built from the raw values in exact mode, with the sample rate applied to
// the bucket counts) and sends the result, so Prometheus gets the
// cumulative buckets it requires. The running histogram only ever lowers
// its scale (merging adjacent buckets), which Prometheus reads as no reset:
// a schema lower than the previous sample's is compared at that schema.
// Its schema is at most 8, the finest Prometheus takes. Its first sample
// carries the reset hint YES, so a series that restarts from zero (garner
// restarted, or the series expired and came back) is read as a reset even
// when its new count is above the old one.

// Prometheus' limits on the schema of an exponential native histogram.
const (
	maxSchema = 8
	minSchema = -4
)

// exports holds the exported running histograms of one plan: the Data of
// each and their counters, a few allocations per flush.
type exports struct {
	data   []histogram.Data
	counts []uint64
}

// planNativeLocked updates timer t's running histogram and appends its
// sample (none until the series has had a value), exporting it into ex. t
// must not have gsd_histogram buckets (those are sent as a classic
// histogram).
func (c *Client) planNativeLocked(plan []sample, ex *exports, t *model.Timer, i int) []sample {
	r := c.runningLocked('n', &t.Series, 0)
	h := t.Exp
	if h == nil && len(t.Values) > 0 { // timer-aggregation = exact
		h = histogram.FromValues(t.Values, histogram.DefaultMaxBuckets)
	}
	if h != nil && h.Count() > 0 {
		if total := histogram.WeightedCount(t.SampledCount, h.Count()); total != h.Count() {
			var d histogram.Data
			h.ExportScaled(&d, total)
			w, err := histogram.FromData(&d, h.MaxBuckets())
			if err != nil { // cannot happen: scaled counts add up
				c.dropped.Inc()
				return plan
			}
			h = w
		}
		if r.nh == nil {
			r.nh = histogram.New(h.MaxBuckets())
		}
		r.nh.Merge(h)
		r.nh.Downscale(maxSchema)
	}
	if r.nh == nil {
		return plan
	}
	if r.nh.Scale() < minSchema {
		// Only with histogram-max-buckets near its minimum and values over
		// the whole float64 range.
		c.dropped.Inc()
		return plan
	}
	var d histogram.Data
	ex.counts = r.nh.ExportArena(&d, ex.counts)
	ex.data = append(ex.data, d)
	plan = append(plan, sample{kind: kindNative, sub: int32(len(ex.data) - 1), idx: int32(i), reset: !r.sent})
	r.sent = true
	return plan
}

// Remote write 1.0 native histogram fields (prompb types.proto):
//
//	TimeSeries { ...; repeated Histogram histograms = 4; }
//	Histogram  { oneof count { uint64 count_int = 1; ... } double sum = 3;
//	             sint32 schema = 4; double zero_threshold = 5;
//	             oneof zero_count { uint64 zero_count_int = 6; ... }
//	             repeated BucketSpan negative_spans = 8; repeated sint64 negative_deltas = 9;
//	             repeated BucketSpan positive_spans = 11; repeated sint64 positive_deltas = 12;
//	             ResetHint reset_hint = 14; int64 timestamp = 15; }
//	BucketSpan { sint32 offset = 1; uint32 length = 2; }
const (
	fieldHistograms    protowire.Number = 4
	fieldHistCountInt  protowire.Number = 1
	fieldHistSum       protowire.Number = 3
	fieldHistSchema    protowire.Number = 4
	fieldHistZeroCount protowire.Number = 6
	fieldHistNegSpans  protowire.Number = 8
	fieldHistNegDeltas protowire.Number = 9
	fieldHistPosSpans  protowire.Number = 11
	fieldHistPosDeltas protowire.Number = 12
	fieldHistResetHint protowire.Number = 14
	fieldHistTimestamp protowire.Number = 15
	fieldSpanOffset    protowire.Number = 1
	fieldSpanLength    protowire.Number = 2
	resetHintYes       uint64           = 1
	maxZerosInsideSpan                  = 2 // a longer run of empty buckets starts a new span
)

// appendHistogram appends the body of a prompb Histogram of d (zero
// threshold 0: garner's zero bucket holds exact zeros). Prometheus'
// bucket index i is (base^(i-1), base^i], one above OpenTelemetry's.
func appendHistogram(dst []byte, d *histogram.Data, tsMillis int64, reset bool) []byte {
	dst = protowire.AppendTag(dst, fieldHistCountInt, protowire.VarintType)
	dst = protowire.AppendVarint(dst, d.Count)
	dst = protowire.AppendTag(dst, fieldHistSum, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, math.Float64bits(d.Sum))
	dst = protowire.AppendTag(dst, fieldHistSchema, protowire.VarintType)
	dst = protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(d.Scale)))
	dst = protowire.AppendTag(dst, fieldHistZeroCount, protowire.VarintType)
	dst = protowire.AppendVarint(dst, d.ZeroCount)
	dst = appendBuckets(dst, fieldHistNegSpans, fieldHistNegDeltas, d.NegativeOffset+1, d.Negative)
	dst = appendBuckets(dst, fieldHistPosSpans, fieldHistPosDeltas, d.PositiveOffset+1, d.Positive)
	if reset {
		dst = protowire.AppendTag(dst, fieldHistResetHint, protowire.VarintType)
		dst = protowire.AppendVarint(dst, resetHintYes)
	}
	dst = protowire.AppendTag(dst, fieldHistTimestamp, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(tsMillis))
}

// appendBuckets appends the spans and the packed deltas of the bucket
// counts counts, counts[0] being Prometheus bucket index first. Spans skip
// runs of more than maxZerosInsideSpan empty buckets; each delta is a
// bucket's count less the previous bucket's (across spans), the first
// bucket's less zero.
func appendBuckets(dst []byte, spanField, deltaField protowire.Number, first int32, counts []uint64) []byte {
	prevEnd, deltaBytes := -1, 0
	var prev uint64
	eachSpan(counts, func(start, end int) {
		offset := int64(start - prevEnd)
		if prevEnd < 0 {
			offset = int64(first) + int64(start)
		}
		prevEnd = end
		z := protowire.EncodeZigZag(offset)
		dst = protowire.AppendTag(dst, spanField, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(2+protowire.SizeVarint(z)+protowire.SizeVarint(uint64(end-start))))
		dst = protowire.AppendTag(dst, fieldSpanOffset, protowire.VarintType)
		dst = protowire.AppendVarint(dst, z)
		dst = protowire.AppendTag(dst, fieldSpanLength, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(end-start))
		for _, c := range counts[start:end] {
			deltaBytes += protowire.SizeVarint(protowire.EncodeZigZag(int64(c - prev)))
			prev = c
		}
	})
	if deltaBytes == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, deltaField, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(deltaBytes))
	prev = 0
	eachSpan(counts, func(start, end int) {
		for _, c := range counts[start:end] {
			dst = protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(c-prev)))
			prev = c
		}
	})
	return dst
}

// eachSpan calls f with the bounds [start, end) of every span of counts:
// maximal runs that start and end with a non-empty bucket and hold no run
// of more than maxZerosInsideSpan empty ones.
func eachSpan(counts []uint64, f func(start, end int)) {
	n := len(counts)
	for j := 0; j < n; {
		for j < n && counts[j] == 0 {
			j++
		}
		if j == n {
			return
		}
		start, end := j, j+1
		for k := end; k < n; k++ {
			if counts[k] != 0 {
				end = k + 1
			} else if k-end+1 > maxZerosInsideSpan {
				break
			}
		}
		f(start, end)
		j = end
	}
}

// appendHistogramSeries appends one WriteRequest.timeseries entry holding
// labels and the histogram message body hist.
func appendHistogramSeries(dst []byte, labels []label, hist []byte) []byte {
	size := labelsSize(labels) + protowire.SizeTag(fieldHistograms) + protowire.SizeBytes(len(hist))
	dst = protowire.AppendTag(dst, fieldTimeseries, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	dst = appendLabels(dst, labels)
	dst = protowire.AppendTag(dst, fieldHistograms, protowire.BytesType)
	return protowire.AppendBytes(dst, hist)
}
