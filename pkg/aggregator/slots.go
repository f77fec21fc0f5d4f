package aggregator

import (
	"time"

	"github.com/garner-metrics/garner/pkg/model"
)

// Samples that carry their own time (a DogStatsD |T timestamp with
// timestamps = "honor"): a counter's or gauge's sample whose flush interval
// was already flushed goes to that interval's slot, its own series of the
// same key, and is sent once, at the next flush, with that interval's end as
// its time (model.Counter.At). A timestamped sample of the interval being
// aggregated, or of a later one, is aggregated as any other. Timers and sets
// have no slots: the receiver hands their samples over without a time.

// TimestampSlots are the flush intervals timestamped samples go to: the
// intervals (end-Interval, end] whose ends are the multiples of Interval
// on the wall clock plus Offset, as aligned flushes are (keys
// flush-interval and flush-offset). A timestamp on an end belongs to the
// interval it ends. Interval <= 0 means 10s.
type TimestampSlots struct {
	Interval time.Duration
	Offset   time.Duration
}

// width is the length of the intervals.
func (t TimestampSlots) width() time.Duration {
	if t.Interval <= 0 {
		return 10 * time.Second
	}
	return t.Interval
}

// End is the end (unix nanoseconds) of the interval that at (unix
// nanoseconds) falls in.
func (t TimestampSlots) End(at int64) int64 {
	iv := int64(t.width())
	off := int64(t.Offset) % iv
	d := at - off
	q := d / iv
	if d%iv > 0 {
		q++
	}
	return q*iv + off
}

// slot is one past interval's counters and gauges.
type slot struct {
	counters seriesIndex[counterState]
	gauges   seriesIndex[gaugeState]
}

// slotOf is the slot of a sample taken at at, nil when at is in the
// interval being aggregated or a later one.
func (s *shard) slotOf(at int64) *slot {
	end := s.a.opts.TimestampSlots.End(at)
	if end > s.lastFlush {
		return nil
	}
	sl := s.slots[end]
	if sl == nil {
		if s.slots == nil {
			s.slots = make(map[int64]*slot)
		}
		sl = &slot{}
		s.slots[end] = sl
	}
	return sl
}

// slotCounts adds the slots' series to c.
func (s *shard) slotCounts(c *shardCounts) {
	for _, sl := range s.slots {
		c.counters += sl.counters.len()
		c.gauges += sl.gauges.len()
	}
}

// snapshotSlots writes the slots' series into f's snapshot from the offsets
// counters and gauges on, forgets them, and records now (unix nanos) as the
// end of the interval being aggregated: samples of intervals up to now
// go to slots from here on.
func (s *shard) snapshotSlots(f fillSpec, counters, gauges int, now int64) {
	secs := s.a.opts.TimestampSlots.width().Seconds()
	for end, sl := range s.slots {
		for _, c := range sl.counters.all {
			f.snap.Counters[counters] = model.Counter{Series: c.Series, Value: c.value, PerSecond: c.value / secs, At: end}
			counters++
			s.a.card.remove(c.Name)
		}
		for _, g := range sl.gauges.all {
			f.snap.Gauges[gauges] = model.Gauge{Series: g.Series, Value: g.value, At: end}
			gauges++
			s.a.card.remove(g.Name)
		}
	}
	s.slots = nil
	s.lastFlush = now
}
