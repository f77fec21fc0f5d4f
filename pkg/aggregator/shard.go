package aggregator

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// flushReq asks a shard for one phase of a flush. Phase 1 (drainOnly): apply
// what is queued and send its sizes (an estimate of its counts). Phase 2:
// send its counts, wait for its place in the snapshot (fill) and write its
// series there, then signal done; or, on abort, keep its state for the next
// flush.
type flushReq struct {
	drainOnly bool
	now       time.Time
	interval  time.Duration
	counts    chan<- shardCounts
	fill      []chan fillSpec // by shard index, buffered
	abort     <-chan struct{} // closed when the flush gives up before fill
	done      chan<- struct{}
	names     chan<- map[string]int // set: count names only (Aggregator.Cardinality)
}

// shardCounts is how many entries a shard will write into a snapshot.
type shardCounts struct {
	shard                 int
	counters, gauges      int
	sets, timers, pctsMax int // pctsMax: percentiles at most
}

// fillSpec is where a shard writes its series: the snapshot's slices from
// these offsets on, and pcts (len 0, capacity its pctsMax) for its timers'
// percentiles.
type fillSpec struct {
	snap                           *model.Snapshot
	counters, gauges, sets, timers int
	pcts                           []model.Percentile
}

type counterState struct {
	model.Series
	value float64
	seen  int64
}

type gaugeState struct {
	model.Series
	value float64
	seen  int64
}

type setState struct {
	model.Series
	members map[string]struct{}
	sketch  *hll.Sketch // set-aggregation = "hll", or a forwarded sketch (hllset.go); nil = none this interval
	seen    int64
}

type timerState struct {
	model.Series
	values  []float64
	sampled float64
	hist    *[]float64           // gsd_histogram bucket bounds; nil = plain timer
	exp     *histogram.Histogram // timer-aggregation = "histogram" (histtimer.go); nil = none this interval
	seen    int64
	lastN   int32 // values in the last interval (capped): the capacity of the next one
	// unscaled: the last value came as h or d, not ms (model.Timer.Unscaled).
	unscaled bool
}

// shard owns a share of the series. Only its goroutine touches the maps.
type shard struct {
	a      *Aggregator
	idx    int // in a.shards
	in     chan *Batch
	ctl    chan flushReq
	queued atomic.Int64 // samples in batches sent to in and not yet applied
	limit  int

	// Submit under Wait (handoff.go): callers waiting for room, and the
	// channel closed (and replaced) when a batch was applied.
	waiters atomic.Int32
	room    atomic.Pointer[chan struct{}]

	counters seriesIndex[counterState]
	gauges   seriesIndex[gaugeState]
	sets     seriesIndex[setState]
	timers   seriesIndex[timerState]

	// timestamped samples of past intervals (slots.go), by interval end;
	// lastFlush (unix nanos) is the time of the last snapshot
	slots     map[int64]*slot
	lastFlush int64

	// flush scratch, reused from flush to flush
	cum, cumSq []float64

	// cardinality overflow (cardinality.go)
	scratch  []byte                 // overflow keys
	passed   map[*shard]*Batch      // samples for other shards' overflow series
	now      int64                  // arrival time of the batch being applied
	member   []byte                 // set member of the sample being applied
	hists    []*histogram.Histogram // forwarded histograms of the batch being applied
	sketches []*hll.Sketch          // forwarded set sketches of the batch being applied

	sink uint64 // what prefetch read, kept so that its reads are not optimised away
}

// maxValuesHint bounds the capacity a timer's values start an interval with,
// so that one burst does not make every later interval allocate as much.
const maxValuesHint = 256

// noMembers is the Members of a set that saw nothing this interval; it is
// never written to.
var noMembers = map[string]struct{}{}

func newShard(a *Aggregator, idx, maxQueued int) *shard {
	s := &shard{
		a:     a,
		idx:   idx,
		in:    make(chan *Batch, maxQueued/16+16),
		ctl:   make(chan flushReq),
		limit: maxQueued,

		lastFlush: a.started.UnixNano(),
	}
	room := make(chan struct{})
	s.room.Store(&room)
	return s
}

func (s *shard) run(ctx context.Context) {
	for {
		select {
		case b := <-s.in:
			s.apply(b)
		case req := <-s.ctl:
			s.drain()
			if req.names != nil {
				req.names <- s.nameCounts()
				continue
			}
			if req.drainOnly {
				req.counts <- s.sizes()
				continue
			}
			// Nothing is applied between the counts and the fill: the
			// counts stay exact.
			req.counts <- s.counts()
			select {
			case f := <-req.fill[s.idx]:
				s.snapshot(req, f)
				req.done <- struct{}{}
			case <-req.abort:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// drain applies what is queued now, so that a flush includes every sample
// that was handed over before it was asked for.
func (s *shard) drain() {
	for n := len(s.in); n > 0; n-- {
		s.apply(<-s.in)
	}
}

func (s *shard) apply(b *Batch) {
	s.now, s.hists, s.sketches = b.now, b.hists, b.sketches
	s.prefetch(b.recs)
	for i := range b.recs {
		rec := &b.recs[i]
		key := b.arena[rec.off : rec.off+rec.klen]
		if rec.typ == statsd.Set {
			s.member = b.arena[rec.moff : rec.moff+rec.mlen]
		}
		switch rec.typ {
		case statsd.Counter:
			m := &s.counters
			if rec.at != 0 {
				if sl := s.slotOf(rec.at); sl != nil {
					m = &sl.counters
				}
			}
			c := m.get(key, rec.hash)
			if c == nil {
				if c = newSeries(s, m, key, rec, newCounterState); c == nil {
					continue
				}
			}
			c.value += rec.val / rec.rate
			c.seen = b.now
		case statsd.Gauge:
			m := &s.gauges
			if rec.at != 0 {
				if sl := s.slotOf(rec.at); sl != nil {
					m = &sl.gauges
				}
			}
			g := m.get(key, rec.hash)
			if g == nil {
				if g = newSeries(s, m, key, rec, newGaugeState); g == nil {
					continue
				}
			}
			if rec.delta {
				g.value += rec.val
			} else {
				g.value = rec.val
			}
			g.seen = b.now
		case statsd.Timer:
			t := s.timers.get(key, rec.hash)
			if t == nil {
				if t = newSeries(s, &s.timers, key, rec, s.newTimerState); t == nil {
					continue
				}
			}
			t.seen, t.unscaled = b.now, rec.unscaled
			if rec.hist != 0 || s.a.opts.TimerAggregation == TimerHistogram && t.hist == nil {
				s.applyHistogram(t, b, rec)
				continue
			}
			if t.values == nil {
				// Sized like the last interval's: no growth on the way.
				t.values = make([]float64, 0, max(int(t.lastN), 1))
			}
			t.values = append(t.values, rec.val)
			t.sampled += 1 / rec.rate
		case statsd.Set:
			st := s.sets.get(key, rec.hash)
			if st == nil {
				if st = newSeries(s, &s.sets, key, rec, newSetState); st == nil {
					continue
				}
			}
			st.seen = b.now
			if rec.hist != 0 || st.sketch != nil || s.a.opts.SetAggregation == SetHLL {
				s.applySketch(st, b, rec)
				continue
			}
			if st.members == nil {
				st.members = make(map[string]struct{})
			}
			m := b.arena[rec.moff : rec.moff+rec.mlen]
			if _, ok := st.members[string(m)]; !ok {
				st.members[string(m)] = struct{}{}
			}
		}
	}
	s.queued.Add(-int64(len(b.recs)))
	s.hists, s.sketches = nil, nil
	putBatch(b)
	s.signalRoom()
	if len(s.passed) > 0 {
		s.sendPassed()
	}
}

// prefetch reads the home slot of every record's lookup, reads that do not
// depend on each other, so that their cache misses overlap, before apply's
// lookups read them again one after the other.
func (s *shard) prefetch(recs []record) {
	var sink uint64
	for i := range recs {
		rec := &recs[i]
		switch rec.typ {
		case statsd.Counter:
			sink += s.counters.firstSlot(rec.hash)
		case statsd.Gauge:
			sink += s.gauges.firstSlot(rec.hash)
		case statsd.Timer:
			sink += s.timers.firstSlot(rec.hash)
		case statsd.Set:
			sink += s.sets.firstSlot(rec.hash)
		}
	}
	s.sink = sink
}

func newCounterState(se model.Series) counterState { return counterState{Series: se} }
func newGaugeState(se model.Series) gaugeState     { return gaugeState{Series: se} }
func newSetState(se model.Series) setState         { return setState{Series: se} }

func (s *shard) newTimerState(se model.Series) timerState {
	t := timerState{Series: se}
	if bounds, ok := histogramBounds(se.Tags, s.a.opts.HistogramLimit); ok {
		t.hist = &bounds
	}
	return t
}

const histogramTag = "gsd_histogram:"

// histogramBounds parses gsd_histogram:5_10_20 (bounds that do not parse
// are skipped, as gostatsd does) and keeps at most limit of them.
func histogramBounds(tags []string, limit int) ([]float64, bool) {
	for _, t := range tags {
		if !strings.HasPrefix(t, histogramTag) {
			continue
		}
		var bounds []float64
		for _, p := range strings.Split(t[len(histogramTag):], "_") {
			if f, err := strconv.ParseFloat(p, 64); err == nil && !math.IsNaN(f) && len(bounds) < limit {
				bounds = append(bounds, f)
			}
		}
		return bounds, true
	}
	return nil, false
}

// expired says whether a series last seen at seen is dropped at the flush
// at now: never for 0, always for a negative expiry (every flush, whatever
// the clocks of its samples), else once idle longer than exp.
func expired(exp time.Duration, now, seen int64) bool {
	return exp < 0 || exp > 0 && time.Duration(now-seen) > exp
}

// sizes is counts without the walk over the timers: every timer counted
// with its percentiles.
func (s *shard) sizes() shardCounts {
	c := shardCounts{shard: s.idx, counters: s.counters.len(), gauges: s.gauges.len(),
		sets: s.sets.len(), timers: s.timers.len(), pctsMax: 5 * len(s.a.pcts) * s.timers.len()}
	s.slotCounts(&c)
	return c
}

// counts says how many series the shard holds, and at most how many
// percentiles its timers will have.
func (s *shard) counts() shardCounts {
	npct := 0
	for _, t := range s.timers.all {
		if (len(t.values) > 0 || t.exp != nil) && t.hist == nil {
			npct += 5 * len(s.a.pcts)
		}
	}
	c := shardCounts{shard: s.idx, counters: s.counters.len(), gauges: s.gauges.len(),
		sets: s.sets.len(), timers: s.timers.len(), pctsMax: npct}
	s.slotCounts(&c)
	return c
}

// snapshot writes every series at f's offsets in f's snapshot, then resets
// per-interval state and deletes series idle longer than their expiry. The
// series are those counts saw.
func (s *shard) snapshot(req flushReq, f fillSpec) {
	now := req.now.UnixNano()
	secs := req.interval.Seconds()
	exp := s.a.opts.Expiry
	i := f.counters
	for k, c := range s.counters.all {
		f.snap.Counters[i] = model.Counter{Series: c.Series, Value: c.value, PerSecond: c.value / secs}
		i++
		c.value = 0
		if expired(exp.Counter, now, c.seen) {
			s.a.card.remove(c.Name) // before del, which zeroes c
			s.counters.del(k)
		}
	}
	slotCounters := i
	i = f.gauges
	for k, g := range s.gauges.all {
		f.snap.Gauges[i] = model.Gauge{Series: g.Series, Value: g.value}
		i++
		if expired(exp.Gauge, now, g.seen) {
			s.a.card.remove(g.Name) // before del, which zeroes g
			s.gauges.del(k)
		}
	}
	s.snapshotSlots(f, slotCounters, i, now)
	i = f.sets
	for k, st := range s.sets.all {
		members := st.members
		if members == nil {
			members = noMembers
		}
		f.snap.Sets[i] = model.Set{Series: st.Series, Members: members}
		if st.sketch != nil {
			f.snap.Sets[i].Sketch, f.snap.Sets[i].Estimate = st.sketch, st.sketch.Estimate()
		}
		i++
		// Handed over; allocated again by the next sample, during the
		// interval: allocating it here would add to what a flush allocates
		// at once (see collectFirst).
		st.members, st.sketch = nil, nil
		if expired(exp.Set, now, st.seen) {
			s.a.card.remove(st.Name) // before del, which zeroes st
			s.sets.del(k)
		}
	}
	// The percentiles of all timers share f.pcts.
	pctBuf := f.pcts
	i = f.timers
	for k, t := range s.timers.all {
		f.snap.Timers[i], pctBuf = s.timerAggregate(t, secs, pctBuf)
		i++
		t.lastN = int32(min(len(t.values), maxValuesHint))
		t.values, t.exp = nil, nil // handed over; allocated again by the next sample
		t.sampled = 0
		if expired(exp.Timer, now, t.seen) {
			s.a.card.remove(t.Name) // before del, which zeroes t
			s.timers.del(k)
		}
	}
}

// timerAggregate computes a timer's statistics as gostatsd does, minus its
// crash on negative percentiles. It hands t.values over to the result and
// appends the percentiles to pctBuf, which it returns.
func (s *shard) timerAggregate(t *timerState, secs float64, pctBuf []model.Percentile) (model.Timer, []model.Percentile) {
	if t.exp != nil {
		return s.histogramAggregate(t, secs, pctBuf)
	}
	vals := t.values
	out := model.Timer{Series: t.Series, Values: vals, SampledCount: t.sampled, Unscaled: t.unscaled}
	if t.hist != nil {
		bounds := *t.hist
		out.Histogram = make([]model.Bucket, 0, len(bounds)+1)
		for _, b := range bounds {
			var n uint64
			for _, v := range vals {
				if v <= b {
					n++
				}
			}
			out.Histogram = append(out.Histogram, model.Bucket{Le: b, Count: n})
		}
		out.Histogram = append(out.Histogram, model.Bucket{Le: math.Inf(1), Count: uint64(len(vals))})
		return out, pctBuf
	}
	n := len(vals)
	if n == 0 {
		return out, pctBuf
	}
	slices.Sort(vals)
	out.Count = math.Floor(t.sampled + 0.5)
	out.PerSecond = t.sampled / secs
	out.Lower, out.Upper = vals[0], vals[n-1]

	// cumulative sums, for the percentiles
	var sum, sumSq float64
	if cap(s.cum) < n {
		s.cum, s.cumSq = make([]float64, n), make([]float64, n)
	}
	cum, cumSq := s.cum[:n], s.cumSq[:n]
	for i, v := range vals {
		sum += v
		sumSq += v * v
		cum[i], cumSq[i] = sum, sumSq
	}
	dis := s.a.opts.DisabledSubMetrics
	count := float64(n)
	first := len(pctBuf)
	for _, p := range s.a.pcts {
		k := n
		pSum, pSumSq, bound := sum, sumSq, vals[n-1]
		if n > 1 {
			k = int(math.Floor(math.Abs(p.p)/100*count + 0.5))
			if k == 0 {
				continue
			}
			if p.p > 0 {
				bound, pSum, pSumSq = vals[k-1], cum[k-1], cumSq[k-1]
			} else {
				bound = vals[n-k]
				pSum, pSumSq = sum, sumSq
				if n-k-1 >= 0 {
					pSum -= cum[n-k-1]
					pSumSq -= cumSq[n-k-1]
				}
			}
		} else if p.p < 0 {
			bound = vals[0]
		}
		pctBuf = appendPct(pctBuf, dis, &p, k, pSum, pSumSq, bound)
	}
	if len(pctBuf) > first {
		out.Percentiles = pctBuf[first:len(pctBuf):len(pctBuf)]
	}
	mean := sum / count
	var diffs float64
	for _, v := range vals {
		diffs += (v - mean) * (v - mean)
	}
	if n%2 == 0 {
		out.Median = (vals[n/2-1] + vals[n/2]) / 2
	} else {
		out.Median = vals[n/2]
	}
	out.Mean = mean
	out.Std = math.Sqrt(diffs / count)
	out.Sum = sum
	out.SumSquares = sumSq
	return out, pctBuf
}
