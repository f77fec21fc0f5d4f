package aggregator

import (
	"context"
	"sync"
	"time"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// The hand-off: every sample reaches a shard in a Batch, through Submit,
// whoever made it (a statsd listener, an HTTP ingestion request, a shard
// passing a sample on to another shard's overflow series). What Submit does
// when the shard's queue is full is the caller's explicit Policy.

const (
	batchRecords = 512       // records per batch before it is handed over
	batchBytes   = 32 * 1024 // key bytes per batch before it is handed over
)

// record is one sample. Its series key lives in the batch's arena at
// [off, off+klen) (a SeriesKey), a set's member at [moff, moff+mlen); hash
// is the key's hash (Aggregator.hash), computed once by whoever added it.
type record struct {
	hash       uint64
	off, klen  uint32
	moff, mlen uint32
	val        float64
	rate       float64
	typ        statsd.Type
	delta      bool
	unscaled   bool   // a timer sent as h or d (statsd.Metric.Unscaled)
	hist       uint32 // a forwarded histogram: index+1 in the batch's hists, val its sample count; for a set, a forwarded sketch: index+1 in sketches
	at         int64  // the sample's own time (a DogStatsD timestamp), unix nanos; 0 = arrival (slots.go)
}

// Batch is samples for one shard: fixed-size records whose series keys and
// set members live in one byte arena, so that handing over hundreds of
// samples is one channel send and costs no allocation. Batches are pooled;
// one belongs to its Batcher until it is submitted, to the aggregator after.
type Batch struct {
	recs     []record
	arena    []byte
	now      int64 // unix nanos when the batch was started: the samples' arrival time
	shard    int
	hists    []*histogram.Histogram // forwarded timer histograms (record.hist)
	sketches []*hll.Sketch          // forwarded set sketches (record.hist of a set)
}

var batchPool = sync.Pool{New: func() any {
	return &Batch{recs: make([]record, 0, batchRecords), arena: make([]byte, 0, batchBytes+4096)}
}}

func getBatch(shard int, now int64) *Batch {
	b := batchPool.Get().(*Batch)
	b.shard, b.now = shard, now
	return b
}

func putBatch(b *Batch) {
	b.recs = b.recs[:0]
	b.arena = b.arena[:0]
	clear(b.hists)
	b.hists = b.hists[:0]
	clear(b.sketches)
	b.sketches = b.sketches[:0]
	batchPool.Put(b)
}

// Len is the number of samples in b.
func (b *Batch) Len() int { return len(b.recs) }

func (b *Batch) full() bool { return len(b.recs) >= batchRecords || len(b.arena) >= batchBytes }

// addKey copies a series key into the arena and returns a record template
// pointing at it, with the key's hash.
func (b *Batch) addKey(key []byte) record { return b.addHashedKey(key, keyHash(key)) }

// addHashedKey is addKey for a key whose hash h is known.
func (b *Batch) addHashedKey(key []byte, h uint64) record {
	off := uint32(len(b.arena))
	b.arena = append(b.arena, key...)
	return record{hash: h, off: off, klen: uint32(len(key)), rate: 1}
}

// addMember copies a set member into the arena and adds rec with it.
func addMember[T string | []byte](b *Batch, rec record, member T) {
	rec.moff = uint32(len(b.arena))
	rec.mlen = uint32(len(member))
	b.arena = append(b.arena, member...)
	b.recs = append(b.recs, rec)
}

// Policy is what Submit does with a batch whose shard's queue is full
// (MaxQueuedSamples samples waiting, or its channel full).
type Policy uint8

const (
	// NeverBlock drops the batch at once and counts its samples. Statsd
	// listeners use it (a reader that waits loses datagrams in the kernel
	// instead, uncounted), and so do shards passing samples on to each other
	// (two shards waiting for each other would deadlock).
	NeverBlock Policy = iota
	// Wait waits for room in the queue until the context ends, then drops
	// and counts. HTTP ingestion uses it: the request's answer waits, which
	// is the back-pressure a forwarder understands.
	Wait
)

// Submit hands b to the shard it was built for, under policy p, and reports
// whether the shard took it. A batch not taken is dropped and its samples
// counted in garner_aggregator_queue_dropped_lines_total. Either way b
// belongs to the aggregator afterwards. ctx bounds the wait of Wait; it is
// not looked at under NeverBlock. Safe for concurrent use.
func (a *Aggregator) Submit(ctx context.Context, b *Batch, p Policy) bool {
	s := a.shards[b.shard]
	n := int64(len(b.recs))
	for {
		if s.queued.Add(n) <= int64(s.limit) {
			if p == NeverBlock {
				select {
				case s.in <- b:
					return true
				default:
				}
			} else {
				select {
				case s.in <- b:
					return true
				case <-ctx.Done():
				}
			}
			s.queued.Add(-n)
			break
		}
		s.queued.Add(-n)
		if p == NeverBlock || !s.waitRoom(ctx, n) {
			break
		}
	}
	a.m.queueDropped.Add(float64(n))
	putBatch(b)
	return false
}

// waitRoom waits until the shard has applied a batch since the call and
// room for n more samples may be there, or ctx ends (false).
func (s *shard) waitRoom(ctx context.Context, n int64) bool {
	room := *s.room.Load()
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	if s.queued.Load()+n <= int64(s.limit) { // applied before waiters was seen
		return true
	}
	select {
	case <-room:
		return true
	case <-ctx.Done():
		return false
	}
}

// signalRoom wakes the waitRoom callers, after the shard applied a batch.
func (s *shard) signalRoom() {
	if s.waiters.Load() == 0 {
		return
	}
	next := make(chan struct{})
	close(*s.room.Swap(&next))
}

// Batcher gathers one goroutine's samples into a Batch per shard, chosen by
// the hash of the series key, and submits them under its Policy. It is not
// safe for concurrent use: every reading goroutine or request has its own.
//
// A sample is added in two steps: Series starts a series (copies its key
// into its shard's batch), then Sample or Member adds values to it.
type Batcher struct {
	a       *Aggregator
	policy  Policy
	pending []*Batch // by shard
	full    []*Batch // under Wait: full batches, submitted by Send
	cur     *Batch   // batch of the current series
	rec     record   // record template of the current series
	key     []byte   // key of the current series, the caller's
	at      int64    // time of the current series' samples (SeriesAt); 0 = now
	dropped int      // samples dropped since the last Send
}

// NewBatcher returns a Batcher that submits under p. Safe for concurrent use.
func (a *Aggregator) NewBatcher(p Policy) *Batcher {
	return &Batcher{a: a, policy: p, pending: make([]*Batch, len(a.shards))}
}

// Series starts the samples of the series key (a SeriesKey). key must stay
// unchanged until the next call to Series or SeriesAt.
func (t *Batcher) Series(key []byte) { t.SeriesAt(key, 0) }

// SeriesAt is Series for samples that carry their own time, at (unix
// nanoseconds; a DogStatsD timestamp): counters and gauges go to the flush
// interval at falls in (TimestampSlots). at = 0 is Series. The caller
// checks that at is recent enough to be worth keeping.
func (t *Batcher) SeriesAt(key []byte, at int64) {
	h := t.a.hash(key)
	si := t.a.shardFor(h)
	b := t.pending[si]
	if b == nil {
		b = getBatch(si, time.Now().UnixNano())
		t.pending[si] = b
	}
	t.cur, t.key, t.at = b, key, at
	t.rec = b.addHashedKey(key, h)
	t.rec.at = at
}

// Sample adds one value of the current series; rate is its sample rate
// (the value counts 1/rate), delta says a gauge value is relative.
func (t *Batcher) Sample(typ statsd.Type, val, rate float64, delta bool) {
	t.sample(typ, val, rate, delta, false)
}

// UnscaledTimer adds one timer value of the current series sent as h or d
// (statsd.Metric.Unscaled); the flushed model.Timer says so.
func (t *Batcher) UnscaledTimer(val, rate float64) { t.sample(statsd.Timer, val, rate, false, true) }

func (t *Batcher) sample(typ statsd.Type, val, rate float64, delta, unscaled bool) {
	if t.cur == nil {
		t.SeriesAt(t.key, t.at)
	}
	rec := t.rec
	rec.typ, rec.val, rec.rate, rec.delta, rec.unscaled = typ, val, rate, delta, unscaled
	b := t.cur
	b.recs = append(b.recs, rec)
	if b.full() {
		t.next()
	}
}

// Member adds one member of the current series, a set.
func (t *Batcher) Member(member []byte, rate float64) { addSetMember(t, member, rate) }

// MemberString is Member for a member held in a string.
func (t *Batcher) MemberString(member string, rate float64) { addSetMember(t, member, rate) }

func addSetMember[T string | []byte](t *Batcher, member T, rate float64) {
	if t.cur == nil {
		t.SeriesAt(t.key, t.at)
	}
	t.rec.typ, t.rec.rate = statsd.Set, rate
	addMember(t.cur, t.rec, member)
	if t.cur.full() {
		t.next()
	}
}

// current returns the current batch and the record template of the
// current series, starting a batch if needed; push adds the record.
func (t *Batcher) current() (*Batch, record) {
	if t.cur == nil {
		t.SeriesAt(t.key, t.at)
	}
	return t.cur, t.rec
}

// push adds rec to the current batch and hands the batch over when full.
func (t *Batcher) push(rec record) {
	t.cur.recs = append(t.cur.recs, rec)
	if t.cur.full() {
		t.next()
	}
}

// next hands the current batch over, full; the current series continues in
// a new batch of the same shard at its next sample.
func (t *Batcher) next() {
	b := t.cur
	t.pending[b.shard] = nil
	if t.policy == NeverBlock {
		t.submit(context.Background(), b)
	} else {
		t.full = append(t.full, b)
	}
	t.cur = nil
}

// Send submits every batch not submitted yet and returns how many samples
// were dropped since the last Send (they are counted in
// garner_aggregator_queue_dropped_lines_total). Under Wait, ctx bounds the
// wait for full queues; under NeverBlock it is not looked at. Listeners call
// Send after every read, so that nothing waits in a Batcher for long.
func (t *Batcher) Send(ctx context.Context) int {
	for _, b := range t.full {
		t.submit(ctx, b)
	}
	clear(t.full)
	t.full = t.full[:0]
	for i, b := range t.pending {
		if b != nil {
			t.pending[i] = nil
			t.submit(ctx, b)
		}
	}
	t.cur, t.key, t.at = nil, nil, 0
	n := t.dropped
	t.dropped = 0
	return n
}

func (t *Batcher) submit(ctx context.Context, b *Batch) {
	n := b.Len()
	if !t.a.Submit(ctx, b, t.policy) {
		t.dropped += n
	}
}
