package histogram

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func BenchmarkAdd(b *testing.B) {
	vs := lognormal(rand.New(rand.NewPCG(1, 1)), 4096)
	h := New(DefaultMaxBuckets)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Add(vs[i&4095])
	}
}

// BenchmarkExactBaseline is what exact mode pays per sample: an append,
// then its share of the flush's sort.
func BenchmarkExactBaseline(b *testing.B) {
	vs := lognormal(rand.New(rand.NewPCG(1, 1)), 25000)
	buf := make([]float64, 0, len(vs))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = append(buf, vs[i%len(vs)])
		if len(buf) == len(vs) {
			slices.Sort(buf)
			buf = buf[:0]
		}
	}
}

func BenchmarkMerge(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	src := New(DefaultMaxBuckets)
	for _, v := range lognormal(r, 25000) {
		src.Add(v)
	}
	dst := New(DefaultMaxBuckets)
	b.ReportAllocs()
	for b.Loop() {
		dst.Merge(src)
	}
}

func BenchmarkQuantile(b *testing.B) {
	h := New(DefaultMaxBuckets)
	for _, v := range lognormal(rand.New(rand.NewPCG(3, 3)), 25000) {
		h.Add(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Quantile(0.99)
	}
}
