// Package histogram is a base-2 exponential histogram: the OpenTelemetry
// ExponentialHistogram data model, whose scale is the schema of a
// Prometheus native histogram.
//
// At scale s the base is 2^(2^-s) and bucket index i holds the values in
// (base^i, base^(i+1)]; the index of a value v > 0 is ceil(log2(v)·2^s) - 1.
// Negative values go to a second range of buckets by their magnitude, and
// exact zeros to the zero bucket. Count, sum, sum of squares, min and max
// are kept exactly (as float sums in arrival order).
//
// A histogram starts at MaxScale and lowers its scale (two adjacent
// buckets become one, index i becoming i>>1) whenever the values seen
// would otherwise need more than its maximum number of buckets in one
// range. Its memory is therefore bounded whatever the number of samples:
// at most 2·maxBuckets counters of at most 8 bytes each, and in practice
// 1 or 2 bytes (counters widen only when they need to).
//
// Two histograms merge exactly: the finer is brought down to the coarser
// scale first (or both lower, if the merged range needs it). Percentiles
// estimated from the buckets are within the bucket's relative width,
// base-1 = 2^(2^-s)-1, of some value of the right rank (interpolated inside
// the bucket, so usually much closer); at the default 512 buckets a range
// of up to 16 octaves keeps scale 5: base-1 ≈ 2.19%.
//
// A Histogram is not safe for concurrent use.
package histogram

import (
	"errors"
	"fmt"
	"math"
)

// Scale limits, those of OpenTelemetry. Prometheus native histograms take
// schemas -4..8 only: exporters downscale a copy (Downscale).
const (
	MaxScale = 20
	MinScale = -10
)

// DefaultMaxBuckets is the default most buckets per range (positive,
// negative): enough for scale 5 (error bound 2^(1/32)-1 ≈ 2.19%) over 16
// octaves, e.g. 0.1 ms to 6.5 s.
const DefaultMaxBuckets = 512

// minMaxBuckets is the fewest buckets a range may be bounded to: below it
// even MinScale may not cover the float64 range.
const minMaxBuckets = 4

// MaxBucketsLimit is the most buckets per range a histogram may be given
// (New clamps to it): 2^16, scale 12 over the whole float64 range.
const MaxBucketsLimit = 1 << 16

// Histogram is an exponential histogram. The zero value is not usable:
// call New.
type Histogram struct {
	scale      int32
	maxBuckets int32
	count      uint64
	zero       uint64
	sum, sumSq float64
	min, max   float64
	pos, neg   counts
}

// New returns an empty histogram at MaxScale that keeps at most maxBuckets
// buckets per range (clamped to 4..MaxBucketsLimit).
func New(maxBuckets int) *Histogram {
	h := &Histogram{}
	h.init(maxBuckets)
	return h
}

func (h *Histogram) init(maxBuckets int) {
	*h = Histogram{scale: MaxScale, maxBuckets: int32(max(minMaxBuckets, min(maxBuckets, MaxBucketsLimit)))}
}

// Reset empties h, keeping its bucket memory and maximum, and restores
// MaxScale.
func (h *Histogram) Reset() {
	pos, neg := h.pos.b[:0], h.neg.b[:0]
	h.init(int(h.maxBuckets))
	h.pos.b, h.neg.b = pos, neg
}

// Scale is the current scale.
func (h *Histogram) Scale() int32 { return h.scale }

// MaxBuckets is the most buckets per range.
func (h *Histogram) MaxBuckets() int { return int(h.maxBuckets) }

// Count is the number of values added.
func (h *Histogram) Count() uint64 { return h.count }

// ZeroCount is the number of values that were exactly zero.
func (h *Histogram) ZeroCount() uint64 { return h.zero }

// Sum is the sum of the values.
func (h *Histogram) Sum() float64 { return h.sum }

// SumSquares is the sum of the squares of the values.
func (h *Histogram) SumSquares() float64 { return h.sumSq }

// Min is the lowest value, 0 when empty.
func (h *Histogram) Min() float64 { return h.min }

// Max is the highest value, 0 when empty.
func (h *Histogram) Max() float64 { return h.max }

// Bytes is the memory the histogram holds, struct included.
func (h *Histogram) Bytes() int { return 96 + cap(h.pos.b) + cap(h.neg.b) }

// Index is the bucket index of a value v > 0 at scale: the i with
// base^i < v ≤ base^(i+1). Values below the smallest normal float64 are
// mapped as that value.
func Index(v float64, scale int32) int32 {
	if v < 0x1p-1022 {
		v = 0x1p-1022
	}
	frac, exp := math.Frexp(v) // v = frac·2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		// An exact power of two, 2^(exp-1), is the upper bound of its
		// bucket: computed exactly, not through the logarithm.
		if scale >= 0 {
			return int32(exp-1)<<scale - 1
		}
		return int32(exp-2) >> -scale
	}
	if scale <= 0 {
		return int32(exp-1) >> -scale
	}
	return int32(math.Ceil(math.Log2(v)*math.Ldexp(1, int(scale)))) - 1
}

// LowerBound is the lower bound of bucket index i at scale: base^i.
func LowerBound(i, scale int32) float64 {
	return math.Exp2(math.Ldexp(float64(i), -int(scale)))
}

// Add adds one value. NaN and ±Inf are refused (false): statsd parsers
// and decoders refuse them before.
func (h *Histogram) Add(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	h.addStats(1, v, v, v, v*v)
	switch {
	case v > 0:
		h.addBucket(&h.pos, v, 1)
	case v < 0:
		h.addBucket(&h.neg, -v, 1)
	default:
		h.zero++
	}
	return true
}

func (h *Histogram) addStats(n uint64, lo, hi, sum, sumSq float64) {
	if h.count == 0 {
		h.min, h.max = lo, hi
	} else {
		h.min, h.max = min(h.min, lo), max(h.max, hi)
	}
	h.count += n
	h.sum += sum
	h.sumSq += sumSq
}

func (h *Histogram) addBucket(c *counts, v float64, k uint64) {
	i := Index(v, h.scale)
	if c.n == 0 || i < c.off || i > c.hi() {
		if d := h.needed(c, i); d > 0 {
			h.downscaleBy(d)
			i = Index(v, h.scale)
		}
		c.cover(i)
	}
	c.add(i, k)
}

// needed is by how much the scale must drop for range c to take index i.
func (h *Histogram) needed(c *counts, i int32) int32 {
	d := int32(0)
	for h.scale-d > MinScale && c.spanAfter(i, d) > int64(h.maxBuckets) {
		d++
	}
	return d
}

func (h *Histogram) downscaleBy(d int32) {
	d = min(d, h.scale-MinScale)
	if d <= 0 {
		return
	}
	h.pos.downscale(d)
	h.neg.downscale(d)
	h.scale -= d
}

// Downscale lowers the scale to scale (no-op if it is not higher): the
// exact merge of adjacent buckets. Prometheus exporters use it to reach
// schema 8 at most.
func (h *Histogram) Downscale(scale int32) { h.downscaleBy(h.scale - max(scale, MinScale)) }

// Merge adds every value of o to h, exactly: at the lower of the two
// scales, or lower still if the merged range needs more than h's maximum
// buckets. o is not changed.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	if o.scale < h.scale {
		h.downscaleBy(h.scale - o.scale)
	}
	h.addStats(o.count, o.min, o.max, o.sum, o.sumSq)
	h.zero += o.zero
	h.mergeRange(&h.pos, &o.pos, o.scale)
	h.mergeRange(&h.neg, &o.neg, o.scale)
}

// mergeRange adds o's counters, at scale (as fine as h's or finer), to c.
func (h *Histogram) mergeRange(c, o *counts, scale int32) {
	if o.n == 0 {
		return
	}
	d := scale - h.scale
	for {
		lo, hi := o.off>>d, o.hi()>>d
		if c.n == 0 || lo < c.off || hi > c.hi() {
			e := int32(0)
			for h.scale-e > MinScale && spanBoth(c, lo, hi, e) > int64(h.maxBuckets) {
				e++
			}
			if e > 0 {
				h.downscaleBy(e)
				d += e
				continue
			}
			c.cover(lo)
			c.cover(hi)
		}
		break
	}
	for j := int32(0); j < o.n; j++ {
		if v := o.get(j); v != 0 {
			c.add((o.off+j)>>d, v)
		}
	}
}

// spanBoth is the span of range c together with [lo, hi] at e scales lower.
func spanBoth(c *counts, lo, hi, e int32) int64 {
	if c.n > 0 {
		lo, hi = min(lo, c.off), max(hi, c.hi())
	}
	return int64(hi>>e) - int64(lo>>e) + 1
}

// Clone returns a deep copy of h.
func (h *Histogram) Clone() *Histogram {
	c := *h
	c.pos.b = append([]byte(nil), h.pos.b...)
	c.neg.b = append([]byte(nil), h.neg.b...)
	return &c
}

// Data is a histogram in its exported form, as an OpenTelemetry
// ExponentialHistogramDataPoint holds it: Positive[j] is the count of bucket
// index PositiveOffset+j (Negative likewise for the magnitudes of negative
// values).
type Data struct {
	Scale          int32
	Count          uint64
	ZeroCount      uint64
	Sum            float64
	SumSquares     float64
	Min, Max       float64
	PositiveOffset int32
	Positive       []uint64
	NegativeOffset int32
	Negative       []uint64
}

// Export fills d from h, appending the counters to d.Positive[:0] and
// d.Negative[:0] (their memory is reused).
func (h *Histogram) Export(d *Data) {
	pos, neg := d.Positive[:0], d.Negative[:0]
	*d = Data{Scale: h.scale, Count: h.count, ZeroCount: h.zero, Sum: h.sum, SumSquares: h.sumSq,
		Min: h.min, Max: h.max, PositiveOffset: h.pos.off, NegativeOffset: h.neg.off}
	for j := int32(0); j < h.pos.n; j++ {
		pos = append(pos, h.pos.get(j))
	}
	for j := int32(0); j < h.neg.n; j++ {
		neg = append(neg, h.neg.get(j))
	}
	d.Positive, d.Negative = pos, neg
}

// ErrInvalid is wrapped by the errors of FromData.
var ErrInvalid = errors.New("invalid histogram")

// FromData builds a histogram from its exported form (off the wire),
// keeping at most maxBuckets buckets per range (it downscales to fit). It
// refuses a scale outside MinScale..MaxScale, a count that is not the sum
// of the buckets, a non-finite statistic and min > max.
func FromData(d *Data, maxBuckets int) (*Histogram, error) {
	if d.Scale < MinScale || d.Scale > MaxScale {
		return nil, fmt.Errorf("%w: scale %d outside %d..%d", ErrInvalid, d.Scale, MinScale, MaxScale)
	}
	for _, f := range [...]float64{d.Sum, d.SumSquares, d.Min, d.Max} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: a statistic is not finite", ErrInvalid)
		}
	}
	if d.Count > 0 && d.Min > d.Max {
		return nil, fmt.Errorf("%w: min %g above max %g", ErrInvalid, d.Min, d.Max)
	}
	total := d.ZeroCount
	for _, r := range [...][]uint64{d.Positive, d.Negative} {
		for _, v := range r {
			if total+v < total {
				return nil, fmt.Errorf("%w: bucket counts overflow", ErrInvalid)
			}
			total += v
		}
	}
	if total != d.Count {
		return nil, fmt.Errorf("%w: count %d is not the buckets' total %d", ErrInvalid, d.Count, total)
	}
	if !inRange(d.PositiveOffset, d.Positive, d.Scale) || !inRange(d.NegativeOffset, d.Negative, d.Scale) {
		return nil, fmt.Errorf("%w: a bucket lies outside the float64 range at scale %d", ErrInvalid, d.Scale)
	}
	// Built at its own scale without a bucket limit, then merged into one
	// with the limit: the merge downscales as needed.
	src := &Histogram{scale: d.Scale, maxBuckets: math.MaxInt32, count: d.Count, zero: d.ZeroCount,
		sum: d.Sum, sumSq: d.SumSquares, min: d.Min, max: d.Max}
	fill(&src.pos, d.PositiveOffset, d.Positive)
	fill(&src.neg, d.NegativeOffset, d.Negative)
	h := New(maxBuckets)
	h.Merge(src)
	if d.Count == 0 {
		h.scale = min(h.scale, d.Scale)
	}
	return h, nil
}

// inRange says whether the non-zero counters of vs, from bucket index off,
// are buckets float64 values can fall in at scale.
func inRange(off int32, vs []uint64, scale int32) bool {
	lo, hi := Index(0x1p-1022, scale), Index(math.MaxFloat64, scale)
	for j, v := range vs {
		if i := int64(off) + int64(j); v != 0 && (i < int64(lo) || i > int64(hi)) {
			return false
		}
	}
	return true
}

// fill sets c to the counters vs from index off, trimming zero counters at
// both ends.
func fill(c *counts, off int32, vs []uint64) {
	for len(vs) > 0 && vs[0] == 0 {
		vs, off = vs[1:], off+1
	}
	for len(vs) > 0 && vs[len(vs)-1] == 0 {
		vs = vs[:len(vs)-1]
	}
	if len(vs) == 0 {
		return
	}
	c.w = 1
	c.off, c.n = off, int32(len(vs))
	c.b = make([]byte, len(vs))
	for j, v := range vs {
		c.set(int32(j), v)
	}
}
