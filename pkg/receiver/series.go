//go:build linux

package receiver

import (
	"context"
	"math"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Forwarded series (/v2/raw, /v3/raw) and garner's own metrics enter the
// shards through the same hand-off, key builder and shaping as statsd lines,
// so they aggregate exactly as if one host had sent every sample. Filters,
// tag rules and name mappings apply to them as to lines (gostatsd runs its
// filters on forwarded series too). What differs from a line, as in
// gostatsd's HTTP receiver:
//   - the namespace is not added: the forwarder already applied its own;
//   - the source comes from the message (the forwarder's sender IP or host
//     tag); the host: tag is not looked at, whatever ignore-host says;
//   - the name is sanitised here, as the parser sanitises a line's; a ","
//     or \x00 inside a tag (impossible on the line protocol) becomes "_",
//     and empty tags are dropped, so the series key stays unambiguous.

// SeriesWriter applies series that arrive whole (name, tags, source and
// values) to the shards. Its batches wait for full shard queues, bounded by
// the context given to Send: the back-pressure an HTTP client understands.
// It is not safe for concurrent use: each request (goroutine) uses its own,
// and calls Send when done; it may be reused after Send.
type SeriesWriter struct {
	l      *Lines
	b      *aggregator.Batcher
	rules  *filter.Rules  // what shaper was built from
	shaper *filter.Shaper // nil without filters, tag rules or mappings
	key    []byte
	arena  []byte // the escaped tags and source
	ends   []int
	tags   [][]byte
}

// NewSeriesWriter returns a SeriesWriter.
func (l *Lines) NewSeriesWriter() *SeriesWriter {
	w := &SeriesWriter{l: l, b: l.agg.NewBatcher(aggregator.Wait)}
	w.rules = l.rules.Load()
	w.shaper = w.rules.NewShaper(nil, l.defTags)
	return w
}

// Counter adds value (already divided by its sample rate) to a counter.
// at is when the value is for (unix nanos; a past interval's end from a
// forwarder that honors timestamps), 0 = now: with timestamps = "honor"
// the value goes to that interval, as a line's |T would.
func (w *SeriesWriter) Counter(name string, tags []string, source string, value float64, at int64) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	if at, ok := w.l.forwardedTime(at); ok && w.series(name, tags, source, at) {
		w.b.Sample(statsd.Counter, value, 1, false)
	}
}

// Gauge sets a gauge (absolute, last write wins); at as for Counter.
func (w *SeriesWriter) Gauge(name string, tags []string, source string, value float64, at int64) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	if at, ok := w.l.forwardedTime(at); ok && w.series(name, tags, source, at) {
		w.b.Sample(statsd.Gauge, value, 1, false)
	}
}

// Set adds members to a set (nothing without members).
func (w *SeriesWriter) Set(name string, tags []string, source string, members []string) {
	if len(members) == 0 || !w.series(name, tags, source, 0) {
		return
	}
	for _, m := range members {
		w.b.MemberString(m, 1)
	}
}

// Timer adds a timer's values. sampleCount is Σ 1/rate over the values;
// each value gets the rate len(values)/sampleCount, so the flushed count is
// sampleCount. A sampleCount that is not positive and finite counts each
// value once.
func (w *SeriesWriter) Timer(name string, tags []string, source string, values []float64, sampleCount float64) {
	if len(values) == 0 || !w.series(name, tags, source, 0) {
		return
	}
	rate := 1.0
	if sampleCount > 0 && !math.IsInf(sampleCount, 0) {
		rate = float64(len(values)) / sampleCount
	}
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			w.b.Sample(statsd.Timer, v, rate, false)
		}
	}
}

// TimerHistogram adds a forwarded timer histogram (v3 Timer field 6) and
// reports false, adding nothing, for one that does not hold together
// (histogram.FromData's checks). sampleCount is Σ 1/rate over its values.
func (w *SeriesWriter) TimerHistogram(name string, tags []string, source string, d *histogram.Data, sampleCount float64) bool {
	if _, err := histogram.FromData(d, histogram.MaxBucketsLimit); err != nil {
		return false
	}
	if d.Count == 0 || !w.series(name, tags, source, 0) {
		return true
	}
	return w.b.Histogram(d, sampleCount) == nil
}

// SetSketch adds a forwarded set sketch (v3 Set field 5) and reports
// false, adding nothing, for one that does not hold together
// (hll.Data.Validate's checks).
func (w *SeriesWriter) SetSketch(name string, tags []string, source string, d *hll.Data) bool {
	if d.Validate() != nil {
		return false
	}
	if len(d.Registers) == 0 && len(d.Hashes) == 0 || !w.series(name, tags, source, 0) {
		return true
	}
	return w.b.Sketch(d) == nil
}

// series shapes a series and starts it in the batcher, its samples taken
// at at (0 = now); false means a filter dropped it.
func (w *SeriesWriter) series(name string, tags []string, source string, at int64) bool {
	if rules := w.l.rules.Load(); rules != w.rules {
		if w.shaper != nil {
			w.shaper.Publish()
		}
		w.rules = rules
		w.shaper = rules.NewShaper(nil, w.l.defTags)
	}
	name = statsd.SanitizeName(name)
	if w.shaper != nil { // it adds the default tags
		var keep bool
		if name, tags, source, keep = w.shaper.ApplyStrings(name, tags, source); !keep {
			return false
		}
	}
	arena, ends := w.arena[:0], w.ends[:0]
	for _, t := range tags {
		if t != "" {
			arena = aggregator.AppendTag(arena, t)
			ends = append(ends, len(arena))
		}
	}
	arena = aggregator.AppendSource(arena, source)
	views, start := w.tags[:0], 0
	for _, end := range ends {
		views = append(views, arena[start:end])
		start = end
	}
	if w.shaper == nil {
		views = append(views, w.l.defTags...)
	}
	w.key = aggregator.AppendKeyTail(append(w.key[:0], name...), views, arena[start:])
	w.arena, w.ends, w.tags = arena, ends, views[:0]
	w.b.SeriesAt(w.key, at)
	return true
}

// Send hands every series written since the last Send to the shards,
// waiting while a shard's queue is full until ctx ends: the samples not
// handed over by then are dropped and counted in
// garner_aggregator_queue_dropped_lines_total. It returns the number of
// dropped samples.
func (w *SeriesWriter) Send(ctx context.Context) int {
	dropped := w.b.Send(ctx)
	if w.shaper != nil {
		w.shaper.Publish()
	}
	return dropped
}

// Event hands a forwarded event to the event sink with this server's
// default tags added, as for an event line. The source is the message's.
func (w *SeriesWriter) Event(e *model.Event) { w.l.event(e, "") }

// ServiceCheck hands a forwarded service check to the event sink with this
// server's default tags added.
func (w *SeriesWriter) ServiceCheck(c *model.ServiceCheck) { w.l.serviceCheck(c, "") }
