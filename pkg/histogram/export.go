package histogram

import (
	"math"
	"math/bits"
	"slices"
)

// Helpers for exporters (Prometheus native histograms, OTLP exponential
// histograms), which get a timer either as a histogram or as its raw values
// and must apply its sample rate to the bucket counts.

// FromValues returns a histogram of values, keeping at most maxBuckets
// buckets per range; NaN and ±Inf are left out.
func FromValues(values []float64, maxBuckets int) *Histogram {
	h := New(maxBuckets)
	for _, v := range values {
		h.Add(v)
	}
	return h
}

// ExportScaled is Export with the counters scaled so that they total
// total instead of Count: how a sample rate (each value standing for 1/rate
// values) reaches the buckets. Every counter becomes its exact share
// c·total/Count, rounded so that the running total of the counters (zero
// bucket, then positive, then negative buckets) is rounded exactly: each
// counter is within 1 of its share, none goes negative and they add up to
// total. d.Count is total; the other statistics are h's. With total =
// Count it is Export.
func (h *Histogram) ExportScaled(d *Data, total uint64) {
	h.Export(d)
	n := d.Count
	if n == 0 || total == n {
		return
	}
	var seen, given uint64
	scale := func(c uint64) uint64 {
		seen += c
		cum := mulDivRound(seen, total, n)
		c, given = cum-given, cum
		return c
	}
	d.ZeroCount = scale(d.ZeroCount)
	for j, c := range d.Positive {
		d.Positive[j] = scale(c)
	}
	for j, c := range d.Negative {
		d.Negative[j] = scale(c)
	}
	d.Count = total
}

// mulDivRound is round(a·b/c) for a ≤ c, c > 0, exactly (128-bit product).
func mulDivRound(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	lo, carry := bits.Add64(lo, c/2, 0)
	q, _ := bits.Div64(hi+carry, lo, c) // a ≤ c: the quotient fits, hi+carry < c
	return q
}

// WeightedCount is the bucket total a timer's histogram is exported with:
// its sampled count (Σ 1/rate) rounded to the nearest integer, or count
// when the sampled count is not a positive finite number.
func WeightedCount(sampled float64, count uint64) uint64 {
	if !(sampled > 0) || math.IsInf(sampled, 0) || sampled >= 1<<63 {
		return count
	}
	return uint64(math.Floor(sampled + 0.5))
}

// ExportArena is Export with the counters appended to arena instead:
// d.Positive and d.Negative become sub-slices of the returned arena, so that
// the histograms of a whole flush export into a few allocations. What
// arena held before is not changed (a grown arena is a new array).
func (h *Histogram) ExportArena(d *Data, arena []uint64) []uint64 {
	arena = slices.Grow(arena, int(h.pos.n+h.neg.n))
	start := len(arena)
	for j := int32(0); j < h.pos.n; j++ {
		arena = append(arena, h.pos.get(j))
	}
	mid := len(arena)
	for j := int32(0); j < h.neg.n; j++ {
		arena = append(arena, h.neg.get(j))
	}
	end := len(arena)
	*d = Data{Scale: h.scale, Count: h.count, ZeroCount: h.zero, Sum: h.sum, SumSquares: h.sumSq,
		Min: h.min, Max: h.max, PositiveOffset: h.pos.off, NegativeOffset: h.neg.off,
		Positive: arena[start:mid:mid], Negative: arena[mid:end:end]}
	return arena
}
