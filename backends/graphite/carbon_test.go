package graphite_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// startGarner runs the real garner binary with the graphite backend pointing
// at carbonAddr in the given mode, a UDP receiver on a free loopback port, and
// args. It returns the process and the UDP address.
func startGarner(t *testing.T, carbonAddr, mode, extraGraphite string, args ...string) (*garnertest.Process, string) {
	t.Helper()
	toml := fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\nmode = %q\n%s", carbonAddr, mode, extraGraphite)
	p := garnertest.StartConfig(t, toml, append([]string{"--metrics-addr", "127.0.0.1:0"}, args...)...)
	return p, p.UDPAddr(t)
}

// waitSlot sleeps until the wall clock is between from and to into a slot of
// length interval (slots are multiples of interval, as garner's aligned
// flushes) that starts after the slot `after`, and returns the slot's start.
func waitSlot(t *testing.T, interval, from, to time.Duration, after time.Time) time.Time {
	t.Helper()
	for i := 0; i < 100; i++ {
		now := time.Now()
		slot := now.Truncate(interval)
		off := now.Sub(slot)
		switch {
		case slot.After(after) && off >= from && off < to:
			return slot
		case slot.After(after) && off < from:
			time.Sleep(from - off)
		default:
			time.Sleep(interval - off + from)
		}
	}
	t.Fatal("no time slot found")
	return time.Time{}
}

func repeat(line string, n int) string {
	return strings.TrimSuffix(strings.Repeat(line+"\n", n), "\n")
}

// timerStats are the values garner computes for one flush of a timer with
// percent-threshold 90.
type timerStats map[string]float64

// TestCarbonModes sends counters (with tags and sample rates), gauges (with
// deltas), sets and timers with percentiles to a real garner over UDP in
// three batches: two land in aligned periodic flushes, the third in the
// final flush on SIGTERM. It then reads carbon's whisper files and requires
// every increment sent and the exact aggregate values, named as each mode
// names them.
func TestCarbonModes(t *testing.T) {
	t.Parallel()
	const interval = 3 * time.Second
	c := garnertest.StartCarbon(t)
	const host = ";host=127.0.0.1" // the sender's address is the series' source
	cases := []struct {
		mode   string
		tagged bool // series that differ only by tags stay apart
		name   func(kind, metric, sub, tags string) string
	}{
		{"tags", true, func(kind, metric, sub, tags string) string {
			return "stats." + kind + "." + metric + dotted(sub) + tags + host
		}},
		{"basic", false, func(kind, metric, sub, _ string) string {
			return "stats." + kind + "." + metric + dotted(sub)
		}},
		{"legacy", false, func(kind, metric, sub, _ string) string {
			switch {
			case kind == "counters" && sub == "count":
				return "stats_counts." + metric
			case kind == "counters" && sub == "rate":
				return "stats." + metric
			}
			return "stats." + kind + "." + metric + dotted(sub)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			m := tc.mode + "_" // metric names of their own for each mode
			prodTags := ";env=prod;region=us"
			reqCount, reqRate := tc.name("counters", m+"req", "count", prodTags), tc.name("counters", m+"req", "rate", prodTags)
			hitsCount, hitsRate := tc.name("counters", m+"hits", "count", ""), tc.name("counters", m+"hits", "rate", "")
			devCount := tc.name("counters", m+"req", "count", ";env=dev")
			flagCount := tc.name("counters", m+"flag", "count", ";unnamed=canary")
			temp := tc.name("gauges", m+"temp", "", "")
			users := tc.name("sets", m+"users", "", "")
			lat := func(sub string) string { return tc.name("timers", m+"lat", sub, "") }

			first := timerStats{"lower": 1, "upper": 10, "count": 10, "mean": 5.5, "median": 5.5, "std": 2.872281,
				"sum": 55, "sum_squares": 385, "count_90": 9, "upper_90": 9, "mean_90": 5, "sum_90": 45, "sum_squares_90": 285}
			final := timerStats{"lower": 100, "upper": 200, "count": 2, "mean": 150, "median": 150, "std": 50,
				"sum": 300, "sum_squares": 50000, "count_90": 2, "upper_90": 200, "mean_90": 150, "sum_90": 300, "sum_squares_90": 50000}

			batches := [][]string{
				{ // 26 req, 5.25 hits, gauge 10, set {a b}, timer 1..10
					repeat(m+"req:1|c|#env:prod,region:us", 20),
					m + "req:3|c|@0.5|#region:us,env:prod\n" + m + "hits:5|c\n" + m + "hits:0.25|c\n" + m + "temp:10|g\n" +
						m + "users:a|s\n" + m + "users:b|s\n" + m + "users:a|s\n" + m + "lat:1:2:3:4:5:6:7:8:9:10|ms",
				},
				{ // 30 req, 7 hits, gauge +5
					repeat(m+"req:1|c|#env:prod,region:us", 20),
					m + "req:1|c|@0.1|#env:prod,region:us\n" + m + "hits:7|c\n" + m + "temp:+5|g",
				},
				{ // 4 req, 1 hit, gauge -3, set {c d e}, timer 100 200 (final flush)
					repeat(m+"req:1|c|#env:prod,region:us", 4) + "\n" + m + "hits:1|c\n" + m + "temp:-3|g\n" +
						m + "users:c|s\n" + m + "users:d|s\n" + m + "users:e|s\n" + m + "lat:100:200|ms",
				},
			}
			if tc.tagged {
				batches[0] = append(batches[0], m+"req:2|c|#env:dev\n"+m+"flag:1|c|#canary")
			}
			names := []string{reqCount, reqRate, hitsCount, hitsRate, temp, users}
			for st := range first {
				names = append(names, lat(st))
			}
			if tc.tagged {
				names = append(names, devCount, flagCount)
			}

			p, udp := startGarner(t, c.Addr(), tc.mode, "",
				"--flush-interval", interval.String(), "--flush-aligned", "--percent-threshold", "90", "--shutdown-grace", "300ms")
			// Batches 1 and 2 go out mid-slot, each caught by the periodic
			// flush at the start of the next slot. Batch 3 goes out 1.1-1.6s
			// into the slot after, just before SIGTERM, so the final flush
			// has it and a timestamp one second after that slot's periodic
			// flush (carbon keeps one point per second: a shared second would
			// overwrite).
			slot := waitSlot(t, interval, 200*time.Millisecond, 2*time.Second, time.Time{})
			garnertest.SendUDP(t, udp, batches[0]...)
			slot = waitSlot(t, interval, 200*time.Millisecond, 2*time.Second, slot)
			garnertest.SendUDP(t, udp, batches[1]...)
			waitSlot(t, interval, 1100*time.Millisecond, 1600*time.Millisecond, slot)
			garnertest.SendUDP(t, udp, batches[2]...)
			p.StopOK(t)

			check := func(got map[string][]point) (bad []string) {
				expect := func(ok bool, format string, args ...any) {
					if !ok {
						bad = append(bad, fmt.Sprintf(format, args...))
					}
				}
				for _, c := range []struct {
					name   string
					sum    float64
					points int
				}{{reqCount, 60, 3}, {hitsCount, 13.25, 3}, {devCount, 2, 1}, {flagCount, 1, 1}} {
					if !tc.tagged && (c.name == devCount || c.name == flagCount) {
						continue
					}
					nz := nonZero(got[c.name])
					expect(sum(got[c.name]) == c.sum && len(nz) == c.points,
						"%s: sum %v over %d non-zero points %v, want %v over %d", c.name, sum(got[c.name]), len(nz), nz, c.sum, c.points)
				}
				// Rates are count / measured interval (3s, or ≥1.1s before the
				// final flush): positive and at most the count.
				for _, cr := range [][2]string{{reqCount, reqRate}, {hitsCount, hitsRate}} {
					for _, pt := range nonZero(got[cr[0]]) {
						r, ok := valueAt(got[cr[1]], pt.TS)
						expect(ok && r > 0 && r <= pt.V, "%s at %d = %v (present %v), want in (0, %v]", cr[1], pt.TS, r, ok, pt.V)
					}
				}
				expect(slices.Equal(changes(got[temp]), []float64{10, 15, 12}), "%s: values %v, want 10 then 15 then 12", temp, got[temp])
				expect(slices.Equal(changes(nonZero(got[users])), []float64{2, 3}), "%s: values %v, want 2 then 3", users, got[users])
				// The timer's two flushes with samples, then each stat's value
				// at those two timestamps; percentiles exist only there.
				flushes := nonZero(got[lat("count")])
				if len(flushes) != 2 {
					return append(bad, fmt.Sprintf("%s: non-zero points %v, want 2", lat("count"), flushes))
				}
				for i, want := range []timerStats{first, final} {
					for st, w := range want {
						v, ok := valueAt(got[lat(st)], flushes[i].TS)
						expect(ok && math.Abs(v-w) < 1e-6, "%s at %d = %v (present %v), want %v", lat(st), flushes[i].TS, v, ok, w)
						if strings.HasSuffix(st, "_90") {
							expect(len(got[lat(st)]) == 2, "%s: points %v, want only the 2 flushes with samples", lat(st), got[lat(st)])
						}
					}
				}
				// The last counter point is the final flush's, after the
				// timer's first flush.
				if nz := nonZero(got[reqCount]); len(nz) == 3 {
					expect(nz[2].TS == flushes[1].TS && nz[0].TS == flushes[0].TS,
						"final flush at %d and first at %d, timer's at %d and %d", nz[2].TS, nz[0].TS, flushes[1].TS, flushes[0].TS)
				}
				return bad
			}
			bad, got := c.WaitStored(t, names, check)
			for _, b := range bad {
				t.Error(b)
			}
			if t.Failed() {
				t.Logf("stored: %v\ngarner stderr:\n%s", got, p.Stderr())
			}
		})
	}
}

func dotted(sub string) string {
	if sub == "" {
		return ""
	}
	return "." + sub
}

// TestCarbonDownAtStart starts garner while carbon is down: garner keeps
// running, buffers the flushes it cannot deliver, and once carbon comes up
// the buffered flushes arrive, with their original timestamps, within a
// flush or two.
func TestCarbonDownAtStart(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	c := garnertest.NewCarbon(t, garnertest.FreePort(t)) // not started
	p, udp := startGarner(t, c.Addr(), "basic", "max_buffer_size = \"1MiB\"\n",
		"--flush-interval", interval.String(), "--shutdown-grace", "0s")
	garnertest.SendUDP(t, udp, repeat("down_req:1|c", 10), "down_temp:7|g")
	if !p.WaitStderr("cannot connect to carbon", 10*time.Second) {
		t.Fatalf("no failed flush logged:\n%s", p.Stderr())
	}
	garnertest.SendUDP(t, udp, repeat("down_req:2|c", 5))
	time.Sleep(2 * interval) // at least one more flush that cannot be delivered
	if code := p.Wait(10 * time.Millisecond); code != -1 {
		t.Fatalf("garner exited (code %d) while carbon was down:\n%s", code, p.Stderr())
	}

	c.Start()
	up := time.Now() // carbon listens: its start-up time is not garner's to count
	names := []string{"stats.counters.down_req.count", "stats.gauges.down_temp"}
	bad, got := c.WaitStored(t, names, func(got map[string][]point) (bad []string) {
		req := got[names[0]]
		if s := sum(req); s != 20 {
			bad = append(bad, fmt.Sprintf("%s: sum %v, want 20: %v", names[0], s, req))
		}
		if len(got[names[1]]) == 0 || got[names[1]][0].V != 7 {
			bad = append(bad, fmt.Sprintf("%s: %v, want 7", names[1], got[names[1]]))
		}
		return bad
	})
	arrived := time.Since(up)
	for _, b := range bad {
		t.Error(b)
	}
	// The increments were flushed (and timestamped) while carbon was down.
	for _, pt := range nonZero(got[names[0]]) {
		if pt.TS > up.Unix() {
			t.Errorf("point %v is from after carbon came up at %d: it was not buffered", pt, up.Unix())
		}
	}
	// Within a flush or two, plus carbon's writer, which looks at its cache
	// once a second when idle.
	t.Logf("buffered data in carbon's files %v after carbon came up", arrived.Round(time.Millisecond))
	if limit := 2*interval + 3*time.Second; arrived > limit {
		t.Errorf("buffered data took %v to arrive, want under %v", arrived, limit)
	}
	p.StopOK(t)
}

// TestCarbonRestart restarts carbon while garner runs: the flush made while
// carbon is down, on a connection carbon has closed, must not be lost.
func TestCarbonRestart(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	c := garnertest.StartCarbon(t)
	// No idle re-sends (expiry -1s): the first write after carbon went
	// away is one with increments, not zeros whose loss would not show.
	p, udp := startGarner(t, c.Addr(), "basic", "", "--flush-interval", interval.String(), "--shutdown-grace", "0s", "--expiry-interval", "-1s")
	name := []string{"stats.counters.restart_req.count"}
	wantSum := func(want float64) func(map[string][]point) []string {
		return func(got map[string][]point) []string {
			if s := sum(got[name[0]]); s != want {
				return []string{fmt.Sprintf("%s: sum %v, want %v: %v", name[0], s, want, nonZero(got[name[0]]))}
			}
			return nil
		}
	}
	garnertest.SendUDP(t, udp, repeat("restart_req:1|c", 10))
	if bad, _ := c.WaitStored(t, name, wantSum(10)); bad != nil {
		t.Fatal(bad)
	}
	c.Stop() // its cache is written: nothing in flight is lost on carbon's side
	garnertest.SendUDP(t, udp, repeat("restart_req:2|c", 10))
	time.Sleep(3 * interval) // flushes on the connection carbon closed, then failing dials
	c.Start()
	garnertest.SendUDP(t, udp, repeat("restart_req:3|c", 10))
	bad, _ := c.WaitStored(t, name, wantSum(60))
	for _, b := range bad {
		t.Error(b)
	}
	p.StopOK(t)
}

// TestCarbonHostileTags: tag values are written as they come, but carbon
// drops the whole connection (and with it the rest of the flush) on a line
// that is not UTF-8 or longer than 16384 bytes. One such series must not
// cost the others their points, flush after flush.
func TestCarbonHostileTags(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	c := garnertest.StartCarbon(t)
	p, udp := startGarner(t, c.Addr(), "tags", "", "--flush-interval", interval.String(), "--shutdown-grace", "0s")
	var lines, names []string
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("hostile_ok%02d:1|c", i))
		names = append(names, fmt.Sprintf("stats.counters.hostile_ok%02d.count;host=127.0.0.1", i))
	}
	garnertest.SendUDP(t, udp,
		strings.Join(lines[:15], "\n")+"\nhostile_utf:1|c|#k:a\xff\xfeb\n"+strings.Join(lines[15:], "\n"),
		"hostile_long:1|c|#k:"+strings.Repeat("x", 17000))
	time.Sleep(2500 * time.Millisecond) // flushes with the hostile series in them
	garnertest.SendUDP(t, udp, strings.Join(lines, "\n"))
	// A statsd line with invalid UTF-8 is refused at the receiver (and
	// counted); the graphite writer's own replacement is for names that
	// reach it otherwise (forwarded series).
	if n := garnertest.MustScrape(t, p.AdminAddr(t)).Sum("garner_receiver_bad_lines_total", `reason="invalid_utf8"`); n != 1 {
		t.Errorf("invalid UTF-8 lines counted %v, want 1", n)
	}
	p.StopOK(t)
	bad, got := c.WaitStored(t, names, func(got map[string][]point) (bad []string) {
		for _, n := range names {
			if s := sum(got[n]); s != 2 {
				bad = append(bad, fmt.Sprintf("%s: sum %v, want 2", n, s))
			}
		}
		return bad
	})
	for _, b := range bad {
		t.Error(b)
	}
	if t.Failed() {
		t.Logf("stored: %v", got)
	}
}
