package statsdaemon

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// garnerB is a real garner receiving statsd on UDP and TCP and flushing to a
// Graphite listener, as the destination of the statsdaemon backend.
type garnerB struct {
	p        *garnertest.Process
	g        *garnertest.Graphite
	udp, tcp string
}

func startGarnerB(t *testing.T) *garnerB {
	t.Helper()
	b := &garnerB{g: garnertest.NewGraphite(t)}
	b.p = garnertest.StartConfig(t, fmt.Sprintf(`backends = "graphite"
metrics-addr = "127.0.0.1:0"
tcp-metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
percent-threshold = "90"
[graphite]
address = %q
`, b.g.Addr()))
	b.udp, b.tcp = b.p.UDPAddr(t), b.p.TCPAddr(t)
	return b
}

// addr is B's statsd address for the transport the statsdaemon backend
// uses: TCP or UDP.
func (b *garnerB) addr(tcp bool) string {
	if tcp {
		return b.tcp
	}
	return b.udp
}

// sum adds the values of every Graphite point whose name (tags included)
// starts with prefix and contains contains; last returns the value of the latest such point.
func (b *garnerB) sum(prefix, contains string) float64 {
	var s float64
	for _, p := range b.g.Points() {
		if strings.HasPrefix(p.Name, prefix) && strings.Contains(p.Name, contains) {
			v, _ := strconv.ParseFloat(p.Value, 64)
			s += v
		}
	}
	return s
}

func (b *garnerB) max(prefix string) float64 {
	m := math.Inf(-1)
	for _, p := range b.g.Points() {
		if strings.HasPrefix(p.Name, prefix) {
			v, _ := strconv.ParseFloat(p.Value, 64)
			m = math.Max(m, v)
		}
	}
	return m
}

func (b *garnerB) last(prefix string) (string, bool) {
	v, ok := "", false
	for _, p := range b.g.Points() {
		if strings.HasPrefix(p.Name, prefix) {
			v, ok = p.Value, true
		}
	}
	return v, ok
}

// TestToRealGarner sends two flushes through the backend, over UDP and over
// TCP, to a real garner and checks what that garner aggregates: counter
// totals, timer counts (sampling kept through |@rate), gauges (negative
// included), set sizes and tags.
func TestToRealGarner(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp_transport=%v", tcp), func(t *testing.T) {
			b := startGarnerB(t)
			c, dropped := newClient(t, Options{Address: b.addr(tcp), TCPTransport: tcp})
			if err := c.CheckHealth(context.Background()); err != nil {
				t.Fatalf("health check: %v", err)
			}
			for range 2 {
				if err := c.SendMetrics(context.Background(), bigSnapshot()); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.SendMetrics(context.Background(), &model.Snapshot{Counters: []model.Counter{
				{Series: model.Series{Name: "app.done"}, Value: 1}}}); err != nil {
				t.Fatal(err)
			}
			ok := b.g.WaitFor(15*time.Second, func(lines []string) bool {
				return strings.Contains(strings.Join(lines, "\n"), "stats.counters.app.done.count;host=127.0.0.1 1 ")
			})
			if !ok {
				t.Fatalf("garner B never flushed app.done; lines: %d", len(b.g.Lines()))
			}
			// B's readers may take datagrams sent before app.done after it:
			// wait for the totals (the checks below say what is missing).
			b.g.WaitFor(15*time.Second, func([]string) bool {
				return b.sum("stats.counters.app.requests.", ".count;") >= 2*(200*199/2+200*0.5) &&
					b.sum("stats.timers.app.lat.count;ep=/x;", "") >= 2*30
			})
			if v := testutil.ToFloat64(dropped); v != 0 {
				t.Errorf("dropped = %v", v)
			}
			checks := []struct {
				name, prefix, contains string
				sum                    float64
			}{
				{"one counter's total", "stats.counters.app.requests.007.count;env=prod;region=eu-west-1;host=127.0.0.1", "", 2 * 7.5},
				{"every counter's total", "stats.counters.app.requests.", ".count;", 2 * (200*199/2 + 200*0.5)},
				{"sampled timer count", "stats.timers.app.lat.count;ep=/x;", "", 2 * 30},
				{"unsampled timer count", "stats.timers.app.unsampled.count;", "", 2 * 2},
				{"timer sum", "stats.timers.app.lat.sum;", "", 2 * 303.5},
			}
			for _, ch := range checks {
				if got := b.sum(ch.prefix, ch.contains); got != ch.sum {
					t.Errorf("%s: Σ %s…%s = %v, want %v", ch.name, ch.prefix, ch.contains, got, ch.sum)
				}
			}
			lasts := []struct{ prefix, want string }{
				{"stats.gauges.app.temp;", "-12.250000"},
				{"stats.gauges.app.up;", "1.000000"},
			}
			for _, l := range lasts {
				if v, ok := b.last(l.prefix); !ok || v != l.want {
					t.Errorf("%s… = %q (found %v), want %q", l.prefix, v, ok, l.want)
				}
			}
			// Idle sets are re-sent as 0, so look for the flush that had them.
			if got := b.max("stats.sets.app.users;k=v;"); got != 3 {
				t.Errorf("set size = %v, want 3 (the members of one flush)", got)
			}
			if _, ok := b.last("stats.gauges.app.nan"); ok {
				t.Error("a NaN gauge reached the receiver")
			}
		})
	}
}
