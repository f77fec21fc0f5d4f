package hll

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

func member(i int) []byte { return strconv.AppendInt([]byte("user-"), int64(i), 10) }

// within fails unless est is within k standard errors of n.
func within(t *testing.T, name string, est uint64, n int, p int, k float64) {
	t.Helper()
	se := 1.04 / math.Sqrt(float64(uint64(1)<<p))
	if rel := math.Abs(float64(est)-float64(n)) / float64(n); rel > k*se {
		t.Errorf("%s: estimate %d of %d distinct: relative error %.4f over %.0f sigma (%.4f)", name, est, n, rel, k, k*se)
	}
}

func TestAccuracy1M(t *testing.T) {
	const n = 1_000_000
	s := New(DefaultPrecision)
	checkpoints := map[int]bool{10: true, 1000: true, 2047: true, 5000: true, 20_000: true, 50_000: true, 200_000: true, n: true}
	for i := 1; i <= n; i++ {
		s.Add(member(i))
		if checkpoints[i] {
			within(t, strconv.Itoa(i), s.Estimate(), i, DefaultPrecision, 3)
		}
	}
	if s.Sparse() {
		t.Fatal("a sketch of 1M members is still sparse")
	}
	if b := s.Bytes(); b != 1<<DefaultPrecision {
		t.Errorf("dense sketch takes %d bytes, want %d", b, 1<<DefaultPrecision)
	}
	// Repeats change nothing.
	before := s.Estimate()
	for i := 1; i <= 1000; i++ {
		s.Add(member(i))
	}
	if after := s.Estimate(); after != before {
		t.Errorf("repeated members moved the estimate from %d to %d", before, after)
	}
}

func TestSparseExact(t *testing.T) {
	s := New(DefaultPrecision)
	for round := 0; round < 3; round++ {
		for i := 0; i < 1500; i++ {
			s.Add(member(i))
		}
	}
	if !s.Sparse() {
		t.Fatal("1500 members made the sketch dense")
	}
	if got := s.Estimate(); got != 1500 {
		t.Errorf("sparse estimate %d, want exactly 1500", got)
	}
	if s.Bytes() > 1<<DefaultPrecision {
		t.Errorf("sparse sketch takes %d bytes, more than the registers", s.Bytes())
	}
}

// TestMergeShards: four sketches of overlapping shards merge into exactly
// the sketch of the union, in every order and mode.
func TestMergeShards(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perShard  int
		overlap   int
		precision []int
	}{
		{"sparse", 300, 100, []int{14, 14, 14, 14}},
		{"dense", 60_000, 20_000, []int{14, 14, 14, 14}},
		{"mixed", 5_000, 400, []int{14, 14, 14, 14}},
		{"precisions", 30_000, 1_000, []int{14, 12, 16, 14}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			minP := 64
			union := map[int]bool{}
			shards := make([]*Sketch, 4)
			for k := range shards {
				shards[k] = New(tc.precision[k])
				minP = min(minP, tc.precision[k])
				start, n := k*(tc.perShard-tc.overlap), tc.perShard
				if tc.name == "mixed" && k == 1 {
					n = 50 // one sparse shard among dense ones
				}
				for i := start; i < start+n; i++ {
					shards[k].Add(member(i))
					union[i] = true
				}
			}
			all := New(minP)
			for i := range union {
				all.Add(member(i))
			}
			merged := shards[0].Clone()
			for _, o := range shards[1:] {
				merged.Merge(o)
			}
			if merged.Precision() != minP {
				t.Errorf("merged precision %d, want %d", merged.Precision(), minP)
			}
			if got, want := merged.Estimate(), all.Estimate(); got != want {
				t.Errorf("merged estimate %d, union's %d", got, want)
			}
			within(t, "merged", merged.Estimate(), len(union), minP, 3)
			// Reverse order gives the same.
			rev := shards[3].Clone()
			for k := 2; k >= 0; k-- {
				rev.Merge(shards[k])
			}
			if rev.Estimate() != merged.Estimate() {
				t.Errorf("merge order changed the estimate: %d vs %d", rev.Estimate(), merged.Estimate())
			}
		})
	}
}

func TestReduceEqualsHashingAtLowerPrecision(t *testing.T) {
	hi, lo := New(16), New(10)
	for i := 0; i < 100_000; i++ {
		hi.Add(member(i))
		lo.Add(member(i))
	}
	hi.Reduce(10)
	var a, b Data
	hi.Export(&a)
	lo.Export(&b)
	if string(a.Registers) != string(b.Registers) || a.Precision != b.Precision {
		t.Error("registers folded from precision 16 to 10 differ from hashing at 10")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2000, 100_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			s := New(DefaultPrecision)
			for i := 0; i < n; i++ {
				s.Add(member(i))
			}
			var d Data
			s.Export(&d)
			back, err := FromData(&d, MaxPrecision)
			if err != nil {
				t.Fatal(err)
			}
			if back.Estimate() != s.Estimate() || back.Sparse() != s.Sparse() || back.Precision() != s.Precision() {
				t.Errorf("round trip: estimate %d sparse %v p %d, want %d %v %d",
					back.Estimate(), back.Sparse(), back.Precision(), s.Estimate(), s.Sparse(), s.Precision())
			}
			low, err := FromData(&d, 12)
			if err != nil {
				t.Fatal(err)
			}
			if low.Precision() != 12 && n > 0 {
				t.Errorf("FromData at most 12 kept precision %d", low.Precision())
			}
		})
	}
}

func TestFromDataInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Data
	}{
		{"precision low", Data{Precision: 3}},
		{"precision high", Data{Precision: 19}},
		{"short registers", Data{Precision: 10, Registers: make([]byte, 1023)}},
		{"rank too high", Data{Precision: 4, Registers: append(make([]byte, 15), 62)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromData(&tc.d, MaxPrecision); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestHashStable(t *testing.T) {
	// XXH64 of "abc" with seed 0, from the specification's reference
	// implementation: every process must hash alike.
	if got, want := HashString("abc"), uint64(0x44bc2cf5ad770999); got != want {
		t.Errorf("HashString(abc) = %#x, want %#x", got, want)
	}
	if Hash([]byte("user-1")) != HashString("user-1") {
		t.Error("Hash and HashString differ")
	}
}

// Registers crafted off the wire at the highest rank claim a huge count:
// the estimate stays an int and the stand-ins stay bounded.
func TestCraftedRegistersBounded(t *testing.T) {
	regs := make([]byte, 1<<DefaultPrecision)
	for i := range regs {
		regs[i] = 64 - DefaultPrecision + 1
	}
	s, err := FromData(&Data{Precision: DefaultPrecision, Registers: regs}, DefaultPrecision)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Estimate(); e != maxEstimate || int(e) < 0 {
		t.Errorf("estimate %d, want the cap %d", e, uint64(maxEstimate))
	}
	n := 0
	s.StandIns(func(string) { n++ })
	if n != MaxStandIns {
		t.Errorf("%d stand-ins, want the cap %d", n, MaxStandIns)
	}
}

func TestStandIns(t *testing.T) {
	s := New(DefaultPrecision)
	for i := 0; i < 500; i++ {
		s.Add(member(i))
	}
	seen := map[string]bool{}
	exact := s.StandIns(func(m string) { seen[m] = true })
	if !exact || len(seen) != 500 {
		t.Errorf("sparse stand-ins: %d distinct, exact %v; want 500, true", len(seen), exact)
	}
	for i := 500; i < 10_000; i++ {
		s.Add(member(i))
	}
	clear(seen)
	exact = s.StandIns(func(m string) { seen[m] = true })
	if exact || uint64(len(seen)) != s.Estimate() {
		t.Errorf("dense stand-ins: %d distinct, exact %v; want %d, false", len(seen), exact, s.Estimate())
	}
}

func FuzzFromData(f *testing.F) {
	f.Add(int32(14), []byte(nil), uint64(1), uint64(2))
	f.Add(int32(4), make([]byte, 16), uint64(0), uint64(1<<63))
	f.Add(int32(4), append(make([]byte, 15), 61), uint64(7), uint64(7))
	f.Fuzz(func(t *testing.T, p int32, regs []byte, h1, h2 uint64) {
		d := Data{Precision: p, Registers: regs, Hashes: []uint64{h1, h2}}
		s, err := FromData(&d, DefaultPrecision)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if s.Precision() > DefaultPrecision {
			t.Fatalf("precision %d above the maximum", s.Precision())
		}
		est := s.Estimate()
		o := New(DefaultPrecision)
		o.AddHash(h1)
		s.Merge(o)
		if s.Estimate()+1 < est { // adding a member present cannot lower it much
			t.Fatalf("merge lowered the estimate from %d to %d", est, s.Estimate())
		}
		var out Data
		s.Export(&out)
		if _, err := FromData(&out, DefaultPrecision); err != nil {
			t.Fatalf("a sketch's own export is refused: %v", err)
		}
	})
}
