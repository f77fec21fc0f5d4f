package hll

import "testing"

func BenchmarkAdd(b *testing.B) {
	ms := make([][]byte, 4096)
	for i := range ms {
		ms[i] = member(i * 7919)
	}
	for _, tc := range []struct {
		name     string
		distinct int
	}{{"sparse-500", 500}, {"dense", len(ms)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			s := New(DefaultPrecision)
			for i := 0; b.Loop(); i++ {
				s.Add(ms[i%tc.distinct])
			}
		})
	}
}

func BenchmarkEstimateDense(b *testing.B) {
	s := New(DefaultPrecision)
	for i := 0; i < 100_000; i++ {
		s.Add(member(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Estimate()
	}
}
