package forwarder

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
)

// Timer histograms on the wire (garner.v3.Timer field 6, a
// garner.v3.Histogram), written from the snapshot's histogram without the
// generated structs, as the rest of codec.go.

// Field numbers of garner.v3.Timer.histogram and garner.v3.Histogram.
const (
	v3Histogram = 6

	hScale      = 1
	hCount      = 2
	hZeroCount  = 3
	hSum        = 4
	hSumSquares = 5
	hMin        = 6
	hMax        = 7
	hPosOffset  = 8
	hPosCounts  = 9
	hNegOffset  = 10
	hNegCounts  = 11
)

func sizePackedVarints(num protowire.Number, vs []uint64) int {
	if len(vs) == 0 {
		return 0
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(v)
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendPackedVarints(b []byte, num protowire.Number, vs []uint64) []byte {
	if len(vs) == 0 {
		return b
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(v)
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	for _, v := range vs {
		b = protowire.AppendVarint(b, v)
	}
	return b
}

// histogramSize is the size of a Histogram message's fields.
func histogramSize(d *histogram.Data) int {
	return sizeVarintField(hScale, protowire.EncodeZigZag(int64(d.Scale))) + sizeVarintField(hCount, d.Count) +
		sizeVarintField(hZeroCount, d.ZeroCount) + sizeDouble(hSum, d.Sum) + sizeDouble(hSumSquares, d.SumSquares) +
		sizeDouble(hMin, d.Min) + sizeDouble(hMax, d.Max) +
		sizeVarintField(hPosOffset, protowire.EncodeZigZag(int64(d.PositiveOffset))) + sizePackedVarints(hPosCounts, d.Positive) +
		sizeVarintField(hNegOffset, protowire.EncodeZigZag(int64(d.NegativeOffset))) + sizePackedVarints(hNegCounts, d.Negative)
}

// appendHistogram appends d as field num (a Histogram message).
func appendHistogram(b []byte, num protowire.Number, d *histogram.Data) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(histogramSize(d)))
	b = appendVarintField(b, hScale, protowire.EncodeZigZag(int64(d.Scale)))
	b = appendVarintField(b, hCount, d.Count)
	b = appendVarintField(b, hZeroCount, d.ZeroCount)
	b = appendDouble(b, hSum, d.Sum)
	b = appendDouble(b, hSumSquares, d.SumSquares)
	b = appendDouble(b, hMin, d.Min)
	b = appendDouble(b, hMax, d.Max)
	b = appendVarintField(b, hPosOffset, protowire.EncodeZigZag(int64(d.PositiveOffset)))
	b = appendPackedVarints(b, hPosCounts, d.Positive)
	b = appendVarintField(b, hNegOffset, protowire.EncodeZigZag(int64(d.NegativeOffset)))
	return appendPackedVarints(b, hNegCounts, d.Negative)
}

// appendV3Timer appends a garner.v3.Timer: the series, the sample count,
// the values and, in histogram mode, the histogram (field 6).
func (e *encoder) appendV3Timer(b []byte, t *model.Timer) []byte {
	count := timerCount(t)
	n := seriesSize(&t.Series) + sizeDouble(v3Value, count) + sizePackedDoubles(v3Values, len(t.Values))
	if t.Exp != nil {
		t.Exp.Export(&e.hist)
		n += protowire.SizeTag(v3Histogram) + protowire.SizeBytes(histogramSize(&e.hist))
	}
	b = protowire.AppendTag(b, v3Timers, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendSeries(b, &t.Series)
	b = appendDouble(b, v3Value, count)
	b = appendPackedDoubles(b, v3Values, t.Values)
	if t.Exp != nil {
		b = appendHistogram(b, v3Histogram, &e.hist)
	}
	return b
}

// v2Values are the values a v2 (gostatsd) upstream gets for timer i: its
// own, or for a histogram timer the values its buckets stand for (each
// within its bucket's relative width of a real one; counted in
// garner_forwarder_v2_estimated_timers_total).
func (e *encoder) v2Values(timers []model.Timer, sel []int32) {
	clear(e.estimated)
	for _, i := range sel {
		if t := &timers[i]; t.Exp != nil && len(t.Values) == 0 {
			if e.estimated == nil {
				e.estimated = map[int32][]float64{}
			}
			e.estimated[i] = t.Exp.AppendValues(nil)
			e.nEstimated++
		}
	}
}

// takeEstimated returns how many timers were sent as estimated values
// since the last call.
func (e *encoder) takeEstimated() int {
	n := e.nEstimated
	e.nEstimated = 0
	return n
}
