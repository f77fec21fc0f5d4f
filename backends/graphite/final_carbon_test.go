package graphite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestCarbonFinalFlushKeepsLastInterval (issue 15): carbon keeps one point
// per step, and a final flush stamped "now" lands in the step of the last
// periodic flush and overwrites it. Sent final.c:7|c, a periodic flush, then
// final.c:5|c and SIGTERM: carbon must store 7 and 5 (sum 12), and the final
// flush must not re-send the idle counter as a zero over its stored 3.
func TestCarbonFinalFlushKeepsLastInterval(t *testing.T) {
	t.Parallel()
	const interval = 2 * time.Second // = carbon's step: one periodic flush per step
	c := garnertest.NewCarbonStep(t, garnertest.FreePort(t), interval)
	c.Start()
	p, udp := startGarner(t, c.Addr(), "basic", "",
		"--flush-interval", interval.String(), "--flush-aligned", "--shutdown-grace", "0s")
	admin := p.AdminAddr(t)
	flushes := func() float64 { return garnertest.MustScrape(t, admin).Sum("garner_flush_total") }

	garnertest.SendUDP(t, udp, "final.c:7|c\nfinal.idle:3|c")
	p.WaitRead(t, 2)
	before := flushes()
	garnertest.WaitFor(t, "a periodic flush", 10*time.Second, func() bool { return flushes() > before })
	garnertest.SendUDP(t, udp, "final.c:5|c")
	p.WaitRead(t, 3)
	periodic := flushes() // the idle counter's zero is legitimate in a later periodic flush
	p.StopOK(t)

	names := []string{"stats.counters.final.c.count", "stats.counters.final.idle.count"}
	bad, got := c.WaitStored(t, names, func(got map[string][]point) (bad []string) {
		if s := sum(got[names[0]]); s != 12 {
			bad = append(bad, fmt.Sprintf("%s: sum %v, want 12 (7 then 5): %v", names[0], s, got[names[0]]))
		}
		if s := sum(got[names[1]]); s != 3 {
			bad = append(bad, fmt.Sprintf("%s: sum %v, want 3: %v", names[1], s, got[names[1]]))
		}
		if n := len(got[names[1]]); periodic == before+1 && n != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d points %v, want 1: the final flush sent an idle zero", names[1], n, got[names[1]]))
		}
		return bad
	})
	for _, b := range bad {
		t.Error(b)
	}
	if t.Failed() {
		t.Logf("stored: %v\ngarner stderr:\n%s", got, p.Stderr())
	}
}
