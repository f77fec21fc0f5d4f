package aggregator

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

func sets(s *model.Snapshot) map[string]model.Set {
	m := map[string]model.Set{}
	for _, x := range s.Sets {
		m[key(x.Series)] = x
	}
	return m
}

func sketchOf(p int, from, to int) *hll.Sketch {
	s := hll.New(p)
	for i := from; i < to; i++ {
		s.AddString("u" + strconv.Itoa(i))
	}
	return s
}

// In hll mode a set keeps a sketch and no members; small sets count
// exactly, the next interval starts empty.
func TestHLLSets(t *testing.T) {
	h := newHarness(t, Options{SetAggregation: SetHLL})
	h.send("s:a|s", "s:b|s", "s:a|s", "s:c|s")
	got := sets(h.flush(time.Second))["s||"+src]
	if got.Sketch == nil || len(got.Members) != 0 || got.Count() != 3 || got.Estimate != 3 {
		t.Fatalf("sketch %v, members %d, count %d", got.Sketch != nil, len(got.Members), got.Count())
	}
	got = sets(h.flush(time.Second))["s||"+src]
	if got.Sketch != nil || got.Count() != 0 {
		t.Errorf("idle interval: sketch %v, count %d", got.Sketch != nil, got.Count())
	}
}

// Forwarded sketches of different precisions and raw members merge into
// what one sketch of every member would be; an invalid sketch is refused.
func TestForwardedSketchesMerge(t *testing.T) {
	h := newHarness(t, Options{SetAggregation: SetHLL, HLLPrecision: 14})
	k := AppendSeriesKey(nil, []byte("s"), nil, []byte(src))
	h.b.Series(k)
	for _, sk := range []*hll.Sketch{sketchOf(14, 0, 30000), sketchOf(16, 20000, 60000), sketchOf(14, 59000, 59100)} {
		if err := h.b.Sketch(exported[hll.Data](sk)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 60000; i < 61000; i++ {
		h.b.MemberString("u"+strconv.Itoa(i), 1)
	}
	if err := h.b.Sketch(&hll.Data{Precision: 14, Registers: []byte{1}}); !errors.Is(err, hll.ErrInvalid) {
		t.Errorf("invalid sketch: %v", err)
	}
	h.b.Send(context.Background())
	got := sets(h.flush(time.Second))["s||"+src]
	want := sketchOf(14, 0, 61000).Estimate()
	if got.Sketch == nil || got.Estimate != want {
		t.Fatalf("merged estimate %d (sketch %v), one sketch of the union: %d", got.Estimate, got.Sketch != nil, want)
	}
	garnertest.CheckRel(t, "estimate", float64(got.Estimate), 61000, 3*1.04/128)
}

// An exact-mode aggregator that gets a sketch keeps the estimate of the
// union with its members for that interval, counts it, and is exact again
// the interval after.
func TestForwardedSketchExactMode(t *testing.T) {
	h := newHarness(t, Options{})
	h.send("s:u1|s", "s:x|s")
	k := AppendSeriesKey(nil, []byte("s"), nil, []byte(src))
	h.b.Series(k)
	if err := h.b.Sketch(exported[hll.Data](sketchOf(14, 0, 100))); err != nil {
		t.Fatal(err)
	}
	h.b.Send(context.Background())
	h.send("s:y|s")
	got := sets(h.flush(time.Second))["s||"+src]
	if got.Sketch == nil || got.Count() != 102 { // u0..u99, x, y
		t.Errorf("count %d (sketch %v), want 102", got.Count(), got.Sketch != nil)
	}
	if n := testutil.ToFloat64(h.a.m.exactSketches); n != 1 {
		t.Errorf("garner_aggregator_exact_set_sketches_total = %g, want 1", n)
	}
	h.send("s:a|s", "s:b|s")
	got = sets(h.flush(time.Second))["s||"+src]
	if got.Sketch != nil || len(got.Members) != 2 {
		t.Errorf("next interval: sketch %v, members %d; want exact 2", got.Sketch != nil, len(got.Members))
	}
}

// A forwarded sketch refused by max-series-per-metric goes, with the
// members, to the name's overflow series on whichever shard owns it.
func TestSketchOverflow(t *testing.T) {
	h := newHarness(t, Options{SetAggregation: SetHLL, Shards: 4, MaxSeriesPerMetric: 1, CardinalityOverflow: true})
	for i := 0; i < 8; i++ {
		k := AppendSeriesKey(nil, []byte("s"), [][]byte{fmt.Appendf(nil, "t:%d", i)}, []byte(src))
		h.b.Series(k)
		if err := h.b.Sketch(exported[hll.Data](sketchOf(14, i*10, i*10+10))); err != nil {
			t.Fatal(err)
		}
	}
	h.b.Send(context.Background())
	byName := map[string]int{}
	for _, snap := range []*model.Snapshot{h.flush(time.Second), h.flush(time.Second)} {
		for _, s := range snap.Sets {
			byName[s.Name] += s.Count()
		}
	}
	if byName["s"] != 10 || byName["s"+overflowSuffix] != 70 {
		t.Errorf("counts by name %v, want s: 10, s%s: 70", byName, overflowSuffix)
	}
}

// feedSet sends n distinct members to one set series and waits until the
// shards applied them.
func feedSet(t *testing.T, h *harness, n int) {
	t.Helper()
	k := AppendSeriesKey(nil, []byte("s"), nil, []byte(src))
	var m []byte
	for sent := 0; sent < n; {
		h.b.Series(k)
		for i := 0; i < 10000 && sent < n; i++ {
			m = strconv.AppendInt(append(m[:0], "user-"...), int64(sent), 10)
			h.b.Member(m, 1)
			sent++
		}
		if d := h.b.Send(context.Background()); d > 0 {
			t.Fatalf("%d members dropped", d)
		}
		for deadline := time.Now().Add(time.Minute); h.a.QueuedSamples() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
}

// One set series, 1M distinct members in one interval: in hll mode its
// memory stays at the registers (16 KiB at precision 14), the count within
// 3 standard errors. Exact mode's heap growth for 100k members is logged
// for comparison.
func TestHLLSetMemoryBounded(t *testing.T) {
	h := newHarness(t, Options{SetAggregation: SetHLL, Shards: 1, MaxQueuedSamples: 1 << 20})
	feedSet(t, h, 1_000_000)
	got := sets(h.flush(time.Second))["s||"+src]
	if got.Sketch == nil {
		t.Fatal("no sketch")
	}
	if b := got.Sketch.Bytes(); b > 1<<14 {
		t.Errorf("1M members: the series' sketch holds %d bytes, want ≤ 16 KiB", b)
	}
	garnertest.CheckRel(t, "estimate", float64(got.Estimate), 1e6, 3*1.04/128)
	t.Logf("hll: 1M members, sketch of %d bytes, estimate %d", got.Sketch.Bytes(), got.Estimate)

	e := newHarness(t, Options{Shards: 1, MaxQueuedSamples: 1 << 20})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	feedSet(t, e, 100_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("exact: 100k members, heap grew %d bytes (%.0f per member)", int64(after.HeapAlloc)-int64(before.HeapAlloc),
		float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1e5)
	if n := sets(e.flush(time.Second))["s||"+src].Count(); n != 100_000 {
		t.Errorf("exact count %d", n)
	}
}

func benchSetMembers(b *testing.B, mode SetAggregation) {
	a, stop := benchAgg(b, 1)
	stop() // the benchmark drives the shard itself, on its goroutine
	a.opts.SetAggregation, a.opts.HLLPrecision = mode, hll.DefaultPrecision
	s := a.shards[0]
	members := make([][]byte, 1<<16)
	for i := range members {
		members[i] = fmt.Appendf(nil, "user-%08d", i*7919)
	}
	var keys [][]byte
	for i := 0; i < 16; i++ {
		keys = append(keys, AppendSeriesKey(nil, fmt.Appendf(nil, "s.%d", i), nil, nil))
	}
	flush := func() {
		c := s.counts()
		snap := &model.Snapshot{Sets: make([]model.Set, c.sets)}
		s.snapshot(flushReq{now: time.Now(), interval: time.Second}, fillSpec{snap: snap})
	}
	batch := getBatch(0, time.Now().UnixNano())
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rec := batch.addKey(keys[n&15])
		rec.typ = statsd.Set
		addMember(batch, rec, members[n&(1<<16-1)])
		n++
		if batch.full() {
			s.queued.Add(int64(len(batch.recs)))
			s.apply(batch)
			batch = getBatch(0, time.Now().UnixNano())
		}
		if n%200000 == 0 { // a flush every 200k members (12500 per series, 4096 distinct)
			flush()
		}
	}
}

// BenchmarkSetMember is the CPU per set member, ingest and flush, of each
// mode.
func BenchmarkSetMember(b *testing.B) {
	b.Run("mode=exact", func(b *testing.B) { benchSetMembers(b, SetExact) })
	b.Run("mode=hll", func(b *testing.B) { benchSetMembers(b, SetHLL) })
}
