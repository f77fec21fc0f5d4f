package statsdaemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2EGarnerToGarner runs two real garners: A with the statsdaemon
// backend repeating to B, B with the graphite backend. Datagrams sent to A
// must add up to the same totals in B's Graphite output.
func TestE2EGarnerToGarner(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp_transport=%v", tcp), func(t *testing.T) {
			b := startGarnerB(t)
			target := b.addr(tcp)
			a := garnertest.StartConfig(t, fmt.Sprintf(`backends = "statsdaemon"
metrics-addr = "127.0.0.1:0"
flush-interval = "200ms"
[statsdaemon]
address = %q
tcp_transport = %v
`, target, tcp))
			aUDP := a.UDPAddr(t)
			const n = 50
			for i := range n {
				garnertest.SendUDP(t, aUDP, fmt.Sprintf(
					"e2e.hits:1|c|#env:test\ne2e.hits:2|c|@0.5|#env:test\ne2e.lat:%d|ms|@0.5\ne2e.temp:-%d|g\ne2e.users:u%d|s",
					i, i, i%4))
				if i%10 == 9 {
					time.Sleep(100 * time.Millisecond)
				}
			}
			a.WaitRead(t, 5*n)
			a.StopOK(t)
			garnertest.SendUDP(t, b.udp, "e2e.done:1|c")
			if !b.g.WaitFor(15*time.Second, func(lines []string) bool {
				return strings.Contains(strings.Join(lines, "\n"), "stats.counters.e2e.done.count;")
			}) {
				t.Fatal("garner B never flushed the end marker")
			}
			// B's UDP readers may take A's last datagrams after the marker:
			// wait for the totals (the checks below say what is missing).
			b.g.WaitFor(15*time.Second, func([]string) bool {
				return b.sum("stats.counters.e2e.hits.count;env=test;", "") >= float64(n*5) &&
					b.sum("stats.timers.e2e.lat.count;", "") >= float64(n*2)
			})

			if got, want := b.sum("stats.counters.e2e.hits.count;env=test;", ""), float64(n*5); got != want {
				t.Errorf("counter total = %v, want %v", got, want)
			}
			if got, want := b.sum("stats.timers.e2e.lat.count;", ""), float64(n*2); got != want {
				t.Errorf("timer count = %v, want %v (sample rate carried through)", got, want)
			}
			if got, want := b.sum("stats.timers.e2e.lat.sum;", ""), float64(n*(n-1)/2); got != want {
				t.Errorf("timer sum = %v, want %v", got, want)
			}
			// "-i|g" is a delta at A: its gauge ends at -(0+1+...+49), and B
			// must end with the same negative value, not a delta of it.
			if v, _ := b.last("stats.gauges.e2e.temp;"); v != fmt.Sprintf("%.6f", -float64(n*(n-1)/2)) {
				t.Errorf("negative gauge = %q, want %v", v, -n*(n-1)/2)
			}
			if got := b.max("stats.sets.e2e.users;"); got < 1 || got > 4 {
				t.Errorf("set size = %v, want 1..4", got)
			}
		})
	}
}
