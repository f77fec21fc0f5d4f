//go:build linux

package receiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/aggregator"
)

// TestTimestamps: what a |T timestamp does in each mode, and the
// garner_receiver_timestamped_lines_total outcome it counts.
func TestTimestamps(t *testing.T) {
	now := time.Now().Unix()
	lines := []string{
		fmt.Sprintf("past:1|c|T%d", now-30),
		fmt.Sprintf("pastg:7|g|T%d", now-30),
		fmt.Sprintf("old:2|c|T%d", now-700),
		fmt.Sprintf("new:3|c|T%d", now+120),
		fmt.Sprintf("soon:4|c|T%d", now+30),
		fmt.Sprintf("t:5|ms|T%d", now-30),
		fmt.Sprintf("s:x|s|T%d", now-30),
		"plain:6|c",
	}
	pastEnd := aggregator.TimestampSlots{}.End((now - 30) * int64(time.Second))
	cases := []struct {
		name     string
		opts     Options
		counters map[string]int64 // name → At (0 = the snapshot's time); a name not here is not sent
		outcomes map[tsOutcome]float64
	}{
		{"ignore (default)", Options{},
			map[string]int64{"past": 0, "old": 0, "new": 0, "soon": 0, "plain": 0},
			map[tsOutcome]float64{tsIgnored: 7}},
		{"honor", Options{Timestamps: TimestampsHonor},
			map[string]int64{"past": pastEnd, "soon": 0, "plain": 0},
			map[tsOutcome]float64{tsHonored: 3, tsTooOld: 1, tsTooNew: 1, tsIgnoredTimer: 1, tsIgnoredSet: 1}},
		{"honor, max age 20s", Options{Timestamps: TimestampsHonor, TimestampMaxAge: 20 * time.Second},
			map[string]int64{"soon": 0, "plain": 0},
			map[tsOutcome]float64{tsHonored: 1, tsTooOld: 3, tsTooNew: 1, tsIgnoredTimer: 1, tsIgnoredSet: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			h.send(lines...)
			snap := h.flush()
			got := map[string]int64{}
			for _, c := range snap.Counters {
				got[c.Name] = c.At
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.counters) {
				t.Errorf("counters (name: At) %v, want %v", got, tc.counters)
			}
			if _, honored := tc.counters["past"]; honored {
				g := gauges(snap)["pastg||10.0.0.7"]
				if g.Value != 7 || g.At != tc.counters["past"] {
					t.Errorf("gauge %+v, want 7 at %d", g, tc.counters["past"])
				}
			}
			if len(snap.Timers) != 1 || len(snap.Sets) != 1 {
				t.Errorf("timers %d, sets %d: want 1 each, aggregated as received", len(snap.Timers), len(snap.Sets))
			}
			checkTimestamped(t, h.l, "test", tc.outcomes)
			skipped := 0
			for _, b := range h.l.RecentBadLines() {
				if strings.HasPrefix(b.Reason, "timestamp_skipped_too_") {
					skipped++
				}
			}
			if want := int(tc.outcomes[tsTooOld] + tc.outcomes[tsTooNew]); skipped != want {
				t.Errorf("%d skipped lines in the recent bad lines, want %d", skipped, want)
			}
		})
	}
}

// TestTimestampAllocations: honored timestamps, of now and of an interval
// already flushed, cost no allocation per line once their series exist.
func TestTimestampAllocations(t *testing.T) {
	l := newLines(t, 2, Options{Timestamps: TimestampsHonor}, nil)
	h := &harness{t: t, l: l, r: l.NewHandler("test")}
	now := time.Now().Unix()
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, fmt.Sprintf("api.req.%d:1|c|#env:prod|T%d", i%10, now), fmt.Sprintf("g.%d:3|g|T%d", i%10, now-30))
	}
	if perLine := h.allocsPerLine(lines); perLine > 0.05 {
		t.Fatalf("%.3f allocations per line; want ~0", perLine)
	}
}

// TestForwardedTimes: a forwarded counter's or gauge's time (v3
// time_unix_nano) goes to its interval with timestamps = "honor", is taken
// as now with "ignore", and is dropped out of range; all counted with the
// receiver label "forwarded".
func TestForwardedTimes(t *testing.T) {
	now := time.Now()
	past := now.Add(-30 * time.Second).UnixNano()
	old := now.Add(-time.Hour).UnixNano()
	for _, tc := range []struct {
		name     string
		mode     TimestampMode
		wantAt   int64 // of the past point
		old      bool  // the old point is kept
		outcomes map[tsOutcome]float64
	}{
		{"honor", TimestampsHonor, aggregator.TimestampSlots{}.End(past), false, map[tsOutcome]float64{tsHonored: 2, tsTooOld: 1}},
		{"ignore", TimestampsIgnore, 0, true, map[tsOutcome]float64{tsIgnored: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLines(t, 2, Options{Timestamps: tc.mode}, nil)
			w := l.NewSeriesWriter()
			w.Counter("c", nil, "h", 5, past)
			w.Gauge("g", nil, "h", 7, past)
			w.Counter("old", nil, "h", 1, old)
			w.Counter("live", nil, "h", 1, 0)
			w.Send(context.Background())
			snap := snapshot(t, l)
			cs, gs := counters(snap), gauges(snap)
			if c := cs["c||h"]; c.Value != 5 || c.At != tc.wantAt {
				t.Errorf("counter %+v, want 5 at %d", c, tc.wantAt)
			}
			if g := gs["g||h"]; g.Value != 7 || g.At != tc.wantAt {
				t.Errorf("gauge %+v, want 7 at %d", g, tc.wantAt)
			}
			if _, kept := cs["old||h"]; kept != tc.old {
				t.Errorf("old point kept %v, want %v", kept, tc.old)
			}
			if cs["live||h"].Value != 1 {
				t.Errorf("live counter lost: %v", cs)
			}
			checkTimestamped(t, l, forwardedReceiver, tc.outcomes)
		})
	}
}

// BenchmarkRouteTimestamps is BenchmarkRoute for timestamped counters: as
// today (ignore), honored in the current interval, honored into a past
// interval's slot.
func BenchmarkRouteTimestamps(b *testing.B) {
	now := time.Now().Unix()
	for _, bc := range []struct {
		name string
		mode TimestampMode
		ts   int64
	}{
		{"ignore", TimestampsIgnore, now},
		{"honor_now", TimestampsHonor, now},
		{"honor_past", TimestampsHonor, now - 60},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newLines(b, 2, Options{Timestamps: bc.mode}, nil)
			benchLines(b, l, "api.request.%d:1|c|#env:prod,region:us"+fmt.Sprintf("|T%d", bc.ts))
			waitDrained(l)
		})
	}
}

// checkTimestamped checks receiver's timestamped-line counters: each
// outcome, and each drop again in the drop counter.
func checkTimestamped(t *testing.T, l *Lines, receiver string, want map[tsOutcome]float64) {
	t.Helper()
	for o := tsOutcome(0); o < nTsOutcomes; o++ {
		if got := testutil.ToFloat64(l.m.timestamped.outcomes.WithLabelValues(receiver, o.String())); got != want[o] {
			t.Errorf("outcome %s counted %v, want %v", o, got, want[o])
		}
		if r := o.dropReason(); r != "" {
			if got := testutil.ToFloat64(l.m.timestamped.dropped.WithLabelValues(receiver, r)); got != want[o] {
				t.Errorf("dropped {reason=%q} counted %v, want %v", r, got, want[o])
			}
		}
	}
}
