package graphite_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// mixedSnapshot has n series of each type, tagged, with percentiles, so that
// its payload spans many chunks.
func mixedSnapshot(n int, ts int64) *model.Snapshot {
	s := &model.Snapshot{Time: time.Unix(ts, 0), Interval: 10 * time.Second}
	for i := 0; i < n; i++ {
		se := func(kind string) model.Series {
			return model.Series{Name: fmt.Sprintf("%s.m%06d", kind, i), Tags: []string{"env:prod", fmt.Sprintf("shard:%d", i%7)}, Source: "10.0.0.1"}
		}
		s.Counters = append(s.Counters, model.Counter{Series: se("c"), Value: float64(i), PerSecond: float64(i) / 10})
		s.Gauges = append(s.Gauges, model.Gauge{Series: se("g"), Value: float64(i) / 3})
		s.Sets = append(s.Sets, model.Set{Series: se("s"), Members: map[string]struct{}{"a": {}}})
		s.Timers = append(s.Timers, model.Timer{Series: se("t"), Count: 2, Lower: 1, Upper: 2, Mean: 1.5, Sum: 3,
			Percentiles: []model.Percentile{{Name: "upper_90", Value: 2}, {Name: "count_90", Value: 2}}})
	}
	return s
}

// prealloc accepts one connection on l and reads it, until the sender closes
// it, into a buffer allocated up front, so that the reading allocates
// nothing while the sender is measured.
func prealloc(l net.Listener, size int) <-chan []byte {
	buf := make([]byte, size)
	return readOne(l, func(conn net.Conn) []byte {
		n := 0
		for n < len(buf) {
			k, err := conn.Read(buf[n:])
			n += k
			if err != nil {
				break
			}
		}
		return buf[:n]
	})
}

// TestChunkedFlush: a flush many chunks long arrives byte for byte as Format
// writes it, and sending it allocates a small fraction of its size: it is
// written chunk by chunk, never built whole.
func TestChunkedFlush(t *testing.T) {
	for _, mode := range []string{"tags", "basic", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			l := listen(t, "127.0.0.1:0", 0)
			c, _, _ := newModeClient(t, mode, l.Addr().String(), 1<<20, 10*time.Second)
			snap := mixedSnapshot(20000, 1700000000)
			want := c.Format(nil, snap)
			if len(want) < 2<<20 {
				t.Fatalf("payload %d bytes: too small to show chunking", len(want))
			}
			got := prealloc(l, len(want)+1) // +1: anything extra shows

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if err := c.SendMetrics(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			_ = c.Close()

			if b := <-got; !bytes.Equal(b, want) {
				t.Errorf("carbon got %d bytes, want the %d of Format (first difference at byte %d)", len(b), len(want), firstDiff(b, want))
			}
			// A few chunk buffers and the connection; the old whole-flush
			// buffer was more than the payload.
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("sending a %d-byte flush allocated %d bytes", len(want), alloc)
			if alloc > uint64(len(want))/8 {
				t.Errorf("sending a %d-byte flush allocated %d bytes, want under %d", len(want), alloc, len(want)/8)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFlushLargerThanBuffer: with carbon down, a flush bigger than
// max_buffer_size keeps only its newest max_buffer_size bytes (whole chunks,
// whole lines); the oldest are dropped and counted, the flush once. When
// carbon is back, what was kept arrives, and it is the payload's tail.
func TestFlushLargerThanBuffer(t *testing.T) {
	addr := garnertest.FreeAddr(t)
	const limit = 400 << 10
	c, reg, droppedSeries := newModeClient(t, "basic", addr, limit, time.Second)
	const n = 20000 // counters: 2 lines of ~45 bytes each
	snap := counterSnapshot(n, 1, 1700000000)
	payload := c.Format(nil, snap)
	if len(payload) < 3*limit {
		t.Fatalf("payload %d bytes: want well over max_buffer_size %d", len(payload), limit)
	}
	if err := c.SendMetrics(context.Background(), snap); err == nil || !strings.Contains(err.Error(), "cannot connect to carbon") {
		t.Fatalf("flush with carbon down: error %v, want cannot connect", err)
	}
	droppedBytes := garnertest.Gathered(t, reg, "garner_graphite_dropped_bytes_total")
	kept := len(payload) - int(droppedBytes)
	if kept <= 0 || kept > limit {
		t.Fatalf("kept %d bytes (dropped %v of %d), want 1..%d", kept, droppedBytes, len(payload), limit)
	}
	if d := garnertest.Gathered(t, reg, "garner_graphite_dropped_flushes_total"); d != 1 {
		t.Errorf("dropped flushes = %v, want 1 (one flush, partly dropped)", d)
	}

	got := readAll(listen(t, addr, 0))
	if err := c.SendMetrics(context.Background(), &model.Snapshot{Time: snap.Time}); err != nil {
		t.Fatalf("flush with carbon up: %v", err)
	}
	_ = c.Close()
	b := <-got
	if !bytes.Equal(b, payload[len(payload)-kept:]) {
		t.Fatalf("carbon got %d bytes, want the payload's last %d", len(b), kept)
	}
	if i := len(payload) - kept; i > 0 && payload[i-1] != '\n' {
		t.Errorf("kept data starts mid-line at byte %d", i)
	}
	// Every series is either delivered or counted as dropped.
	delivered := bytes.Count(b, []byte(".count "))
	if ds := testutil.ToFloat64(droppedSeries); int(ds)+delivered != n {
		t.Errorf("dropped series %v + delivered %d = %d, want %d", ds, delivered, int(ds)+delivered, n)
	}
}

// TestQueuedFlushesAheadOfNew: flushes queued while carbon is down are
// written, oldest first, before the new flush's chunks.
func TestQueuedFlushesAheadOfNew(t *testing.T) {
	addr := garnertest.FreeAddr(t)
	c, reg, _ := newModeClient(t, "tags", addr, 64<<20, time.Second)
	var want []byte
	for i := int64(1); i <= 3; i++ {
		snap := mixedSnapshot(2000, 1700000000+i) // several chunks each
		want = c.Format(want, snap)
		if err := c.SendMetrics(context.Background(), snap); err == nil {
			t.Fatalf("flush %d: no error with carbon down", i)
		}
	}
	got := readAll(listen(t, addr, 0))
	last := mixedSnapshot(2000, 1700000004)
	want = c.Format(want, last)
	if err := c.SendMetrics(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("carbon got %d bytes, want %d (first difference at byte %d)", len(b), len(want), firstDiff(b, want))
	}
	for _, m := range []string{"garner_graphite_dropped_flushes_total", "garner_graphite_dropped_bytes_total"} {
		if v := garnertest.Gathered(t, reg, m); v != 0 {
			t.Errorf("%s = %v, want 0", m, v)
		}
	}
}

// BenchmarkSendMetrics formats and writes a flush of 100k series of each
// type (tags mode) to a loopback listener that discards it.
func BenchmarkSendMetrics(b *testing.B) {
	l := listen(b, "127.0.0.1:0", 0)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, conn); _ = conn.Close() }()
		}
	}()
	c, _, _ := newModeClient(b, "tags", l.Addr().String(), 64<<20, 30*time.Second)
	snap := mixedSnapshot(100000, 1700000000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMetrics(context.Background(), snap); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = c.Close()
}

// BenchmarkFormat formats the same flush as BenchmarkSendMetrics into a
// reused buffer: the naming alone, without the connection.
func BenchmarkFormat(b *testing.B) {
	c, _, _ := newModeClient(b, "tags", "127.0.0.1:1", 1<<20, time.Second)
	snap := mixedSnapshot(100000, 1700000000)
	buf := c.Format(nil, snap)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		buf = c.Format(buf[:0], snap)
	}
}
