package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestFromValues(t *testing.T) {
	h := FromValues([]float64{1, 2, math.NaN(), 0, -3, math.Inf(1)}, 64)
	if h.Count() != 4 || h.ZeroCount() != 1 || h.Min() != -3 || h.Max() != 2 || h.Sum() != 0 {
		t.Errorf("count %d zero %d min %g max %g sum %g, want 4 1 -3 2 0", h.Count(), h.ZeroCount(), h.Min(), h.Max(), h.Sum())
	}
	if h.MaxBuckets() != 64 {
		t.Errorf("max buckets %d, want 64", h.MaxBuckets())
	}
}

func TestExportScaled(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vs := lognormal(r, 5000)
	vs = append(vs, 0, 0, -1, -2, -2)
	h := FromValues(vs, DefaultMaxBuckets)
	var plain Data
	h.Export(&plain)
	for _, total := range []uint64{0, 1, 7, 5005, 10010, 50050, 123457, 1 << 62} {
		var d Data
		h.ExportScaled(&d, total)
		if d.Count != total {
			t.Fatalf("total %d: Count %d", total, d.Count)
		}
		if d.Scale != plain.Scale || d.PositiveOffset != plain.PositiveOffset || d.NegativeOffset != plain.NegativeOffset ||
			len(d.Positive) != len(plain.Positive) || len(d.Negative) != len(plain.Negative) || d.Sum != plain.Sum || d.Min != plain.Min {
			t.Fatalf("total %d: layout or statistics changed: %+v", total, d)
		}
		f := float64(total) / float64(plain.Count)
		sum := uint64(0)
		check := func(what string, got, was uint64) {
			if share := float64(was) * f; math.Abs(float64(got)-share) > 1+share*1e-12 {
				t.Errorf("total %d: %s %d, share %g", total, what, got, share)
			}
			sum += got
		}
		check("zero", d.ZeroCount, plain.ZeroCount)
		for j := range d.Positive {
			check("positive", d.Positive[j], plain.Positive[j])
		}
		for j := range d.Negative {
			check("negative", d.Negative[j], plain.Negative[j])
		}
		if sum != total {
			t.Errorf("total %d: counters add up to %d", total, sum)
		}
		if _, err := FromData(&d, DefaultMaxBuckets); err != nil {
			t.Errorf("total %d: scaled data does not hold together: %v", total, err)
		}
	}
	var same Data
	h.ExportScaled(&same, h.Count())
	for j := range same.Positive {
		if same.Positive[j] != plain.Positive[j] {
			t.Fatalf("scaled to its own count, bucket %d changed", j)
		}
	}
}

func TestWeightedCount(t *testing.T) {
	tests := []struct {
		name    string
		sampled float64
		count   uint64
		want    uint64
	}{
		{"no sampling", 10, 10, 10},
		{"rate 0.1", 100, 10, 100},
		{"rounded", 2.5, 2, 3},
		{"zero sampled count", 0, 4, 4},
		{"NaN", math.NaN(), 4, 4},
		{"Inf", math.Inf(1), 4, 4},
		{"huge", 1e30, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WeightedCount(tt.sampled, tt.count); got != tt.want {
				t.Errorf("WeightedCount(%g, %d) = %d, want %d", tt.sampled, tt.count, got, tt.want)
			}
		})
	}
}

func TestExportArena(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var arena []uint64
	var ds []Data
	var hs []*Histogram
	for i := range 20 {
		vs := lognormal(r, 50+i*100)
		if i%3 == 0 {
			vs = append(vs, -1, -7, 0)
		}
		h := FromValues(vs, DefaultMaxBuckets)
		var d Data
		arena = h.ExportArena(&d, arena)
		hs, ds = append(hs, h), append(ds, d)
	}
	for i, h := range hs {
		var want Data
		h.Export(&want)
		got := ds[i]
		if got.Scale != want.Scale || got.Count != want.Count || got.ZeroCount != want.ZeroCount || got.Sum != want.Sum ||
			got.SumSquares != want.SumSquares || got.Min != want.Min || got.Max != want.Max ||
			got.PositiveOffset != want.PositiveOffset || got.NegativeOffset != want.NegativeOffset {
			t.Fatalf("histogram %d: statistics %+v, want %+v", i, got, want)
		}
		if !slices.Equal(got.Positive, want.Positive) || !slices.Equal(got.Negative, want.Negative) {
			t.Fatalf("histogram %d: counters differ from Export's after later exports", i)
		}
	}
}
