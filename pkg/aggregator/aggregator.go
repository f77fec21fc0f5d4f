// Package aggregator holds garner's in-memory state: N shards, each one
// goroutine that owns the series maps of its share of the series keys.
//
// Readers parse lines with a Router (one per reading goroutine), which routes
// each sample by the hash of its series key to a shard, in batches of small
// fixed-size records handed over bounded queues. A full queue drops the batch
// and counts it; a reader never blocks on a shard. Flush asks every shard for
// its aggregates and resets them.
package aggregator

import (
	"context"
	"hash/maphash"
	"math"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/metrics"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Expiry holds the idle expiry interval per type: 0 = never, negative = every flush.
type Expiry struct {
	Counter, Gauge, Set, Timer time.Duration
}

// Options configures an Aggregator.
type Options struct {
	Shards            int       // number of shards (goroutines); at least 1
	QueueLines        int       // samples queued per shard before drops
	PercentThresholds []float64 // timer percentiles
	Expiry            Expiry
	IgnoreHost        bool     // the host: tag is the source instead of the sender IP
	Namespace         string   // prefix of every name, without the dot
	DefaultTags       []string // added to every metric and event
	GaugeDeltas       bool     // +N / -N on a gauge is relative
	HistogramLimit    int      // most buckets per gsd_histogram tag
	Disabled          metrics.SubMetrics
	BadLinesPerMinute float64 // rate limit of the bad-line log (burst 10)
	MaxSeries         int     // series in all; 0 = unlimited
	MaxSeriesPerName  int     // series (tag sets × sources) of one metric name; 0 = unlimited
	Overflow          bool    // fold refused series into <name>.__overflow__

	// Limits bounds what one statsd line may carry: tags, tag length,
	// packed values (zero fields = the parser's defaults).
	Limits statsd.Limits

	// Rules shape every line and forwarded series before aggregation:
	// filters, tag rules and name mappings (package filter). nil = none.
	Rules *filter.Rules
}

// EventSink receives events and service checks as they are parsed. It must
// not block: a full queue drops and counts.
type EventSink interface {
	Event(e *metrics.Event)
	ServiceCheck(c *metrics.ServiceCheck)
}

// Aggregator is the set of shards. Routers feed it; Flush drains it. Flush and
// NewRouter are safe for concurrent use.
type Aggregator struct {
	opts     Options
	log      logrus.FieldLogger
	seed     maphash.Seed
	shards   []*shard
	pcts     []pct
	defTags  [][]byte
	ns       []byte
	events   EventSink
	m        *aggMetrics
	badLog   *limiter
	card     *cardinality
	bad      badLines
	rules    atomic.Pointer[filter.Rules] // swapped by SetRules (SIGHUP)
	started  time.Time
	lastMu   sync.Mutex
	lastTime time.Time
	running  atomic.Int32 // shard goroutines running (health.go)
}

type aggMetrics struct {
	queueDropped prometheus.Counter
	flushGC      prometheus.Counter
	series       *prometheus.GaugeVec
	receiver     receiverMetrics
}

// New builds an aggregator; Run must be running for Flush to answer.
func New(opts Options, events EventSink, log logrus.FieldLogger, reg prometheus.Registerer) *Aggregator {
	if opts.Shards < 1 {
		opts.Shards = 1
	}
	if opts.QueueLines < batchRecords {
		opts.QueueLines = batchRecords
	}
	a := &Aggregator{
		opts:     opts,
		log:      log,
		seed:     maphash.MakeSeed(),
		events:   events,
		badLog:   newLimiter(opts.BadLinesPerMinute/60, 10),
		started:  time.Now(),
		lastTime: time.Now(),
	}
	if opts.Namespace != "" {
		a.ns = []byte(opts.Namespace + ".")
	}
	for _, t := range opts.DefaultTags {
		a.defTags = append(a.defTags, []byte(t))
	}
	for _, p := range opts.PercentThresholds {
		a.pcts = append(a.pcts, newPct(p))
	}
	a.m = &aggMetrics{
		queueDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "garner_aggregator_queue_dropped_lines_total",
			Help: "Samples dropped because a shard's queue was full (max-queue-size).",
		}),
		flushGC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "garner_aggregator_flush_gc_total",
			Help: "Garbage collections run just before a flush, because allocating its snapshot would have started one with the snapshot counted as live.",
		}),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "garner_aggregator_series",
			Help: "Series held at the last flush, by type.",
		}, []string{"type"}),
		receiver: newReceiverMetrics(),
	}
	reg.MustRegister(a.m.queueDropped, a.m.flushGC, a.m.series)
	a.m.receiver.register(reg)
	a.rules.Store(opts.Rules)
	a.card = newCardinality(opts.MaxSeries, opts.MaxSeriesPerName, opts.Overflow, log, reg)
	for i := 0; i < opts.Shards; i++ {
		a.shards = append(a.shards, newShard(a, i, opts.QueueLines))
	}
	return a
}

// Run runs the shards until ctx is cancelled and returns when they have all
// stopped. Cancel it only after the final Flush: samples still queued then
// are lost.
func (a *Aggregator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range a.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.running.Add(1)
			defer a.running.Add(-1)
			s.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Flush collects every shard's aggregates since the previous flush and resets
// them. Samples queued before Flush was called are included. It returns
// ctx.Err() if ctx ends before every shard answered.
func (a *Aggregator) Flush(ctx context.Context, now time.Time) (*metrics.Snapshot, error) {
	a.lastMu.Lock()
	interval := now.Sub(a.lastTime)
	if interval <= 0 {
		interval = time.Millisecond
	}
	a.lastTime = now
	a.lastMu.Unlock()

	// Phase 1: every shard applies what is queued (samples passed between
	// shards included). Without this barrier a shard could expire series,
	// freeing cardinality slots, before another applied samples that arrived
	// earlier.
	n := len(a.shards)
	sizes := make(chan shardCounts, n)
	drain := flushReq{drainOnly: true, counts: sizes}
	for _, s := range a.shards {
		select {
		case s.ctl <- drain:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var est shardCounts
	for range a.shards {
		select {
		case c := <-sizes:
			est.add(c)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if collectFirst(est.bytes()) {
		a.m.flushGC.Inc()
	}

	// Phase 2: every shard says how many series it has and waits; the
	// snapshot is allocated once at its full size; every shard writes its
	// series into its own range of it. No per-shard snapshot is built and
	// copied: at 1M series that copy was as big as the snapshot.
	counts := make(chan shardCounts, n)
	done := make(chan struct{}, n)
	abort := make(chan struct{})
	req := flushReq{now: now, interval: interval, counts: counts, abort: abort, done: done, fill: make([]chan fillSpec, n)}
	for i := range req.fill {
		req.fill[i] = make(chan fillSpec, 1)
	}
	filling := false
	defer func() {
		if !filling {
			close(abort) // shards waiting for their place keep their state
		}
	}()
	for _, s := range a.shards {
		select {
		case s.ctl <- req:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	per := make([]shardCounts, n)
	var total shardCounts
	for range a.shards {
		select {
		case c := <-counts:
			per[c.shard] = c
			total.add(c)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	snap := &metrics.Snapshot{Time: now, Interval: interval, Disabled: a.opts.Disabled,
		Counters: make([]metrics.Counter, total.counters),
		Gauges:   make([]metrics.Gauge, total.gauges),
		Sets:     make([]metrics.Set, total.sets),
		Timers:   make([]metrics.Timer, total.timers),
	}
	var pcts []metrics.Percentile
	if total.pctsMax > 0 {
		pcts = make([]metrics.Percentile, total.pctsMax)
	}
	var off shardCounts
	for i, c := range per {
		req.fill[i] <- fillSpec{snap: snap, counters: off.counters, gauges: off.gauges, sets: off.sets, timers: off.timers,
			pcts: pcts[off.pctsMax : off.pctsMax : off.pctsMax+c.pctsMax]}
		off.add(c)
	}
	filling = true
	// Every shard has its place and resets its state as it writes it: a
	// flush that ends here by ctx loses this interval, as before the fill.
	if err := waitN(ctx, done, n); err != nil {
		return nil, err
	}
	a.m.series.WithLabelValues("counter").Set(float64(total.counters))
	a.m.series.WithLabelValues("gauge").Set(float64(total.gauges))
	a.m.series.WithLabelValues("set").Set(float64(total.sets))
	a.m.series.WithLabelValues("timer").Set(float64(total.timers))
	return snap, nil
}

func (c *shardCounts) add(o shardCounts) {
	c.counters += o.counters
	c.gauges += o.gauges
	c.sets += o.sets
	c.timers += o.timers
	c.pctsMax += o.pctsMax
}

// bytes estimates what a snapshot of these counts allocates.
func (c *shardCounts) bytes() uint64 {
	return uint64(c.counters)*uint64(unsafe.Sizeof(metrics.Counter{})) +
		uint64(c.gauges)*uint64(unsafe.Sizeof(metrics.Gauge{})) +
		uint64(c.sets)*uint64(unsafe.Sizeof(metrics.Set{})) +
		uint64(c.timers)*uint64(unsafe.Sizeof(metrics.Timer{})) +
		uint64(c.pctsMax)*uint64(unsafe.Sizeof(metrics.Percentile{}))
}

// minCollectFirst is the smallest snapshot worth a collection before it.
const minCollectFirst = 8 << 20

// collectFirst runs a garbage collection now, before a snapshot of need
// bytes is allocated, when that allocation would start one anyway; it
// reports whether it did. A collection that starts while the snapshot is
// being built or sent counts the snapshot as live and sets the next heap
// goal to twice series state plus snapshot; one just before it sets the
// goal from the series state alone, and the snapshot, garbage once the
// backends are done with it, fits under that goal. At 400k series this
// is the difference between ~2 × 180 MB and ~2 × 100 MB of heap. It does
// not add collections: it runs one a moment earlier than the allocation
// would have. The trigger is taken at its earliest, 70% of the way from
// the live heap to the goal, as the runtime's pacer places it.
func collectFirst(need uint64) bool {
	if need < minCollectFirst {
		return false
	}
	s := []rtmetrics.Sample{
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	rtmetrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != rtmetrics.KindUint64 {
			return false
		}
	}
	goal, live, heap := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	if goal <= live || heap+need < live+(goal-live)*7/10 {
		return false
	}
	runtime.GC()
	return true
}

// waitN receives n signals from done, or returns ctx.Err().
func waitN(ctx context.Context, done <-chan struct{}, n int) error {
	for range n {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// SetRules replaces the filters, tag rules and name mappings. Every Router
// picks the new rules up after its current read (at its next Flush). Safe
// for concurrent use.
func (a *Aggregator) SetRules(r *filter.Rules) { a.rules.Store(r) }

// shardIndex is the shard that owns a series key.
func (a *Aggregator) shardIndex(key []byte) int {
	if len(a.shards) == 1 {
		return 0
	}
	return int(maphash.Bytes(a.seed, key) % uint64(len(a.shards)))
}

func (a *Aggregator) shardOf(key []byte) *shard { return a.shards[a.shardIndex(key)] }

// QueuedLines is the number of samples waiting in the shards' queues.
func (a *Aggregator) QueuedLines() int64 {
	var n int64
	for _, s := range a.shards {
		n += s.queued.Load()
	}
	return n
}

// pct is one percent-threshold with its sub-metric names computed once.
type pct struct {
	p                                   float64
	count, mean, sum, sumSquares, bound string
}

func newPct(p float64) pct {
	s := strings.ReplaceAll(strconv.FormatFloat(p, 'f', -1, 64), ".", "_")
	b := "upper_" + s
	if p < 0 {
		b = "lower_" + s
	}
	return pct{p: p, count: "count_" + s, mean: "mean_" + s, sum: "sum_" + s, sumSquares: "sum_squares_" + s, bound: b}
}

// limiter is a token bucket for log lines; safe for concurrent use.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	// suppressed counts events refused since the last allowed one.
	suppressed atomic.Int64
}

func newLimiter(perSecond, burst float64) *limiter {
	return &limiter{rate: perSecond, burst: burst, tokens: burst, last: time.Now()}
}

// allow reports whether one more event may be logged now, and how many were
// suppressed since the last allowed one.
func (l *limiter) allow() (bool, int64) {
	if l.rate <= 0 {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = math.Min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		l.suppressed.Add(1)
		return false, 0
	}
	l.tokens--
	return true, l.suppressed.Swap(0)
}

// withDefaultTags returns tags with the default tags added, without duplicates.
func (a *Aggregator) withDefaultTags(tags []string) []string {
	for _, d := range a.opts.DefaultTags {
		dup := false
		for _, t := range tags {
			if t == d {
				dup = true
				break
			}
		}
		if !dup {
			tags = append(tags, d)
		}
	}
	return tags
}
