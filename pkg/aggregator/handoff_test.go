package aggregator

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// fullBatch is a batch of batchRecords counter samples for shard 0.
func fullBatch() *Batch {
	b := getBatch(0, time.Now().UnixNano())
	rec := b.addKey([]byte("c\x00\x00"))
	rec.typ, rec.val = statsd.Counter, 1
	for range batchRecords {
		b.recs = append(b.recs, rec)
	}
	return b
}

// TestSubmitWaitChecksQueueLimit: under Wait, a batch over the queue limit
// waits although the channel has room, goes in once the shard applied a
// batch, and is dropped and counted when its context ends first.
func TestSubmitWaitChecksQueueLimit(t *testing.T) {
	a := New(Options{Shards: 1, MaxQueuedSamples: batchRecords}, garnertest.QuietLog(), prometheus.NewRegistry()) // shards not running
	s := a.shards[0]
	if !a.Submit(context.Background(), fullBatch(), Wait) {
		t.Fatal("the first batch fits the limit")
	}
	done := make(chan bool)
	go func() { done <- a.Submit(context.Background(), fullBatch(), Wait) }()
	select {
	case ok := <-done:
		t.Fatalf("a batch over the limit went in at once (%v)", ok)
	case <-time.After(20 * time.Millisecond): // it waits (not a synchronisation)
	}
	s.apply(<-s.in) // room: the waiting batch goes in
	if !garnertest.Receive(t, "the waiting batch was not woken by the shard's apply", 10*time.Second, done) {
		t.Fatal("the waiting batch was dropped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if a.Submit(ctx, fullBatch(), Wait) {
		t.Fatal("a batch over the limit went in with nothing applied")
	}
	if got := testutil.ToFloat64(a.m.queueDropped); got != batchRecords {
		t.Fatalf("dropped %v, want %d", got, batchRecords)
	}
	if a.Submit(context.Background(), fullBatch(), NeverBlock) {
		t.Fatal("NeverBlock took a batch over the limit")
	}
}
