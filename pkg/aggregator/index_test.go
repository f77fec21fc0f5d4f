package aggregator

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestSeriesIndexMatchesMap applies random adds, lookups and deletes to a
// seriesIndex and to a map, and checks after each step that they agree:
// every key found with its value, absent keys not found, the count, and
// iteration yielding each live entry once. Hashes are drawn from a small
// range in one case so that home slots collide and runs wrap around the
// end of the slots, the case deletion must shift back correctly.
func TestSeriesIndexMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hash  func(r *rand.Rand, k int) uint64
		steps int
	}{
		{"spread", func(_ *rand.Rand, k int) uint64 { return uint64(k)*0x9E3779B97F4A7C15 + 1 }, 20000},
		{"colliding", func(_ *rand.Rand, k int) uint64 { return uint64(k%7) << 61 }, 3000},           // 7 home slots at most
		{"wrapping", func(_ *rand.Rand, k int) uint64 { return ^uint64(0) - uint64(k%3)<<58 }, 3000}, // homes at the end of the slots
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var x seriesIndex[int]
			want := map[string]int{}
			hashOf := map[string]uint64{}
			key := func(k int) string { return "k" + strconv.Itoa(k) + "\x00\x00" }
			for step := 0; step < tc.steps; step++ {
				k := r.IntN(tc.steps / 4)
				ks := key(k)
				h := tc.hash(r, k)
				hashOf[ks] = h
				v := x.get([]byte(ks), h)
				if w, ok := want[ks]; ok != (v != nil) || ok && *v != w {
					t.Fatalf("step %d: get(%q) = %v, want %d (present %v)", step, ks, v, w, ok)
				}
				switch {
				case v == nil:
					*x.add(ks, h) = step
					want[ks] = step
				case r.IntN(3) == 0: // delete, through iteration as the flush does
					found := false
					for pos, e := range x.all {
						if *e == want[ks] && x.entry(pos).key == ks {
							x.del(pos)
							found = true
						}
					}
					if !found {
						t.Fatalf("step %d: %q not yielded by all", step, ks)
					}
					delete(want, ks)
				default:
					*v = step
					want[ks] = step
				}
				if x.len() != len(want) {
					t.Fatalf("step %d: len %d, want %d", step, x.len(), len(want))
				}
			}
			seen := map[string]bool{}
			for pos, v := range x.all {
				ks := x.entry(pos).key
				if seen[ks] || want[ks] != *v {
					t.Fatalf("all: %q = %d (seen before: %v), want %d", ks, *v, seen[ks], want[ks])
				}
				seen[ks] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("all yielded %d entries, want %d", len(seen), len(want))
			}
			for ks, w := range want {
				if v := x.get([]byte(ks), hashOf[ks]); v == nil || *v != w {
					t.Fatalf("get(%q) = %v, want %d", ks, v, w)
				}
			}
			// A key with the hash of a present one but other bytes is absent.
			for ks := range want {
				if v := x.get([]byte(ks+"x"), hashOf[ks]); v != nil {
					t.Fatalf("get(%q+x) found %d", ks, *v)
				}
				break
			}
		})
	}
}
