package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIndex(t *testing.T) {
	tests := []struct {
		name  string
		v     float64
		scale int32
		want  int32
	}{
		{"one at scale 0 is the top of (0.5, 1]", 1, 0, -1},
		{"just above one", math.Nextafter(1, 2), 0, 0},
		{"two at scale 0", 2, 0, 0},
		{"three at scale 0", 3, 0, 1},
		{"four at scale -1", 4, -1, 0},
		{"five at scale -1", 5, -1, 1},
		{"two at scale 3", 2, 3, 7},
		{"4 at scale 1 is a bound", 4, 1, 3},
		{"1.5 at scale 1", 1.5, 1, 1},
		{"tiny is the smallest normal", 1e-320, 0, -1023},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Index(tt.v, tt.scale); got != tt.want {
				t.Errorf("Index(%g, %d) = %d, want %d", tt.v, tt.scale, got, tt.want)
			}
		})
	}
}

// Every value lies in its bucket's bounds, within float rounding of them.
func TestIndexBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		v := math.Exp(r.NormFloat64() * 20)
		for _, s := range []int32{-10, -3, 0, 1, 5, 8, 20} {
			i := Index(v, s)
			lo, hi := LowerBound(i, s), LowerBound(i+1, s)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				t.Fatalf("Index(%g, %d) = %d: bucket (%g, %g]", v, s, i, lo, hi)
			}
		}
	}
}

func lognormal(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		// median 50 ms, 1 ms .. 2.3 s within about ±3.9 sigma
		vs[i] = math.Exp(math.Log(50) + r.NormFloat64())
	}
	return vs
}

// exactRank is the value of rank k (1-based) in sorted vs.
func exactRank(sorted []float64, k int) float64 { return sorted[min(max(k, 1), len(sorted))-1] }

func TestAccuracyDefaults(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vs := lognormal(r, 100000)
	h := New(DefaultMaxBuckets)
	var sum float64
	for _, v := range vs {
		h.Add(v)
		sum += v
	}
	sorted := slices.Clone(vs)
	slices.Sort(sorted)
	if h.Count() != uint64(len(vs)) || h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] || h.Sum() != sum {
		t.Fatalf("count/min/max/sum %d %g %g %g, want %d %g %g %g", h.Count(), h.Min(), h.Max(), h.Sum(),
			len(vs), sorted[0], sorted[len(sorted)-1], sum)
	}
	if h.Scale() < 5 {
		t.Errorf("scale %d for a range of %.1f octaves with %d buckets, want ≥ 5", h.Scale(),
			math.Log2(sorted[len(sorted)-1]/sorted[0]), DefaultMaxBuckets)
	}
	bound := math.Exp2(math.Exp2(-float64(h.Scale()))) - 1
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999} {
		k := int(math.Ceil(q * float64(len(vs))))
		want := exactRank(sorted, k)
		got := h.ValueAt(uint64(k))
		if e := math.Abs(got-want) / want; e > bound || e > 0.02 {
			t.Errorf("q%g: %g, exact %g: error %.3f%% (bound %.3f%%)", q, got, want, 100*e, 100*bound)
		}
	}
	s90, _ := h.SumLowest(90000)
	var w90 float64
	for _, v := range sorted[:90000] {
		w90 += v
	}
	if e := math.Abs(s90-w90) / w90; e > bound {
		t.Errorf("sum of the lowest 90%%: %g, exact %g: error %.3f%%", s90, w90, 100*e)
	}
	if b := h.Bytes(); b > 2048 {
		t.Errorf("a series of %d lognormal samples holds %d bytes, want ≤ 2048", len(vs), b)
	}
}

// Memory stays bounded whatever the traffic: 1M samples over a range far
// wider than the buckets allow.
func TestMemoryBounded(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	h := New(DefaultMaxBuckets)
	for n := 0; n < 1000000; n++ {
		v := math.Exp(r.NormFloat64() * 10)
		if n%3 == 0 {
			v = -v
		}
		h.Add(v)
	}
	// two ranges of at most 512 counters, at most 4 bytes each for 1M
	// samples, plus growth slack
	if b := h.Bytes(); b > 2*(512+64)*4+96 {
		t.Errorf("1M samples: %d bytes", b)
	}
	if h.pos.n > 512 || h.neg.n > 512 {
		t.Errorf("ranges of %d and %d buckets, want ≤ 512", h.pos.n, h.neg.n)
	}
	if h.Count() != 1000000 {
		t.Errorf("count %d", h.Count())
	}
	t.Logf("1M samples: scale %d, %d bytes", h.Scale(), h.Bytes())
}

func export(h *Histogram) Data {
	var d Data
	h.Export(&d)
	return d
}

func sameBuckets(t *testing.T, got, want Data) {
	t.Helper()
	if got.Scale != want.Scale || got.Count != want.Count || got.ZeroCount != want.ZeroCount ||
		got.PositiveOffset != want.PositiveOffset || !slices.Equal(got.Positive, want.Positive) ||
		got.NegativeOffset != want.NegativeOffset || !slices.Equal(got.Negative, want.Negative) ||
		got.Min != want.Min || got.Max != want.Max {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if math.Abs(got.Sum-want.Sum) > 1e-9*math.Abs(want.Sum) {
		t.Fatalf("sum %g, want %g", got.Sum, want.Sum)
	}
}

// Merging histograms of different scales gives the histogram of all the
// values: merges are exact.
func TestMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tests := []struct {
		name string
		a, b func() float64
	}{
		{"narrow into wide", func() float64 { return 1 + r.Float64()/1000 }, func() float64 { return math.Exp(r.NormFloat64() * 5) }},
		{"wide into narrow", func() float64 { return math.Exp(r.NormFloat64() * 5) }, func() float64 { return 100 + r.Float64() }},
		{"signs and zeros", func() float64 { return float64(r.IntN(5) - 2) }, func() float64 { return -math.Exp(r.NormFloat64()) }},
		{"disjoint ranges", func() float64 { return 1e-6 * (1 + r.Float64()) }, func() float64 { return 1e6 * (1 + r.Float64()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, maxB := range []int{8, 160, 512} {
				all, a, b := New(maxB), New(maxB), New(maxB)
				for n := 0; n < 5000; n++ {
					v := tt.a()
					a.Add(v)
					all.Add(v)
				}
				for n := 0; n < 5000; n++ {
					v := tt.b()
					b.Add(v)
					all.Add(v)
				}
				bs := b.Scale()
				a.Merge(b)
				sameBuckets(t, export(a), export(all))
				if b.Scale() != bs || b.Count() != 5000 {
					t.Fatal("Merge changed its argument")
				}
			}
		})
	}
}

func TestFromDataRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	h := New(DefaultMaxBuckets)
	for n := 0; n < 1000; n++ {
		h.Add(r.NormFloat64() * 100)
	}
	h.Add(0)
	d := export(h)
	got, err := FromData(&d, DefaultMaxBuckets)
	if err != nil {
		t.Fatal(err)
	}
	sameBuckets(t, export(got), d)
	// into fewer buckets: the same as downscaling
	small, err := FromData(&d, 16)
	if err != nil {
		t.Fatal(err)
	}
	want := h.Clone()
	want.maxBuckets = 16
	want.Downscale(small.Scale())
	sameBuckets(t, export(small), export(want))
}

func TestFromDataInvalid(t *testing.T) {
	tests := []struct {
		name string
		d    Data
	}{
		{"scale too high", Data{Scale: 21}},
		{"scale too low", Data{Scale: -11}},
		{"count not the total", Data{Count: 3, Positive: []uint64{1}}},
		{"nan sum", Data{Sum: math.NaN()}},
		{"min above max", Data{Count: 1, ZeroCount: 1, Min: 2, Max: 1}},
		{"overflow", Data{Count: 1, Positive: []uint64{math.MaxUint64, 2}}},
		{"index overflow", Data{Count: 1, PositiveOffset: math.MaxInt32, Positive: []uint64{0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FromData(&tt.d, 100); err == nil {
				t.Errorf("FromData(%+v) accepted", tt.d)
			}
		})
	}
}

func TestEstimatesSmall(t *testing.T) {
	h := New(DefaultMaxBuckets)
	if h.ValueAt(1) != 0 || h.Quantile(0.5) != 0 {
		t.Error("empty histogram estimates not 0")
	}
	for _, v := range []float64{-3, 0, 1, 2, 10} {
		h.Add(v)
	}
	got := h.AppendValues(nil)
	want := []float64{-3, 0, 1, 2, 10}
	bound := math.Exp2(math.Exp2(-float64(h.Scale()))) - 1
	for i := range want {
		if math.Abs(got[i]-want[i]) > bound*math.Abs(want[i]) {
			t.Fatalf("AppendValues %v, want %v", got, want)
		}
	}
	if s, _ := h.SumHighest(2); math.Abs(s-12) > 12*bound {
		t.Errorf("SumHighest(2) = %g, want 12", s)
	}
	if s, s2 := h.SumLowest(5); s != 10 || s2 != 114 {
		t.Errorf("SumLowest(all) = %g %g, want 10 114", s, s2)
	}
}

func TestCountersWiden(t *testing.T) {
	h := New(DefaultMaxBuckets)
	for n := 0; n < 70000; n++ {
		h.Add(5)
	}
	d := export(h)
	if len(d.Positive) != 1 || d.Positive[0] != 70000 || h.pos.w != 4 {
		t.Errorf("one bucket of 70000: %v, width %d", d.Positive, h.pos.w)
	}
	h.Reset()
	if h.Count() != 0 || h.Scale() != MaxScale || h.pos.n != 0 {
		t.Error("Reset left state")
	}
}

func TestNonFinite(t *testing.T) {
	h := New(10)
	if h.Add(math.NaN()) || h.Add(math.Inf(1)) || h.Count() != 0 {
		t.Error("non-finite values were added")
	}
}
