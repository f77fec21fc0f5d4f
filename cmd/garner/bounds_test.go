package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestInputBounds sends lines over each per-line bound (max-tags-per-line,
// max-tag-length, max-packed-values, max-event-length) with good lines
// around them, to the real binary: the good ones are flushed, the others
// are counted by reason and never reach a backend.
func TestInputBounds(t *testing.T) {
	manyTags := make([]string, 1000)
	for i := range manyTags {
		manyTags[i] = fmt.Sprintf("t%d", i)
	}
	cases := []struct {
		name      string
		flags     []string
		lines     []string
		wantBad   map[string]float64 // garner_receiver_bad_lines_total by reason
		wantLong  float64            // garner_events_dropped_total{reason="too_long"}
		wantFlush map[string]string  // graphite name → value; the only counters flushed
	}{
		{
			name: "configured bounds",
			flags: []string{"--max-tags-per-line", "2", "--max-tag-length", "8", "--max-packed-values", "2",
				"--max-event-length", "16", "--max-event-queue-size", "10"},
			lines: []string{
				"ok:1|c|#a:1,b:2",
				"many:1|c|#a,b,c",
				"long:1|c|#abcdefghi",
				"packed:1:2|ms",
				"packed.over:1:2:3|ms",
				"_e{2,3}:ok|txt",
				"_e{10,10}:0123456789|0123456789",
				"_sc|svc|0|m:" + strings.Repeat("m", 17),
				"ok:1|c|#b:2,a:1",
			},
			wantBad:   map[string]float64{"too_many_tags": 1, "tag_too_long": 1, "too_many_values": 1},
			wantLong:  2,
			wantFlush: map[string]string{"stats.counters.ok.count;a=1;b=2;host=127.0.0.1": "2", "stats.timers.packed.count;host=127.0.0.1": "2"},
		},
		{
			name: "defaults",
			lines: []string{
				"ok:1|c",
				"many:1|c|#" + strings.Join(manyTags, ","),
				"long:1|c|#k:" + strings.Repeat("v", 5000),
				"_e{1,20000}:t|" + strings.Repeat("x", 20000),
				"ok:1|c",
			},
			wantBad:   map[string]float64{"too_many_tags": 1, "tag_too_long": 1},
			wantLong:  1,
			wantFlush: map[string]string{"stats.counters.ok.count;host=127.0.0.1": "2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, g, udp, _ := startWithGraphite(t, tc.flags...)
			admin := p.AdminAddr(t)
			for _, l := range tc.lines {
				garnertest.SendUDP(t, udp, l)
			}
			var m garnertest.Metrics
			// Lines are counted as read before they are handled: wait for
			// the handling's counters too, then check them exactly.
			garnertest.WaitFor(t, "every line read and handled", 20*time.Second, func() bool {
				m = garnertest.MustScrape(t, admin)
				return m.Sum("garner_receiver_lines_total") >= float64(len(tc.lines)) &&
					m.Sum("garner_receiver_bad_lines_total") >= sumOf(tc.wantBad) &&
					m.Sum("garner_events_dropped_total", `reason="too_long"`) >= tc.wantLong
			})
			for reason, want := range tc.wantBad {
				if got := m.Sum("garner_receiver_bad_lines_total", fmt.Sprintf("reason=%q", reason)); got != want {
					t.Errorf("bad lines %s = %v, want %v", reason, got, want)
				}
			}
			if got := m.Sum("garner_receiver_bad_lines_total"); got != sumOf(tc.wantBad) {
				t.Errorf("bad lines in all = %v, want %v", got, sumOf(tc.wantBad))
			}
			if got := m.Sum("garner_events_dropped_total", `reason="too_long"`); got != tc.wantLong {
				t.Errorf("events dropped as too long = %v, want %v", got, tc.wantLong)
			}
			p.StopOK(t)
			got := map[string]string{}
			for name, v := range values(g) {
				if (strings.HasPrefix(name, "stats.counters.") || strings.HasPrefix(name, "stats.timers.")) && strings.Contains(name, ".count;") {
					got[name] = v
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantFlush) {
				t.Errorf("flushed counts %v, want %v", got, tc.wantFlush)
			}
		})
	}
}

func sumOf(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}
