package aggregator

import (
	"fmt"
	"testing"
	"time"
)

func TestTimestampSlotsEnd(t *testing.T) {
	s := int64(time.Second)
	cases := []struct {
		name     string
		slots    TimestampSlots
		at, want int64
	}{
		{"on an end", TimestampSlots{Interval: 10 * time.Second}, 20 * s, 20 * s},
		{"just after an end", TimestampSlots{Interval: 10 * time.Second}, 20*s + 1, 30 * s},
		{"inside", TimestampSlots{Interval: 10 * time.Second}, 25 * s, 30 * s},
		{"offset", TimestampSlots{Interval: 10 * time.Second, Offset: 3 * time.Second}, 20 * s, 23 * s},
		{"offset, on an end", TimestampSlots{Interval: 10 * time.Second, Offset: 3 * time.Second}, 23 * s, 23 * s},
		{"offset over the interval", TimestampSlots{Interval: 10 * time.Second, Offset: 13 * time.Second}, 24 * s, 33 * s},
		{"zero interval is 10s", TimestampSlots{}, 1, 10 * s},
		{"real time", TimestampSlots{Interval: time.Minute}, 1700000001 * s, 1700000040 * s},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.slots.End(tc.at); got != tc.want {
				t.Fatalf("End(%d) = %d, want %d", tc.at, got, tc.want)
			}
		})
	}
}

// TestTimestampSlots: counters and gauges with a timestamp of an interval
// already flushed are sent once, at the next flush, as their own points
// with that interval's end as their time; one of the current interval is
// aggregated as any sample; timers and sets ignore At.
func TestTimestampSlots(t *testing.T) {
	const iv = 10 * time.Second
	h := newHarness(t, Options{Shards: 2, TimestampSlots: TimestampSlots{Interval: iv}})
	h.flush(iv) // the interval before h.now is flushed
	now := h.now.Unix()
	past, older, current := now-25, now-45, now+3
	slots := h.a.opts.TimestampSlots
	pastEnd, olderEnd := slots.End(past*int64(time.Second)), slots.End(older*int64(time.Second))
	h.send("c:1|c", fmt.Sprintf("c:4|c|T%d", current),
		fmt.Sprintf("c:2|c|T%d", past), fmt.Sprintf("c:3|c|#|T%d", past), fmt.Sprintf("c:10|c|T%d", older),
		"g:1|g", fmt.Sprintf("g:7|g|T%d", past), fmt.Sprintf("g:9|g|T%d", past), fmt.Sprintf("g:+1|g|T%d", past),
		fmt.Sprintf("t:5|ms|T%d", past), fmt.Sprintf("s:x|s|T%d", past))
	snap := h.flush(iv)

	type point struct {
		value float64
		at    int64
	}
	var cs, gs []point
	for _, c := range snap.Counters {
		if c.Name == "c" {
			cs = append(cs, point{c.Value, c.At})
		}
		if c.At != 0 && c.PerSecond != c.Value/iv.Seconds() {
			t.Errorf("counter at %d: per second %v, want %v", c.At, c.PerSecond, c.Value/iv.Seconds())
		}
	}
	for _, g := range snap.Gauges {
		gs = append(gs, point{g.Value, g.At})
	}
	wantC := map[point]bool{{5, 0}: true, {5, pastEnd}: true, {10, olderEnd}: true}
	if len(cs) != len(wantC) {
		t.Fatalf("counters %v, want %v", cs, wantC)
	}
	for _, p := range cs {
		if !wantC[p] {
			t.Errorf("counter point %v, want one of %v", p, wantC)
		}
	}
	wantG := map[point]bool{{1, 0}: true, {10, pastEnd}: true}
	if len(gs) != len(wantG) || !wantG[gs[0]] || !wantG[gs[1]] {
		t.Errorf("gauges %v, want %v", gs, wantG)
	}
	if len(snap.Timers) != 1 || snap.Timers[0].Count != 1 || len(snap.Sets) != 1 {
		t.Errorf("timers %+v, sets %+v: want each once, as samples of now", snap.Timers, snap.Sets)
	}
	if snap.PastInterval != iv {
		t.Errorf("PastInterval %v, want %v", snap.PastInterval, iv)
	}
	if total, _ := h.cardinality(0); total != 4 {
		t.Errorf("cardinality %d after the flush, want 4 (the slots' series are gone)", total)
	}

	// The slots were sent: the next flush has the live series only.
	snap = h.flush(iv)
	for _, c := range snap.Counters {
		if c.At != 0 {
			t.Errorf("counter %s at %d sent again", c.Name, c.At)
		}
	}
	for _, g := range snap.Gauges {
		if g.At != 0 || g.Value != 1 {
			t.Errorf("gauge %s = %v at %d, want the live 1", g.Name, g.Value, g.At)
		}
	}
}

// TestTimestampSlotsCardinality: a slot's series counts against max-series
// until it is flushed.
func TestTimestampSlotsCardinality(t *testing.T) {
	h := newHarness(t, Options{Shards: 1, MaxSeries: 2, TimestampSlots: TimestampSlots{Interval: 10 * time.Second}})
	h.flush(10 * time.Second)
	now := h.now.Unix()
	h.send("a:1|c", fmt.Sprintf("a:1|c|T%d", now-15), fmt.Sprintf("a:1|c|T%d", now-35))
	if n := len(h.flush(10 * time.Second).Counters); n != 2 {
		t.Fatalf("%d counters, want 2 (max-series)", n)
	}
	h.send(fmt.Sprintf("a:1|c|T%d", now-35))
	if n := len(h.flush(10 * time.Second).Counters); n != 2 {
		t.Fatalf("%d counters after the slots were sent, want 2 (the live one and the new slot)", n)
	}
}

// TestTimestampSlotsOverflow: a past interval's sample of a series refused
// by max-series-per-metric goes to its name's overflow series in that
// interval, also when another shard owns the overflow series.
func TestTimestampSlotsOverflow(t *testing.T) {
	h := newHarness(t, Options{Shards: 4, MaxSeriesPerMetric: 1, CardinalityOverflow: true, TimestampSlots: TimestampSlots{Interval: 10 * time.Second}})
	h.flush(10 * time.Second)
	now := h.now.Unix()
	past := now - 25
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, fmt.Sprintf("m:1|c|#k:%d|T%d", i, past))
	}
	h.send(lines...)
	snap := h.flush(10 * time.Second)
	end := h.a.opts.TimestampSlots.End(past * int64(time.Second))
	var total float64
	for _, c := range snap.Counters {
		if c.At != end {
			t.Errorf("counter %s at %d, want %d", c.Name, c.At, end)
		}
		total += c.Value
	}
	if total != 20 || len(snap.Counters) != 2 {
		t.Errorf("%d counters summing to %v, want m and m.__overflow__ summing to 20: %+v", len(snap.Counters), total, snap.Counters)
	}
}
