package histogram

import "math"

// Estimates from the buckets. Inside a bucket of c values the j-th lowest
// (0-based) is taken to be at the log-linear position (j+0.5)/c between
// the bucket's bounds, clamped to [Min, Max]; so rank 1 is Min and rank
// Count is Max exactly, and every estimate lies in the bucket of the value
// of that rank: within a relative base-1 = 2^(2^-scale)-1 of it.

// bucket is one bucket in ascending order of values: bucket index i of
// range r (+1 positive, -1 negative, 0 the zero bucket) with c values.
type bucket struct {
	r int8
	i int32
	c uint64
}

// each calls f for every non-empty bucket in ascending order of value,
// until f returns false.
func (h *Histogram) each(f func(b bucket) bool) {
	for j := h.neg.n - 1; j >= 0; j-- { // largest magnitude first
		if c := h.neg.get(j); c != 0 && !f(bucket{-1, h.neg.off + j, c}) {
			return
		}
	}
	if h.zero != 0 && !f(bucket{0, 0, h.zero}) {
		return
	}
	for j := int32(0); j < h.pos.n; j++ {
		if c := h.pos.get(j); c != 0 && !f(bucket{1, h.pos.off + j, c}) {
			return
		}
	}
}

// value is the estimate of the j-th lowest of b's values.
func (h *Histogram) value(b bucket, j uint64) float64 {
	var v float64
	frac := (float64(j) + 0.5) / float64(b.c)
	switch b.r {
	case 1:
		v = math.Exp2(math.Ldexp(float64(b.i)+frac, -int(h.scale)))
	case -1:
		v = -math.Exp2(math.Ldexp(float64(b.i)+1-frac, -int(h.scale)))
	}
	return min(max(v, h.min), h.max)
}

// ValueAt estimates the value of rank r (1 = lowest, Count = highest).
// Ranks outside 1..Count are clamped; an empty histogram gives 0.
func (h *Histogram) ValueAt(r uint64) float64 {
	if h.count == 0 {
		return 0
	}
	r = min(max(r, 1), h.count)
	if r == 1 {
		return h.min
	}
	if r == h.count {
		return h.max
	}
	var v float64
	seen := uint64(0)
	h.each(func(b bucket) bool {
		if seen+b.c >= r {
			v = h.value(b, r-seen-1)
			return false
		}
		seen += b.c
		return true
	})
	return v
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) as the value of rank
// max(1, ceil(q·Count)).
func (h *Histogram) Quantile(q float64) float64 {
	return h.ValueAt(uint64(math.Ceil(q * float64(h.count))))
}

// SumLowest estimates the sum and the sum of squares of the k lowest
// values; exact (Sum, SumSquares) for k ≥ Count.
func (h *Histogram) SumLowest(k uint64) (sum, sumSq float64) {
	if k >= h.count {
		return h.sum, h.sumSq
	}
	left := k
	h.each(func(b bucket) bool {
		n := min(left, b.c)
		s, s2 := h.bucketSums(b, n)
		sum += s
		sumSq += s2
		left -= n
		return left > 0
	})
	return sum, sumSq
}

// SumHighest is SumLowest for the k highest values: the exact totals less
// the estimate of the others.
func (h *Histogram) SumHighest(k uint64) (sum, sumSq float64) {
	if k >= h.count {
		return h.sum, h.sumSq
	}
	s, s2 := h.SumLowest(h.count - k)
	return h.sum - s, max(h.sumSq-s2, 0)
}

// bucketSums is the sum and sum of squares of the estimates of b's n
// lowest values: a geometric series in closed form.
func (h *Histogram) bucketSums(b bucket, n uint64) (sum, sumSq float64) {
	if b.r == 0 || n == 0 {
		return 0, 0
	}
	// step is the log of the ratio between two neighbouring estimates.
	step := math.Ln2 * math.Ldexp(1, -int(h.scale)) / float64(b.c)
	geo := func(step float64) float64 { // Σ_{j<n} e^(step·j)
		if step == 0 {
			return float64(n)
		}
		return math.Expm1(step*float64(n)) / math.Expm1(step)
	}
	first := h.value(b, 0)
	if first == 0 {
		return 0, 0
	}
	if b.r < 0 {
		step = -step
	}
	// For negative values the magnitudes shrink as j grows; the clamp to
	// [Min, Max] of the first estimate is kept, the others are not clamped.
	return first * geo(step), first * first * geo(2*step)
}

// AppendValues appends to dst the estimates of every value in ascending
// order (Count of them): for outputs that need raw values (a gostatsd v2
// upstream, a gsd_histogram series).
func (h *Histogram) AppendValues(dst []float64) []float64 {
	if h.count == 0 {
		return dst
	}
	start := len(dst)
	h.each(func(b bucket) bool {
		for j := uint64(0); j < b.c; j++ {
			dst = append(dst, h.value(b, j))
		}
		return true
	})
	dst[start] = h.min
	dst[len(dst)-1] = h.max
	return dst
}
