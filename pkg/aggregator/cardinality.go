package aggregator

import (
	"context"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Reasons a new series is refused.
const (
	rejectMaxSeries          = "max_series"
	rejectMaxSeriesPerMetric = "max_series_per_metric"
)

// overflowSuffix names the series that takes the samples of refused series
// when cardinality-overflow is on.
const overflowSuffix = ".__overflow__"

// cardinality counts the series held across all shards and enforces
// max-series and max-series-per-metric. It is touched only when a series is
// created or deleted, never for a sample of an existing series. Safe for
// concurrent use.
//
// Series per metric name are counted only under max-series-per-metric,
// which needs them for every new series: one map entry per name, inserted
// under a lock, was the largest cost left of creating a series at 400k
// series (BENCHMARKS.md, "High cardinality on UDP"). Without the limit,
// /debug/cardinality counts the names when it is asked (Aggregator.Cardinality).
type cardinality struct {
	maxSeries, maxPerMetric int
	overflow                bool

	total atomic.Int64

	mu     sync.Mutex
	byName map[string]int // nil unless maxPerMetric > 0

	rejected map[string]prometheus.Counter
	log      *ratelog.Limiter
	logger   logrus.FieldLogger
}

func newCardinality(maxSeries, maxPerMetric int, overflow bool, log logrus.FieldLogger, reg prometheus.Registerer) *cardinality {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_series_rejected_total",
		Help: "Samples of new series refused by max-series or max-series-per-metric (folded into <name>.__overflow__ when cardinality-overflow is on).",
	}, []string{"reason"})
	reg.MustRegister(vec)
	c := &cardinality{
		maxSeries: maxSeries, maxPerMetric: maxPerMetric, overflow: overflow,
		rejected: map[string]prometheus.Counter{
			rejectMaxSeries:          vec.WithLabelValues(rejectMaxSeries),
			rejectMaxSeriesPerMetric: vec.WithLabelValues(rejectMaxSeriesPerMetric),
		},
		log: ratelog.New(1.0/60, 5), logger: log,
	}
	if maxPerMetric > 0 {
		c.byName = make(map[string]int)
	}
	return c
}

// add admits a new series of name, or says why not. An overflow series is
// exempt from the per-metric limit (there is one per name) but not from
// max-series.
func (c *cardinality) add(name string, isOverflow bool) (reason string) {
	if c.byName == nil {
		if !c.takeSeries() {
			reason = rejectMaxSeries
		}
	} else {
		// Every add takes the lock here, so the total only grows under it:
		// no series is counted and then given back, which could make
		// another shard's add see max-series reached for a moment.
		c.mu.Lock()
		switch {
		case c.maxSeries > 0 && c.total.Load() >= int64(c.maxSeries):
			reason = rejectMaxSeries
		case !isOverflow && c.byName[name] >= c.maxPerMetric:
			reason = rejectMaxSeriesPerMetric
		default:
			c.total.Add(1)
			c.byName[name]++
		}
		c.mu.Unlock()
	}
	if reason != "" {
		c.rejected[reason].Inc()
		if e := c.log.Entry(c.logger); e != nil {
			e.WithFields(logrus.Fields{"metric": name, "reason": reason}).Warn("refusing a new series: cardinality limit reached")
		}
	}
	return reason
}

// takeSeries counts one more series, unless max-series is reached
// (without max-series-per-metric: no lock).
func (c *cardinality) takeSeries() bool {
	if c.maxSeries <= 0 {
		c.total.Add(1)
		return true
	}
	for {
		n := c.total.Load()
		if n >= int64(c.maxSeries) {
			return false
		}
		if c.total.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// remove forgets one series of name.
func (c *cardinality) remove(name string) {
	c.total.Add(-1)
	if c.byName == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.byName[name] - 1; n > 0 {
		c.byName[name] = n
	} else {
		delete(c.byName, name)
	}
}

// NameCount is a metric name and how many series it has.
type NameCount struct {
	Name   string `json:"name"`
	Series int    `json:"series"`
}

// Cardinality returns the total number of series and the n names with the
// most series, most first (n <= 0: all). Under max-series-per-metric the
// names are counted as series come and go, and it answers at once.
// Otherwise every shard counts the names of its series between two
// batches, which holds up its ingestion (its queue takes what arrives
// meanwhile) for up to about 20 ms per 100k series, every series its own
// name; it returns ctx.Err() if ctx ends first. Safe for concurrent use.
func (a *Aggregator) Cardinality(ctx context.Context, n int) (int, []NameCount, error) {
	c := a.card
	var byName map[string]int
	if c.byName != nil {
		c.mu.Lock()
		byName = maps.Clone(c.byName)
		c.mu.Unlock()
	} else {
		var err error
		if byName, err = a.countNames(ctx); err != nil {
			return 0, nil, err
		}
	}
	return int(c.total.Load()), topNames(byName, n), nil
}

// topNames is the n names with the most series, most first (n <= 0: all).
// A min-heap of the n largest, so that 400k names are not sorted for 20.
func topNames(byName map[string]int, n int) []NameCount {
	less := func(x, y NameCount) bool { // x ranks below y
		if x.Series != y.Series {
			return x.Series < y.Series
		}
		return x.Name > y.Name
	}
	if n <= 0 || n > len(byName) {
		n = len(byName)
	}
	h := make([]NameCount, 0, n)
	down := func(i int) {
		for {
			m, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && less(h[l], h[m]) {
				m = l
			}
			if r < len(h) && less(h[r], h[m]) {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for name, k := range byName {
		nc := NameCount{name, k}
		switch {
		case len(h) < n:
			h = append(h, nc)
			for i := len(h) - 1; i > 0 && less(h[i], h[(i-1)/2]); i = (i - 1) / 2 {
				h[i], h[(i-1)/2] = h[(i-1)/2], h[i]
			}
		case less(h[0], nc):
			h[0] = nc
			down(0)
		}
	}
	sort.Slice(h, func(i, j int) bool { return less(h[j], h[i]) })
	return h
}

// countNames asks every shard for the series per name it holds and adds
// them up.
func (a *Aggregator) countNames(ctx context.Context) (map[string]int, error) {
	answers := make(chan map[string]int, len(a.shards)) // a shard never waits to answer
	for _, s := range a.shards {
		select {
		case s.ctl <- flushReq{names: answers}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var sum map[string]int
	for range a.shards {
		select {
		case m := <-answers:
			if sum == nil {
				sum = m
				continue
			}
			for name, k := range m {
				sum[name] += k
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return sum, nil
}

// nameCounts is the number of series per metric name the shard holds,
// those of timestamp slots included.
func (s *shard) nameCounts() map[string]int {
	n := s.counters.len() + s.gauges.len() + s.sets.len() + s.timers.len()
	m := make(map[string]int, n/4) // names usually have several series
	countNames(&s.counters, m)
	countNames(&s.gauges, m)
	countNames(&s.sets, m)
	countNames(&s.timers, m)
	for _, sl := range s.slots {
		countNames(&sl.counters, m)
		countNames(&sl.gauges, m)
	}
	return m
}

func countNames[T any](x *seriesIndex[T], m map[string]int) {
	for pos := range x.all {
		m[keyName(x.entry(pos).key)]++
	}
}

// newSeries creates the state of a sample's series, whose key is not in m
// yet, and stores it in m. When the limits refuse a new series, the sample
// goes to its name's overflow series (cardinality-overflow), or nowhere. An
// overflow series, like any series, lives in the shard its key hashes to:
// a sample for another shard's overflow series is passed on to that shard.
// nil means the sample was passed on or refused.
func newSeries[T any](s *shard, m *seriesIndex[T], key []byte, rec *record, mk func(model.Series) T) *T {
	card := s.a.card
	k := string(key) // the name in the cardinality index shares its bytes
	name := keyName(k)
	reason := card.add(name, strings.HasSuffix(name, overflowSuffix))
	if reason == "" {
		v := m.add(k, rec.hash)
		*v = mk(seriesOf(k))
		return v
	}
	if !card.overflow || reason == rejectMaxSeries {
		return nil
	}
	// name.__overflow__, no tags, no source
	ok := append(append(s.scratch[:0], name...), overflowSuffix...)
	ok = AppendKeyTail(ok, nil, nil)
	s.scratch = ok
	h := s.a.hash(ok)
	if owner := s.a.shards[s.a.shardFor(h)]; owner != s {
		s.passOn(owner, ok, h, rec)
		return nil
	}
	if v := m.get(ok, h); v != nil {
		return v
	}
	ko := string(ok)
	if card.add(keyName(ko), true) != "" {
		return nil
	}
	v := m.add(ko, h)
	*v = mk(seriesOf(ko))
	return v
}

// passOn queues a sample for another shard; it is submitted at the end of
// the current batch (sendPassed). h is key's hash.
func (s *shard) passOn(to *shard, key []byte, h uint64, rec *record) {
	if s.passed == nil {
		s.passed = make(map[*shard]*Batch)
	}
	b := s.passed[to]
	if b == nil {
		b = getBatch(to.idx, s.now)
		s.passed[to] = b
	}
	r := b.addHashedKey(key, h)
	r.val, r.rate, r.typ, r.delta, r.at = rec.val, rec.rate, rec.typ, rec.delta, rec.at
	if rec.typ == statsd.Set && rec.hist == 0 {
		addMember(b, r, s.member)
		return
	}
	if rec.typ == statsd.Set { // a forwarded sketch goes along
		b.sketches = append(b.sketches, s.sketches[rec.hist-1])
		r.hist = uint32(len(b.sketches))
	} else if rec.hist != 0 { // a forwarded histogram goes along
		b.hists = append(b.hists, s.hists[rec.hist-1])
		r.hist = uint32(len(b.hists))
	}
	b.recs = append(b.recs, r)
}

// sendPassed submits the passed-on samples without blocking: two shards
// waiting for each other's queue would deadlock. A full queue drops them,
// counted like any queue drop.
func (s *shard) sendPassed() {
	for to, b := range s.passed {
		delete(s.passed, to)
		s.a.Submit(context.Background(), b, NeverBlock)
	}
}
