package aggregator

import (
	"context"
	"sort"
	"strings"
	"sync"

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

// cardinality counts series per metric name across all shards and enforces
// max-series and max-series-per-metric. It is touched only when a series is
// created or deleted, never for a sample of an existing series. Safe for
// concurrent use.
type cardinality struct {
	maxSeries, maxPerMetric int
	overflow                bool

	mu     sync.Mutex
	total  int
	byName map[string]int

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
	return &cardinality{
		maxSeries: maxSeries, maxPerMetric: maxPerMetric, overflow: overflow,
		byName: make(map[string]int),
		rejected: map[string]prometheus.Counter{
			rejectMaxSeries:          vec.WithLabelValues(rejectMaxSeries),
			rejectMaxSeriesPerMetric: vec.WithLabelValues(rejectMaxSeriesPerMetric),
		},
		log: ratelog.New(1.0/60, 5), logger: log,
	}
}

// add admits a new series of name, or says why not. An overflow series is
// exempt from the per-metric limit (there is one per name) but not from
// max-series.
func (c *cardinality) add(name string, isOverflow bool) (reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxSeries > 0 && c.total >= c.maxSeries {
		reason = rejectMaxSeries
	} else if !isOverflow && c.maxPerMetric > 0 && c.byName[name] >= c.maxPerMetric {
		reason = rejectMaxSeriesPerMetric
	}
	if reason != "" {
		c.rejected[reason].Inc()
		if e := c.log.Entry(c.logger); e != nil {
			e.WithFields(logrus.Fields{"metric": name, "reason": reason}).Warn("refusing a new series: cardinality limit reached")
		}
		return reason
	}
	c.total++
	c.byName[name]++
	return ""
}

// remove forgets one series of name.
func (c *cardinality) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
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
// most series, most first. Safe for concurrent use.
func (a *Aggregator) Cardinality(n int) (int, []NameCount) {
	c := a.card
	c.mu.Lock()
	out := make([]NameCount, 0, len(c.byName))
	for name, k := range c.byName {
		out = append(out, NameCount{name, k})
	}
	total := c.total
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Series != out[j].Series {
			return out[i].Series > out[j].Series
		}
		return out[i].Name < out[j].Name
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return total, out
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
