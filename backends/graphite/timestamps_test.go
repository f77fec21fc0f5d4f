package graphite_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// TestCarbonTimestampsHonored (issue 13): with timestamps = "honor", a
// counter timestamped 3 flush intervals ago is stored by a real carbon in
// the step of that interval's end, and the live counter of the same series
// in the step of the final flush: carbon keeps both.
func TestCarbonTimestampsHonored(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Second // = carbon's step
	c := garnertest.NewCarbonStep(t, garnertest.FreePort(t), interval)
	c.Start()
	p, udp := startGarner(t, c.Addr(), "basic", "",
		"--flush-interval", interval.String(), "--timestamps", "honor", "--shutdown-grace", "0s")
	past := time.Now().Add(-3 * interval).Unix()
	end := (past + 9) / 10 * 10 // the end of the 10s interval past falls in
	garnertest.SendUDP(t, udp, fmt.Sprintf("tsc.c:5|c|T%d\ntsc.c:1|c", past))
	p.WaitRead(t, 2)
	p.StopOK(t)
	name := "stats.counters.tsc.c.count"
	bad, got := c.WaitStored(t, []string{name}, func(got map[string][]garnertest.WhisperPoint) (bad []string) {
		var atEnd, later float64
		for _, pt := range got[name] {
			switch {
			case pt.TS == end:
				atEnd += pt.V
			case pt.TS > end:
				later += pt.V
			}
		}
		if atEnd != 5 || later != 1 {
			bad = append(bad, fmt.Sprintf("%s: %v at %d and %v later, want 5 and 1: %v", name, atEnd, end, later, got[name]))
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

// TestFormatPointTimes: counters and gauges of a past interval (timestamps
// = "honor") carry that interval's end; every other line the flush's time.
func TestFormatPointTimes(t *testing.T) {
	c, _, _ := newModeClient(t, "basic", fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)), 1<<20, time.Second) // never dialled
	past := time.Unix(1699999970, 0).UnixNano()
	snap := &model.Snapshot{Time: time.Unix(1700000000, 0), Interval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "c"}, Value: 1, PerSecond: 0.1},
			{Series: model.Series{Name: "c"}, Value: 5, PerSecond: 0.5, At: past},
		},
		Gauges: []model.Gauge{
			{Series: model.Series{Name: "g"}, Value: 7, At: past},
			{Series: model.Series{Name: "g"}, Value: 2},
		},
		Timers: []model.Timer{{Series: model.Series{Name: "t"}, Count: 1}},
		Sets:   []model.Set{{Series: model.Series{Name: "s"}, Members: map[string]struct{}{"x": {}}}},
	}
	want := "stats.counters.c.count 1 1700000000\nstats.counters.c.rate 0.100000 1700000000\n" +
		"stats.counters.c.count 5 1699999970\nstats.counters.c.rate 0.500000 1699999970\n" +
		"stats.timers.t.count 1 1700000000\n" +
		"stats.gauges.g 7.000000 1699999970\nstats.gauges.g 2.000000 1700000000\n" +
		"stats.sets.s 1 1700000000\n"
	got := string(c.Format(nil, snap))
	// Timers write every statistic: keep the lines named above.
	var kept []string
	for _, l := range strings.SplitAfter(got, "\n") {
		if l != "" && (!strings.HasPrefix(l, "stats.timers.") || strings.HasPrefix(l, "stats.timers.t.count ")) {
			kept = append(kept, l)
		}
	}
	if strings.Join(kept, "") != want {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(kept, ""), want)
	}
}
