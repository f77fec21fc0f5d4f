package aggregator

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/garner-metrics/garner/pkg/model"
)

// TestFlushFillsEverySeriesOnce: with several shards, every series lands in
// the snapshot exactly once with its own values, and every timer's
// percentiles are its own (they share one backing array).
func TestFlushFillsEverySeriesOnce(t *testing.T) {
	h := newHarness(t, Options{Shards: 4})
	const n = 500
	var lines []string
	for i := 0; i < n; i++ {
		lines = append(lines,
			fmt.Sprintf("c.%d:%d|c", i, i), fmt.Sprintf("g.%d:%d|g", i, i), fmt.Sprintf("s.%d:a|s", i), fmt.Sprintf("s.%d:b|s", i),
			fmt.Sprintf("t.%d:%d|ms", i, i), fmt.Sprintf("t.%d:%d|ms", i, 2*i))
	}
	for i := 0; i < len(lines); i += 100 {
		h.send(lines[i:min(i+100, len(lines))]...)
	}
	s := h.flush(time.Second)
	for _, tc := range []struct {
		kind string
		got  int
	}{{"counters", len(s.Counters)}, {"gauges", len(s.Gauges)}, {"sets", len(s.Sets)}, {"timers", len(s.Timers)}} {
		if tc.got != n {
			t.Errorf("%d %s, want %d", tc.got, tc.kind, n)
		}
	}
	seen := map[string]bool{}
	check := func(name string, ok bool, format string, args ...any) {
		t.Helper()
		if seen[name] {
			t.Errorf("%s twice in the snapshot", name)
		}
		seen[name] = true
		if !ok {
			t.Errorf(name+": "+format, args...)
		}
	}
	var i int
	for _, c := range s.Counters {
		_, _ = fmt.Sscanf(c.Name, "c.%d", &i)
		check(c.Name, c.Value == float64(i), "value %v, want %d", c.Value, i)
	}
	for _, g := range s.Gauges {
		_, _ = fmt.Sscanf(g.Name, "g.%d", &i)
		check(g.Name, g.Value == float64(i), "value %v, want %d", g.Value, i)
	}
	for _, st := range s.Sets {
		check(st.Name, len(st.Members) == 2, "members %v, want a and b", st.Members)
	}
	for _, tm := range s.Timers {
		_, _ = fmt.Sscanf(tm.Name, "t.%d", &i)
		upper := float64(2 * i)
		var pct float64
		for _, p := range tm.Percentiles {
			if p.Name == "upper_90" {
				pct = p.Value
			}
		}
		check(tm.Name, tm.Upper == upper && pct == upper && len(tm.Percentiles) == 5,
			"upper %v, upper_90 %v, %d percentiles; want %v, %v, 5", tm.Upper, pct, len(tm.Percentiles), upper, upper)
	}
}

// TestFlushAbortKeepsState: a shard that reported its counts and then sees
// the flush abort (its ctx ended) keeps its series and values for the next
// flush.
func TestFlushAbortKeepsState(t *testing.T) {
	h := newHarness(t, Options{Shards: 1})
	h.send("kept:5|c", "kept.t:7|ms")
	waitDrained(h.a)
	abort := make(chan struct{})
	close(abort)
	counts := make(chan shardCounts, 1)
	done := make(chan struct{}, 1)
	h.a.shards[0].ctl <- flushReq{now: h.now, interval: time.Second, counts: counts, abort: abort, done: done,
		fill: []chan fillSpec{make(chan fillSpec, 1)}}
	if c := <-counts; c.counters != 1 || c.timers != 1 {
		t.Fatalf("counts %+v, want a counter and a timer", c)
	}
	s := h.flush(time.Second)
	if len(s.Counters) != 1 || s.Counters[0].Value != 5 {
		t.Errorf("counters after an aborted flush: %+v, want kept = 5", s.Counters)
	}
	if len(s.Timers) != 1 || s.Timers[0].Count != 1 || s.Timers[0].Upper != 7 {
		t.Errorf("timers after an aborted flush: %+v, want kept.t with 7", s.Timers)
	}
}

// TestFlushCancelled: a flush whose ctx is already done returns its error
// and leaves the data to the next flush.
func TestFlushCancelled(t *testing.T) {
	h := newHarness(t, Options{Shards: 3})
	h.send("x:1|c", "y:2|c", "z:3|c")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.a.Snapshot(ctx, h.now.Add(time.Second)); err == nil {
		t.Fatal("no error from a cancelled flush")
	}
	s := h.flush(time.Second)
	var sum float64
	for _, c := range s.Counters {
		sum += c.Value
	}
	if sum != 6 {
		t.Errorf("counters after a cancelled flush sum to %v, want 6", sum)
	}
}

// TestFlushAllocatesOneSnapshot: a flush allocates about one snapshot's
// worth of memory (its slices and the percentiles), not a copy per shard
// plus the merged one.
func TestFlushAllocatesOneSnapshot(t *testing.T) {
	h := newHarness(t, Options{Shards: 4})
	const n = 20000
	var lines []string
	for i := 0; i < n; i++ {
		lines = append(lines[:0], fmt.Sprintf("c.%d:1|c", i), fmt.Sprintf("g.%d:1|g", i), fmt.Sprintf("t.%d:1|ms", i))
		h.send(lines...)
	}
	waitDrained(h.a)
	snapBytes := n * (unsafe.Sizeof(model.Counter{}) + unsafe.Sizeof(model.Gauge{}) + unsafe.Sizeof(model.Timer{}) +
		5*unsafe.Sizeof(model.Percentile{}))
	// collectFirst goes by the same figure.
	if est := (&shardCounts{counters: n, gauges: n, timers: n, pctsMax: 5 * n}).bytes(); est != uint64(snapBytes) {
		t.Errorf("snapshot estimate %d bytes, want %d", est, snapBytes)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := h.flush(time.Second)
	runtime.ReadMemStats(&after)
	if s.Len() != 3*n {
		t.Fatalf("%d series, want %d", s.Len(), 3*n)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("flush of %d series allocated %d bytes; the snapshot is %d", s.Len(), alloc, snapBytes)
	if limit := snapBytes * 5 / 4; alloc > uint64(limit) || alloc < uint64(snapBytes) {
		t.Errorf("flush allocated %d bytes, want between %d (the snapshot) and %d (1.25 × it)", alloc, snapBytes, limit)
	}
}

// TestSetMembers: a set's members are deduplicated, each interval starts
// empty, and the map a snapshot got never changes afterwards.
func TestSetMembers(t *testing.T) {
	memberLines := func(set string, members ...int) []string {
		var l []string
		for _, m := range members {
			l = append(l, fmt.Sprintf("%s:m%d|s", set, m))
		}
		return l
	}
	seq := func(from, to int) []int {
		var s []int
		for i := from; i < to; i++ {
			s = append(s, i)
		}
		return s
	}
	cases := []struct {
		name     string
		interval [][]int // members sent in each interval, in order
	}{
		{"one member, repeated", [][]int{{1, 1, 1}, {1}, {1, 1}}},
		{"a few, duplicates", [][]int{{1, 2, 1, 3, 2}, {3, 4}, {}}},
		{"exactly eight", [][]int{append(seq(0, 8), seq(0, 8)...), seq(4, 12)}},
		{"nine", [][]int{append(seq(0, 9), seq(0, 9)...), seq(0, 3)}},
		{"many, then few", [][]int{append(seq(0, 100), seq(50, 150)...), {7, 7}, seq(0, 20)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{Shards: 2})
			var got []map[string]struct{}
			for _, members := range tc.interval {
				if l := memberLines("users", members...); len(l) > 0 {
					h.send(l...)
				}
				s := h.flush(time.Second)
				if len(s.Sets) != 1 {
					t.Fatalf("%d sets, want 1", len(s.Sets))
				}
				got = append(got, s.Sets[0].Members)
			}
			// Check every interval's map at the end: a later interval must
			// not have changed an earlier snapshot's.
			for i, members := range tc.interval {
				want := map[string]struct{}{}
				for _, m := range members {
					want[fmt.Sprintf("m%d", m)] = struct{}{}
				}
				if len(got[i]) != len(want) {
					t.Errorf("interval %d: %d members %v, want %d", i, len(got[i]), got[i], len(want))
					continue
				}
				for m := range want {
					if _, ok := got[i][m]; !ok {
						t.Errorf("interval %d: member %s missing", i, m)
					}
				}
			}
		})
	}
}

// TestTimerValuesKept: the values a snapshot got are not touched by the
// next interval's samples (its slice is allocated anew, sized like the last).
func TestTimerValuesKept(t *testing.T) {
	h := newHarness(t, Options{Shards: 1})
	h.send("lat:3|ms", "lat:1|ms", "lat:2|ms")
	first := h.flush(time.Second)
	h.send("lat:9|ms", "lat:8|ms", "lat:7|ms", "lat:6|ms")
	second := h.flush(time.Second)
	if v := first.Timers[0].Values; fmt.Sprint(v) != "[1 2 3]" {
		t.Errorf("first snapshot's values %v after the next interval, want [1 2 3]", v)
	}
	if v := second.Timers[0].Values; fmt.Sprint(v) != "[6 7 8 9]" {
		t.Errorf("second snapshot's values %v, want [6 7 8 9]", v)
	}
}

// TestCollectFirst: no collection for a small snapshot; one, reported, when
// the snapshot could never fit under the heap goal.
func TestCollectFirst(t *testing.T) {
	cases := []struct {
		name string
		need uint64
		want bool
	}{
		{"small snapshot", minCollectFirst - 1, false},
		{"larger than any heap goal", 1 << 50, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got := collectFirst(tc.need)
			runtime.ReadMemStats(&after)
			if got != tc.want {
				t.Errorf("collectFirst(%d) = %v, want %v", tc.need, got, tc.want)
			}
			if ran := after.NumForcedGC > before.NumForcedGC; ran != tc.want {
				t.Errorf("forced collection ran: %v, want %v", ran, tc.want)
			}
		})
	}
}
