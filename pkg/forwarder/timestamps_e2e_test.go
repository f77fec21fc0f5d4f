package forwarder_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestTimestampsThroughTier: a forwarder and an aggregator with timestamps
// = "honor". A counter timestamped 3 aggregator intervals ago travels in
// v3 with its time and lands at that interval's end at the aggregator's
// Graphite backend; the live counter of the same series stays apart.
func TestTimestampsThroughTier(t *testing.T) {
	t.Setenv("GARNER_TIMESTAMPS", "honor") // both processes
	carb := garnertest.NewGraphite(t)
	agg := startAggregator(t, carb, "", "")
	fwd := startForwarder(t, "200ms", "", agg)
	now := time.Now().Unix()
	past := now - 180
	send(t, fwd.udp, []string{fmt.Sprintf("tier.ts:5|c|T%d", past), "tier.ts:1|c"})
	garnertest.WaitFor(t, "the forwarded point's time at the aggregator", 20*time.Second, func() bool {
		return agg.metric(t, "garner_receiver_timestamped_lines_total", `outcome="honored",receiver="forwarded"`) >= 1 &&
			agg.metric(t, "garner_ingest_series_total", "") >= 2
	})
	agg.stop(t)
	if !carb.WaitSent(10 * time.Second) {
		t.Fatal("no final flush at the graphite listener")
	}
	end := (past/60 + 1) * 60
	if past%60 == 0 {
		end = past
	}
	got := map[int64]string{}
	for _, p := range carb.Points() {
		if p.Name == "stats.counters.tier.ts.count;host=127.0.0.1" {
			got[p.Time] = p.Value
		}
	}
	if len(got) != 2 || got[end] != "5" {
		t.Fatalf("points of tier.ts by time %v, want 5 at %d and the live 1 at the flush's time", got, end)
	}
	for ts, v := range got {
		if ts != end && v != "1" {
			t.Errorf("live point %s at %d, want 1", v, ts)
		}
	}
}
