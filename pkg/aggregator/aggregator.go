// Package aggregator holds garner's in-memory state: N shards, each one
// goroutine that owns the series maps of its share of the series keys, with
// expiry, cardinality limits and snapshots.
//
// Samples come in through one hand-off (handoff.go): a Batcher groups them,
// by the hash of their SeriesKey, into a Batch per shard, and Submit hands a
// batch over a bounded queue under an explicit Policy — never block (drop and
// count) for statsd listeners and for samples shards pass on to each other,
// wait bounded by a context for HTTP ingestion. Snapshot asks every shard for
// its aggregates and resets them. What a line or a forwarded series becomes
// (parsing, shaping, the host, the key) is package receiver's business.
package aggregator

import (
	"context"
	"hash/maphash"
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

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
)

// Expiry holds the idle expiry interval per type (keys expiry-interval and
// expiry-interval-<type>): a series idle longer is deleted at a flush.
// 0 = never, negative = after every flush.
type Expiry struct {
	Counter, Gauge, Set, Timer time.Duration
}

// Options configures an Aggregator. Each field names its config key; the
// zero value of a field means what its comment says, not its default:
// start from DefaultOptions.
type Options struct {
	// Shards is the number of shards, one goroutine each (key max-workers).
	// Less than 1 means 1. Default: the number of CPUs.
	Shards int
	// MaxQueuedSamples is how many samples may wait in one shard's queue
	// (key max-queue-size); a batch that would go over it is dropped and
	// counted, or waited for (Policy). Less than one batch (512) means 512.
	// Default 262144.
	MaxQueuedSamples int
	// PercentThresholds are the timer percentiles (key percent-threshold);
	// negative ones count from the top. Default [90].
	PercentThresholds []float64
	// Expiry is the idle expiry per type. Default 5m for every type.
	Expiry Expiry
	// HistogramLimit is the most buckets one gsd_histogram tag gets (key
	// histogram-limit); 0 = none. Default 64.
	HistogramLimit int
	// DisabledSubMetrics are the timer aggregates not emitted (keys
	// disabled-sub-metrics.*). Default none.
	DisabledSubMetrics model.SubMetrics
	// MaxSeries bounds the series held at once, all types (key max-series);
	// 0 = unlimited, the default.
	MaxSeries int
	// MaxSeriesPerMetric bounds the series (tag sets × sources) of one
	// metric name (key max-series-per-metric); 0 = unlimited, the default.
	MaxSeriesPerMetric int
	// CardinalityOverflow folds the samples of series refused by
	// MaxSeriesPerMetric into <name>.__overflow__ (key
	// cardinality-overflow). Default false.
	CardinalityOverflow bool
	// TimerAggregation is what a timer series keeps over an interval (key
	// timer-aggregation): every value (TimerExact, the zero value and the
	// default) or an exponential histogram (TimerHistogram; histtimer.go).
	TimerAggregation TimerAggregation
	// HistogramMaxBuckets bounds the buckets per range (positive values,
	// negative values) of a timer's exponential histogram (key
	// histogram-max-buckets); the scale drops to stay within it. Less than
	// 4 means 4. Default histogram.DefaultMaxBuckets (512: scale 5, a
	// relative error of at most 2.19%, over 16 octaves).
	HistogramMaxBuckets int
	// SetAggregation is what a set series keeps over an interval (key
	// set-aggregation): every distinct member (SetExact, the zero value and
	// the default) or a HyperLogLog sketch (SetHLL; hllset.go).
	SetAggregation SetAggregation
	// HLLPrecision is the precision p of a set's HyperLogLog sketch (key
	// hll-precision): 2^p one-byte registers once dense, a relative
	// standard error of 1.04/sqrt(2^p). Clamped to hll.MinPrecision..
	// hll.MaxPrecision (4..18); 0 means the default, hll.DefaultPrecision (14: 16 KiB,
	// 0.81%).
	HLLPrecision int
	// TimestampSlots are the flush intervals counters and gauges with their
	// own time (Batcher.SeriesAt: DogStatsD timestamps) are aggregated into
	// (keys flush-interval and flush-offset; slots.go). Default 10s, no
	// offset: the defaults of those keys.
	TimestampSlots TimestampSlots
}

// DefaultOptions returns the options every key defaults to.
func DefaultOptions() Options {
	const expiry = 5 * time.Minute
	return Options{
		Shards:            runtime.NumCPU(),
		MaxQueuedSamples:  262144,
		PercentThresholds: []float64{90},
		Expiry:            Expiry{Counter: expiry, Gauge: expiry, Set: expiry, Timer: expiry},
		HistogramLimit:    64,

		HistogramMaxBuckets: histogram.DefaultMaxBuckets,
		HLLPrecision:        hll.DefaultPrecision,
		TimestampSlots:      TimestampSlots{Interval: 10 * time.Second},
	}
}

// Aggregator is the set of shards. Batchers feed it; Snapshot drains it.
// Its methods are safe for concurrent use.
type Aggregator struct {
	opts     Options
	log      logrus.FieldLogger
	shards   []*shard
	pcts     []pct
	m        *aggMetrics
	card     *cardinality
	started  time.Time
	lastMu   sync.Mutex
	lastTime time.Time
	running  atomic.Int32 // shard goroutines running (health.go)
}

type aggMetrics struct {
	queueDropped  prometheus.Counter
	flushGC       prometheus.Counter
	exactSketches prometheus.Counter
	series        *prometheus.GaugeVec
}

// New builds an aggregator; Run must be running for Snapshot to answer.
func New(opts Options, log logrus.FieldLogger, reg prometheus.Registerer) *Aggregator {
	if opts.Shards < 1 {
		opts.Shards = 1
	}
	if opts.HLLPrecision == 0 {
		opts.HLLPrecision = hll.DefaultPrecision
	}
	opts.HLLPrecision = max(hll.MinPrecision, min(opts.HLLPrecision, hll.MaxPrecision))
	if opts.MaxQueuedSamples < batchRecords {
		opts.MaxQueuedSamples = batchRecords
	}
	a := &Aggregator{
		opts:     opts,
		log:      log,
		started:  time.Now(),
		lastTime: time.Now(),
	}
	for _, p := range opts.PercentThresholds {
		a.pcts = append(a.pcts, newPct(p))
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	a.m = &aggMetrics{
		queueDropped: counter("garner_aggregator_queue_dropped_lines_total",
			"Samples dropped because a shard's queue was full (max-queue-size)."),
		flushGC: counter("garner_aggregator_flush_gc_total",
			"Garbage collections run just before a flush, because allocating its snapshot would have started one with the snapshot counted as live."),
		exactSketches: counter("garner_aggregator_exact_set_sketches_total",
			"Forwarded set sketches (v3 HyperLogLog) merged with set-aggregation = exact: such a set's count is the sketch's estimate for that interval."),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "garner_aggregator_series",
			Help: "Series held at the last flush, by type.",
		}, []string{"type"}),
	}
	reg.MustRegister(a.m.queueDropped, a.m.flushGC, a.m.exactSketches, a.m.series)
	a.card = newCardinality(opts.MaxSeries, opts.MaxSeriesPerMetric, opts.CardinalityOverflow, log, reg)
	for i := 0; i < opts.Shards; i++ {
		a.shards = append(a.shards, newShard(a, i, opts.MaxQueuedSamples))
	}
	return a
}

// Run runs the shards until ctx is cancelled and returns when they have all
// stopped. Cancel it only after the final Snapshot: samples still queued
// then are lost.
func (a *Aggregator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range a.shards {
		wg.Go(func() {
			a.running.Add(1)
			defer a.running.Add(-1)
			s.run(ctx)
		})
	}
	wg.Wait()
	return nil
}

// Snapshot collects every shard's aggregates since the previous snapshot
// and resets them (a flush). Samples submitted before Snapshot was called
// are included. It returns ctx.Err() if ctx ends before every shard
// answered.
func (a *Aggregator) Snapshot(ctx context.Context, now time.Time) (*model.Snapshot, error) {
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
	snap := &model.Snapshot{Time: now, Interval: interval, PastInterval: a.opts.TimestampSlots.width(), Disabled: a.opts.DisabledSubMetrics,
		Counters: make([]model.Counter, total.counters),
		Gauges:   make([]model.Gauge, total.gauges),
		Sets:     make([]model.Set, total.sets),
		Timers:   make([]model.Timer, total.timers),
	}
	var pcts []model.Percentile
	if total.pctsMax > 0 {
		pcts = make([]model.Percentile, total.pctsMax)
	}
	var off shardCounts
	for i, c := range per {
		req.fill[i] <- fillSpec{snap: snap, counters: off.counters, gauges: off.gauges, sets: off.sets, timers: off.timers,
			pcts: pcts[off.pctsMax : off.pctsMax : off.pctsMax+c.pctsMax]}
		off.add(c)
	}
	filling = true
	// Every shard has its place and resets its state as it writes it: from
	// here the snapshot is the only copy of the interval, so it is finished
	// and returned even when ctx ends meanwhile (shutdown). Giving up here
	// lost the interval without a trace. Writing is CPU work only.
	for range n {
		<-done
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
	return uint64(c.counters)*uint64(unsafe.Sizeof(model.Counter{})) +
		uint64(c.gauges)*uint64(unsafe.Sizeof(model.Gauge{})) +
		uint64(c.sets)*uint64(unsafe.Sizeof(model.Set{})) +
		uint64(c.timers)*uint64(unsafe.Sizeof(model.Timer{})) +
		uint64(c.pctsMax)*uint64(unsafe.Sizeof(model.Percentile{}))
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

// hash is the hash of a series key: it chooses the shard that owns the
// series (shardFor) and, carried in the record, is the key of the shard's
// index (seriesIndex), so that a key is hashed once.
func (a *Aggregator) hash(key []byte) uint64 { return keyHash(key) }

// keySeed seeds keyHash, one per process: a record's hash must not depend on
// which aggregator or batch made it.
var keySeed = maphash.MakeSeed()

func keyHash(key []byte) uint64 { return maphash.Bytes(keySeed, key) }

// shardFor is the index of the shard that owns a series key of hash h.
func (a *Aggregator) shardFor(h uint64) int {
	if len(a.shards) == 1 {
		return 0
	}
	return int(h % uint64(len(a.shards)))
}

// QueuedSamples is the number of samples waiting in the shards' queues.
func (a *Aggregator) QueuedSamples() int64 {
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
