package forwarder

import (
	"fmt"
	"testing"

	"github.com/garner-metrics/garner/pkg/model"
)

func testHashes(ids ...string) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = upstreamHash(id)
	}
	return out
}

func assign(n int, ids []string, ok []bool) map[int]string {
	hashes := testHashes(ids...)
	out := make(map[int]string, n)
	var buf []byte
	for i := 0; i < n; i++ {
		s := model.Series{Name: fmt.Sprintf("metric.%d", i), Tags: []string{"env:prod"}, Source: "10.0.0.1"}
		var h uint64
		h, buf = seriesHash(buf, &s)
		if c := choose(h, hashes, ok); c >= 0 {
			out[i] = ids[c]
		}
	}
	return out
}

func TestRendezvousSpread(t *testing.T) {
	const n = 30000
	ids := []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"}
	per := map[string]int{}
	for _, id := range assign(n, ids, nil) {
		per[id]++
	}
	for _, id := range ids {
		if share := float64(per[id]) / n; share < 0.30 || share > 0.37 {
			t.Errorf("%s got %.3f of the series, want about 1/3", id, share)
		}
	}
}

// TestRendezvousMovesOnlyOneShare: adding an upstream moves series only to
// it, removing one moves only its series, and taking one out (ok=false)
// moves its series to their next choice, the same as removing it.
func TestRendezvousMovesOnlyOneShare(t *testing.T) {
	const n = 20000
	three := []string{"a:1", "b:1", "c:1"}
	four := append(append([]string(nil), three...), "d:1")
	before := assign(n, three, nil)
	cases := []struct {
		name     string
		ids      []string
		ok       []bool
		newOwner string // the only upstream series may move to ("" = any)
		lost     string // the only upstream series may move from ("" = none)
	}{
		{name: "add one", ids: four, newOwner: "d:1"},
		{name: "remove one", ids: []string{"a:1", "c:1"}, lost: "b:1"},
		{name: "take one out", ids: three, ok: []bool{true, false, true}, lost: "b:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after := assign(n, tc.ids, tc.ok)
			moved := 0
			for i, was := range before {
				now := after[i]
				if now == was {
					continue
				}
				moved++
				if tc.newOwner != "" && now != tc.newOwner {
					t.Fatalf("series %d moved %s → %s, want only moves to %s", i, was, now, tc.newOwner)
				}
				if tc.lost != "" && was != tc.lost {
					t.Fatalf("series %d moved %s → %s, want only moves from %s", i, was, now, tc.lost)
				}
			}
			share := float64(moved) / n
			want := 1.0 / 3
			if tc.newOwner != "" {
				want = 1.0 / 4
			}
			if share < want-0.03 || share > want+0.03 {
				t.Fatalf("moved %.3f of the series, want about %.3f", share, want)
			}
		})
	}
	if c := choose(1, testHashes("x"), []bool{false}); c != -1 {
		t.Fatalf("no upstream ok: choose = %d, want -1", c)
	}
}
