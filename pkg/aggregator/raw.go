package aggregator

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/garner-metrics/garner/pkg/metrics"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Raw series from forwarders (/v2/raw, /v3/raw) enter the shards through the
// same Router and records as statsd lines, so they aggregate exactly as if
// one host had sent every sample. Filters, tag rules and name mappings apply
// to them as to lines (gostatsd runs its filters on forwarded series too).
// What differs from HandleLine, as in gostatsd's HTTP receiver:
//   - the name is used as it is: the forwarder already applied its namespace;
//   - the source comes from the message (the forwarder's sender IP or host
//     tag); the host: tag is not looked at, whatever ignore-host says;
//   - this server's default tags are added, then tags are sorted and
//     de-duplicated as for a line. A "," inside a tag (impossible on the line
//     protocol) becomes "_", and empty tags are dropped, so the series key
//     stays unambiguous.

// RawWriter applies raw series to the shards. It is not safe for concurrent
// use: each request (goroutine) uses its own, and calls FlushWait when done.
// A RawWriter may be reused for another request after FlushWait.
type RawWriter struct {
	r     *Router
	tags  []string
	shard int       // shard of the batch last used by record
	full  []rawFull // complete batches not yet handed over
}

// rawFull is a batch that is complete but not yet handed to its shard.
type rawFull struct {
	si int
	b  *batch
}

// NewRawWriter returns a RawWriter whose drops are counted like a Router's
// (receiver=name for the per-receiver counters).
func (a *Aggregator) NewRawWriter(name string) *RawWriter {
	return &RawWriter{r: a.NewRouter(name)}
}

// Counter adds value (already divided by its sample rate) to a counter.
func (w *RawWriter) Counter(name string, tags []string, source string, value float64) {
	if math.IsNaN(value) || math.IsInf(value, 0) || !w.shape(&name, &tags, &source) {
		return
	}
	b, rec := w.record(name, tags, source, statsd.Counter)
	rec.val = value
	b.recs = append(b.recs, rec)
	w.done()
}

// Gauge sets a gauge (absolute, last write wins).
func (w *RawWriter) Gauge(name string, tags []string, source string, value float64) {
	if math.IsNaN(value) || math.IsInf(value, 0) || !w.shape(&name, &tags, &source) {
		return
	}
	b, rec := w.record(name, tags, source, statsd.Gauge)
	rec.val = value
	b.recs = append(b.recs, rec)
	w.done()
}

// Set adds members to a set (nothing without members).
func (w *RawWriter) Set(name string, tags []string, source string, members []string) {
	if len(members) == 0 || !w.shape(&name, &tags, &source) {
		return
	}
	b, rec := w.record(name, tags, source, statsd.Set)
	for _, m := range members {
		rec.moff = uint32(len(b.arena))
		rec.mlen = uint32(len(m))
		b.arena = append(b.arena, m...)
		b.recs = append(b.recs, rec)
		if len(b.recs) >= batchRecords || len(b.arena) >= batchBytes {
			// Keep batches bounded: continue in a fresh one.
			w.done()
			b, rec = w.record(name, tags, source, statsd.Set)
		}
	}
	w.done()
}

// Timer adds a timer's values. sampleCount is Σ 1/rate over the values;
// each value gets the rate len(values)/sampleCount, so the flushed count is
// sampleCount. A sampleCount that is not positive and finite counts each
// value once.
func (w *RawWriter) Timer(name string, tags []string, source string, values []float64, sampleCount float64) {
	if len(values) == 0 || !w.shape(&name, &tags, &source) {
		return
	}
	rate := 1.0
	if sampleCount > 0 && !math.IsInf(sampleCount, 0) {
		rate = float64(len(values)) / sampleCount
	}
	b, rec := w.record(name, tags, source, statsd.Timer)
	rec.rate = rate
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		rec.val = v
		b.recs = append(b.recs, rec)
		if len(b.recs) >= batchRecords {
			w.done()
			b, rec = w.record(name, tags, source, statsd.Timer)
			rec.rate = rate
		}
	}
	w.done()
}

// shape applies the filters, tag rules and name mappings to a series, as
// gostatsd applies its filters to forwarded series, and adds the default
// tags. It reports false when a filter dropped the series.
func (w *RawWriter) shape(name *string, tags *[]string, source *string) bool {
	w.r.refreshRules()
	sh := w.r.shaper
	if sh == nil {
		return true
	}
	var keep bool
	*name, *tags, *source, keep = sh.ApplyStrings(*name, *tags, *source)
	return keep
}

// record builds the series key in the pending batch of its shard and
// returns that batch with a record template pointing at the key.
func (w *RawWriter) record(name string, tags []string, source string, typ statsd.Type) (*batch, record) {
	r := w.r
	a := r.a
	key := append(r.key[:0], name...)
	nlen := len(key)
	key = append(key, 0)

	st := w.tags[:0]
	for _, t := range tags {
		if t != "" {
			st = append(st, t)
		}
	}
	if r.shaper == nil { // the shaper added them (see shape)
		st = append(st, a.opts.DefaultTags...)
	}
	st = sortDedupStrings(st)
	w.tags = st
	for i, t := range st {
		if i > 0 {
			key = append(key, ',')
		}
		start := len(key)
		key = append(key, t...)
		for j := start; j < len(key); j++ {
			if key[j] == ',' {
				key[j] = '_'
			}
		}
	}
	tlen := len(key) - nlen - 1
	key = append(key, 0)
	key = append(key, source...)
	r.key = key

	si := a.shardIndex(key) // as HandleLine: one shard per series
	b := r.pending[si]
	if b == nil {
		b = batchPool.Get().(*batch)
		b.now = time.Now().UnixNano()
		r.pending[si] = b
	}
	w.shard = si
	off := uint32(len(b.arena))
	b.arena = append(b.arena, key...)
	return b, record{off: off, klen: uint32(len(key)), nlen: uint32(nlen), tlen: uint32(tlen), rate: 1, typ: typ}
}

// done hands the batch last used by record to its shard when it is full.
// It does not block: a full queue is waited for only in FlushWait.
func (w *RawWriter) done() {
	r := w.r
	b := r.pending[w.shard]
	if b == nil || (len(b.recs) < batchRecords && len(b.arena) < batchBytes) {
		return
	}
	w.full = append(w.full, rawFull{si: w.shard, b: b})
	r.pending[w.shard] = nil
}

// FlushWait hands every batch built by the Raw* methods to its shard,
// waiting while a shard's queue is full, until ctx ends: the samples of the
// batches not handed over by then are dropped and counted in
// garner_aggregator_queue_dropped_lines_total. It returns the number of
// dropped samples. Raw series come from forwarders over HTTP, where waiting
// is the right back-pressure; statsd readers never wait (see Flush).
func (w *RawWriter) FlushWait(ctx context.Context) int {
	r := w.r
	for i, b := range r.pending {
		if b != nil {
			w.full = append(w.full, rawFull{si: i, b: b})
			r.pending[i] = nil
		}
	}
	dropped := 0
	for i, f := range w.full {
		s := r.a.shards[f.si]
		n := int64(len(f.b.recs))
		s.queued.Add(n)
		select {
		case s.in <- f.b:
		case <-ctx.Done():
			s.queued.Add(-n)
			dropped += int(n)
			putBatch(f.b)
		}
		w.full[i] = rawFull{}
	}
	w.full = w.full[:0]
	r.nDropped += uint64(dropped)
	r.Flush()
	return dropped
}

// sortDedupStrings sorts tags in place (insertion sort: few tags) and removes
// duplicates.
func sortDedupStrings(tags []string) []string {
	for i := 1; i < len(tags); i++ {
		for j := i; j > 0 && strings.Compare(tags[j], tags[j-1]) < 0; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
	out := tags[:0]
	for i, t := range tags {
		if i > 0 && t == tags[i-1] {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Event hands a forwarded event to the event sink with this server's default
// tags added, as for an event line. The source is the message's.
func (w *RawWriter) Event(e *metrics.Event) {
	a := w.r.a
	if a.events == nil {
		return
	}
	e.Tags = a.withDefaultTags(e.Tags)
	a.events.Event(e)
}

// ServiceCheck hands a forwarded service check to the event sink with this
// server's default tags added.
func (w *RawWriter) ServiceCheck(c *metrics.ServiceCheck) {
	a := w.r.a
	if a.events == nil {
		return
	}
	c.Tags = a.withDefaultTags(c.Tags)
	a.events.ServiceCheck(c)
}
