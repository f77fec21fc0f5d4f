package histogram

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzFromData feeds FromData histograms off the wire: it never panics,
// and what it accepts keeps the invariants (count is the buckets' total,
// estimates within [Min, Max], a merge with itself doubles every count).
func FuzzFromData(f *testing.F) {
	f.Add(int8(3), int32(-2), int32(5), uint8(4), []byte{1, 2, 3, 0, 7}, 0.5, 9.0, uint64(1))
	f.Add(int8(20), int32(1<<30), int32(-1<<30), uint8(200), []byte{255, 255, 1}, -1.0, 1.0, uint64(0))
	f.Fuzz(func(t *testing.T, scale int8, posOff, negOff int32, maxB uint8, raw []byte, lo, hi float64, zero uint64) {
		// One input takes microseconds. One that took 30s would be a hostile
		// forwarder's way to stall an aggregator: crash the worker, so that
		// the fuzzer keeps the input as a failure instead of stalling.
		watchdog := time.AfterFunc(30*time.Second, func() { panic("FromData and its checks took over 30s on this input") })
		defer watchdog.Stop()
		var d Data
		d.Scale, d.PositiveOffset, d.NegativeOffset, d.ZeroCount = int32(scale), posOff, negOff, zero%1000
		for i := 0; i+2 <= len(raw); i += 2 {
			v := uint64(binary.LittleEndian.Uint16(raw[i:]))
			if i%4 == 0 {
				d.Positive = append(d.Positive, v)
			} else {
				d.Negative = append(d.Negative, v)
			}
		}
		d.Count = d.ZeroCount
		for _, v := range append(d.Positive, d.Negative...) {
			d.Count += v
		}
		d.Min, d.Max = lo, hi
		h, err := FromData(&d, int(maxB))
		if err != nil {
			return
		}
		if h.Count() != d.Count {
			t.Fatalf("count %d, want %d", h.Count(), d.Count)
		}
		if h.pos.n > int32(h.MaxBuckets()) || h.neg.n > int32(h.MaxBuckets()) {
			t.Fatalf("ranges %d, %d over %d buckets", h.pos.n, h.neg.n, h.MaxBuckets())
		}
		for _, q := range []float64{0, 0.3, 0.5, 0.99, 1} {
			if v := h.Quantile(q); h.Count() > 0 && (v < h.Min() || v > h.Max() || math.IsNaN(v)) {
				t.Fatalf("quantile %g = %g outside [%g, %g]", q, v, h.Min(), h.Max())
			}
		}
		var e Data
		h.Export(&e)
		back, err := FromData(&e, h.MaxBuckets())
		if err != nil {
			t.Fatalf("own export refused: %v", err)
		}
		back.Merge(h)
		if back.Count() != 2*h.Count() || back.ZeroCount() != 2*h.ZeroCount() {
			t.Fatalf("merge with itself: count %d, want %d", back.Count(), 2*h.Count())
		}
	})
}

func FuzzAdd(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 240, 63}, uint8(8))
	f.Fuzz(func(t *testing.T, raw []byte, maxB uint8) {
		h := New(int(maxB))
		n := uint64(0)
		for i := 0; i+8 <= len(raw); i += 8 {
			if h.Add(math.Float64frombits(binary.LittleEndian.Uint64(raw[i:]))) {
				n++
			}
		}
		if h.Count() != n {
			t.Fatalf("count %d, want %d", h.Count(), n)
		}
		var d Data
		h.Export(&d)
		if _, err := FromData(&d, int(maxB)); err != nil && !math.IsInf(h.Sum(), 0) && !math.IsInf(h.SumSquares(), 0) {
			t.Fatalf("own export refused: %v", err)
		}
	})
}
