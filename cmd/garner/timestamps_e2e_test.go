package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// intervalEnd is the end of the flush-interval (aligned on the wall clock)
// that unix second ts falls in: what garner stamps its points with.
func intervalEnd(ts int64, interval time.Duration) int64 {
	iv := int64(interval / time.Second)
	if ts%iv == 0 {
		return ts
	}
	return (ts/iv + 1) * iv
}

// TestTimestampsEndToEnd sends DogStatsD timestamped lines as real datagrams
// to the real binary. With timestamps = "honor" a counter and a gauge
// timestamped 3 intervals ago land at that interval's time at the Graphite
// backend, apart from the live series of the same name; too old and too new
// lines are dropped and counted; timers ignore their timestamp. With the
// default ("ignore") everything is aggregated as received, as before.
func TestTimestampsEndToEnd(t *testing.T) {
	const interval = time.Hour
	now := time.Now().Unix()
	past := now - 3*int64(interval/time.Second)
	payloads := []string{
		fmt.Sprintf("ts.c:5|c|T%d\nts.c:2|c|#|T%d\nts.c:1|c", past, past),
		fmt.Sprintf("ts.g:3|g|T%d\nts.g:8|g", past),
		fmt.Sprintf("ts.old:1|c|T%d\nts.new:1|c|T%d\nts.t:4|ms|T%d", now-5*3600, now+120, past),
	}
	for _, tc := range []struct {
		name     string
		toml     string
		want     map[string]string // "name@time" (time "now" = the flush's) → value
		outcomes map[string]float64
	}{
		{"honor", "timestamps = \"honor\"\ntimestamp-max-age = \"4h\"\n",
			map[string]string{
				fmt.Sprintf("stats.counters.ts.c.count;host=127.0.0.1@%d", intervalEnd(past, interval)): "7",
				"stats.counters.ts.c.count;host=127.0.0.1@now":                                          "1",
				fmt.Sprintf("stats.gauges.ts.g;host=127.0.0.1@%d", intervalEnd(past, interval)):         "3.000000",
				"stats.gauges.ts.g;host=127.0.0.1@now":                                                  "8.000000",
				"stats.timers.ts.t.count;host=127.0.0.1@now":                                            "1",
			},
			map[string]float64{"honored": 3, "skipped_too_old": 1, "skipped_too_new": 1, "ignored_timer": 1}},
		{"ignore", "",
			map[string]string{
				"stats.counters.ts.c.count;host=127.0.0.1@now":   "8",
				"stats.gauges.ts.g;host=127.0.0.1@now":           "8.000000",
				"stats.counters.ts.old.count;host=127.0.0.1@now": "1",
				"stats.counters.ts.new.count;host=127.0.0.1@now": "1",
				"stats.timers.ts.t.count;host=127.0.0.1@now":     "1",
			},
			map[string]float64{"ignored": 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := garnertest.NewGraphite(t)
			p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n%s[graphite]\naddress = %q\nmode = \"tags\"\n", tc.toml, g.Addr()),
				"--metrics-addr", "127.0.0.1:0", "--flush-interval", interval.String(), "--shutdown-grace", "0s")
			garnertest.SendUDP(t, p.UDPAddr(t), payloads...)
			p.WaitRead(t, garnertest.CountLines(payloads...))
			m := garnertest.MustScrape(t, p.AdminAddr(t))
			for o, want := range tc.outcomes {
				if got := m.Sum("garner_receiver_timestamped_lines_total", `outcome="`+o+`"`); got != want {
					t.Errorf("timestamped lines {outcome=%q} = %v, want %v", o, got, want)
				}
			}
			if got, want := m.Sum("garner_receiver_timestamped_lines_total"), sumOf(tc.outcomes); got != want {
				t.Errorf("timestamped lines = %v, want %v", got, want)
			}
			for reason, outcome := range map[string]string{"too_old": "skipped_too_old", "too_new": "skipped_too_new"} {
				if got, want := m.Sum("garner_receiver_timestamp_dropped_lines_total", `reason="`+reason+`"`), tc.outcomes[outcome]; got != want {
					t.Errorf("timestamp dropped lines {reason=%q} = %v, want %v", reason, got, want)
				}
			}
			p.StopOK(t)
			if !g.WaitSent(10 * time.Second) {
				t.Fatalf("the graphite listener did not get the final flush: %d lines", len(g.Lines()))
			}
			got := map[string]string{}
			var flushTime int64
			for _, pt := range g.Points() {
				if pt.Name == "stats.timers.ts.t.count;host=127.0.0.1" {
					flushTime = pt.Time
				}
			}
			if flushTime < now {
				t.Fatalf("no timer point to take the flush's time from: %v", g.Lines())
			}
			for _, pt := range g.Points() {
				base, _, _ := strings.Cut(pt.Name, ";")
				if !strings.Contains(base, ".ts.") || strings.HasSuffix(base, ".rate") ||
					strings.HasPrefix(base, "stats.timers.") && base != "stats.timers.ts.t.count" {
					continue
				}
				at := fmt.Sprint(pt.Time)
				if pt.Time == flushTime {
					at = "now"
				}
				got[pt.Name+"@"+at] = pt.Value
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("points\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}
