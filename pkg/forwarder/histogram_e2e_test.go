package forwarder_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestTierHistogramTimers: forwarders and an aggregator, every one with
// timer-aggregation = histogram (the real binary): the forwarders ship
// histograms (v3 Timer field 6), the aggregator merges them; count, lower,
// upper and sum are exact, the percentiles within 2%.
func TestTierHistogramTimers(t *testing.T) {
	t.Setenv("GARNER_TIMER_AGGREGATION", "histogram")
	carb := garnertest.NewGraphite(t)
	a := startAggregator(t, carb, "", "")
	f1 := startForwarder(t, "200ms", "", a)
	f2 := startForwarder(t, "200ms", "", a)
	r := rand.New(rand.NewPCG(21, 22))
	var all []float64
	for _, f := range []*node{f1, f2} {
		var lines []string
		for _, v := range garnertest.Latencies(r, 2000, 1) {
			v = math.Round(v*1000) / 1000
			all = append(all, v)
			lines = append(lines, fmt.Sprintf("e2e.hlat:%g|ms", v))
		}
		send(t, f.udp, lines)
	}
	garnertest.WaitFor(t, "forwarders to deliver", 30*time.Second, func() bool {
		return f1.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 1 &&
			f2.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 1
	})
	bytes := f1.metric(t, "garner_forwarder_sent_bytes_total", "") + f2.metric(t, "garner_forwarder_sent_bytes_total", "")
	f1.stop(t)
	f2.stop(t)
	a.stop(t)
	p := points(carb)
	slices.Sort(all)
	var sum float64
	for _, v := range all {
		sum += v
	}
	name := func(s string) string { return "stats.timers.e2e.hlat." + s + ";host=127.0.0.1" }
	wantPoints(t, p, map[string]float64{name("count"): 4000, name("lower"): all[0], name("upper"): all[len(all)-1]})
	garnertest.CheckRel(t, "sum", p[name("sum")], sum, 1e-6)
	for sub, want := range map[string]float64{"median": (all[1999] + all[2000]) / 2, "upper_90": all[3599]} {
		garnertest.CheckRel(t, sub, p[name(sub)], want, 0.02)
	}
	// 4000 raw values would be 32 KB before compression.
	t.Logf("forwarders sent %.0f bytes for 4000 timer samples", bytes)
	if bytes > 32000/20 {
		t.Errorf("forwarders sent %.0f bytes, want ≤ 1/20 of the raw values' 32000", bytes)
	}
}
