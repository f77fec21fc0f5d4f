package exporter

import (
	"math"
	"sort"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// classicHist is a histogram with classic buckets only (no native
// histogram asked for): counts per bucket, sum and count, the semantics of
// client_golang's histogram (a value v goes into the first bucket whose
// upper bound is ≥ v; TestClassicMatchesClientGolang checks it), in a few
// dozen bytes instead of client_golang's ~1.5 KB per series, and written
// by the scrape without a message per series.
//
// It is observed under Exporter.mu (by SendMetrics) and read only there:
// a scrape copies it in snapshot.
type classicHist struct {
	bounds []float64 // upper bounds, increasing, without +Inf; shared
	counts []uint64  // per bucket, not cumulative; counts[len(bounds)] is +Inf's
	sum    float64
	count  uint64
}

var _ prom.Observer = (*classicHist)(nil)

func newClassic(buckets []float64) *classicHist {
	if len(buckets) == 0 {
		buckets = prom.DefBuckets
	}
	if math.IsInf(buckets[len(buckets)-1], 1) {
		buckets = buckets[:len(buckets)-1]
	}
	return &classicHist{bounds: buckets, counts: make([]uint64, len(buckets)+1)}
}

// Observe adds v.
func (h *classicHist) Observe(v float64) {
	h.counts[sort.SearchFloat64s(h.bounds, v)]++
	h.sum += v
	h.count++
}

// appendState appends count, sum (as bits) and the per-bucket counts to
// dst: what a scrape copies.
func (h *classicHist) appendState(dst []uint64) []uint64 {
	dst = append(dst, h.count, math.Float64bits(h.sum))
	return append(dst, h.counts...)
}

// classicState is a copy made by appendState, read back.
type classicState struct {
	bounds []float64
	count  uint64
	sum    float64
	counts []uint64
}

func readClassic(h *classicHist, copied []uint64) classicState {
	return classicState{bounds: h.bounds, count: copied[0], sum: math.Float64frombits(copied[1]), counts: copied[2 : 2+len(h.counts)]}
}

// cumulative calls f with each finite bucket's upper bound and cumulative
// count, in order.
func (c classicState) cumulative(f func(le float64, n uint64)) {
	var n uint64
	for i, le := range c.bounds {
		n += c.counts[i]
		f(le, n)
	}
}

// dto is the state as client_golang's message, for gather.
func (c classicState) dto() *dto.Histogram {
	h := &dto.Histogram{SampleCount: &c.count, SampleSum: &c.sum, Bucket: make([]*dto.Bucket, 0, len(c.bounds))}
	c.cumulative(func(le float64, n uint64) {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &le, CumulativeCount: &n})
	})
	return h
}
