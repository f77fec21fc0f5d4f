// Package flush schedules flushes and fans each snapshot out to the backends
// in parallel. A slow or dead backend delays only itself: each backend has its
// own goroutine, a one-flush queue and a deadline; a flush that finds the
// backend still busy with the previous one is dropped for that backend and
// counted.
package flush

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/model"
)

// Source produces the snapshot of one flush (the aggregator): the
// aggregates since the previous one, which it then resets.
type Source interface {
	Snapshot(ctx context.Context, now time.Time) (*model.Snapshot, error)
}

// Options configures a Flusher.
type Options struct {
	Interval time.Duration // time between flushes
	Aligned  bool          // flush at multiples of Interval on the wall clock (+ Offset)
	Offset   time.Duration
	Timeout  time.Duration // per-backend deadline of one flush
}

// Flusher runs the flush loop. Run and Final must not be called concurrently.
type Flusher struct {
	opts    Options
	src     Source
	log     logrus.FieldLogger
	outs    []*output
	m       flushMetrics
	lastMu  sync.Mutex
	last    time.Time // when the last flush completed (for health checks)
	lastDur time.Duration
	next    time.Time // when Run's next flush is due (the final flush's timestamp)
}

type flushMetrics struct {
	duration prometheus.Histogram
	flushes  prometheus.Counter
	series   prometheus.Gauge
}

// output is one backend with its queue and counters.
type output struct {
	b       backends.Backend
	queue   chan *model.Snapshot
	timeout time.Duration
	log     logrus.FieldLogger

	sends, errs, dropped prometheus.Counter
	series               prometheus.Counter
	dur                  prometheus.Observer
}

// New builds a Flusher over src and the backends.
func New(opts Options, src Source, bs []backends.Backend, log logrus.FieldLogger, reg prometheus.Registerer) *Flusher {
	f := &Flusher{opts: opts, src: src, log: log, last: time.Now()}
	f.m = flushMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "garner_flush_duration_seconds",
			Help:    "Time to collect a snapshot from the shards.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_flush_total", Help: "Flushes run."}),
		series:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "garner_flush_series", Help: "Series in the last flush."}),
	}
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_backend_sends_total", Help: "Flushes delivered to a backend."}, []string{"backend"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_backend_errors_total", Help: "Flushes a backend failed to deliver."}, []string{"backend"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_backend_dropped_flushes_total", Help: "Flushes skipped because the backend was still busy with the previous one."}, []string{"backend"})
	series := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_backend_series_total", Help: "Series handed to a backend."}, []string{"backend"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "garner_backend_send_duration_seconds", Help: "Time a backend took to take one flush.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	}, []string{"backend"})
	reg.MustRegister(f.m.duration, f.m.flushes, f.m.series, sends, errs, dropped, series, dur)
	for _, b := range bs {
		n := b.Name()
		f.outs = append(f.outs, &output{
			b: b, queue: make(chan *model.Snapshot, 1), timeout: opts.Timeout,
			log:   log.WithField("backend", n),
			sends: sends.WithLabelValues(n), errs: errs.WithLabelValues(n), dropped: dropped.WithLabelValues(n),
			series: series.WithLabelValues(n), dur: dur.WithLabelValues(n),
		})
	}
	return f
}

// Run flushes every interval until ctx is cancelled, then returns nil after
// the backend goroutines finished their current send. It does not run the
// final flush: call Final after the receivers have stopped.
func (f *Flusher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, o := range f.outs {
		wg.Go(o.run)
	}
	defer wg.Wait()
	// Closing the queues (before waiting for the backends) is how they learn
	// that Run is done: each delivers what is queued, then returns. A
	// snapshot collected while ctx ended is queued like any other.
	defer func() {
		for _, o := range f.outs {
			close(o.queue)
		}
	}()
	t := time.NewTimer(f.schedule(time.Now()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			t.Reset(f.schedule(time.Now()))
			snap, err := f.collect(ctx, now)
			if err != nil {
				continue
			}
			for _, o := range f.outs {
				select {
				case o.queue <- snap:
				default:
					o.dropped.Inc()
					o.log.Warn("backend still busy with the previous flush; dropping this flush for it")
				}
			}
		}
	}
}

// schedule records when the next flush is due and returns the wait until then.
func (f *Flusher) schedule(now time.Time) time.Duration {
	next := f.nextAfter(now)
	f.lastMu.Lock()
	f.next = next
	f.lastMu.Unlock()
	return next.Sub(now)
}

// nextAfter is when a flush scheduled at now is due.
func (f *Flusher) nextAfter(now time.Time) time.Time {
	if !f.opts.Aligned {
		return now.Add(f.opts.Interval)
	}
	next := now.Truncate(f.opts.Interval).Add(f.opts.Offset)
	for !next.After(now) {
		next = next.Add(f.opts.Interval)
	}
	return next
}

// finalTime is the final flush's timestamp: when the interval it closes
// would have ended (the next periodic flush), never now. Stores that keep
// one point per step (carbon) would otherwise take the final flush into the
// step of the last periodic one and overwrite it.
func (f *Flusher) finalTime(now time.Time) time.Time {
	f.lastMu.Lock()
	next := f.next
	f.lastMu.Unlock()
	if !next.After(now) {
		next = f.nextAfter(now)
	}
	return next
}

func (f *Flusher) collect(ctx context.Context, now time.Time) (*model.Snapshot, error) {
	start := time.Now()
	snap, err := f.src.Snapshot(ctx, now)
	if err != nil {
		return nil, err
	}
	d := time.Since(start)
	f.m.duration.Observe(d.Seconds())
	f.m.flushes.Inc()
	f.m.series.Set(float64(snap.Len()))
	f.lastMu.Lock()
	f.last, f.lastDur = time.Now(), d
	f.lastMu.Unlock()
	return snap, nil
}

// LastFlush returns when the last flush completed and how long collecting it
// took. Safe for concurrent use.
func (f *Flusher) LastFlush() (time.Time, time.Duration) {
	f.lastMu.Lock()
	defer f.lastMu.Unlock()
	return f.last, f.lastDur
}

// Final runs one last flush and delivers it to every backend, waiting for
// them (bounded by ctx). It returns the errors of the backends that failed.
//
// The final flush is timestamped when its interval would have ended (see
// finalTime) and leaves idle series out (see dropIdle): it must never
// overwrite what a periodic flush stored.
func (f *Flusher) Final(ctx context.Context) error {
	snap, err := f.collect(ctx, f.finalTime(time.Now()))
	if err != nil {
		return err
	}
	dropIdle(snap)
	errc := make(chan error, len(f.outs))
	for _, o := range f.outs {
		go func() { errc <- o.send(ctx, snap) }()
	}
	var errs []error
	for range f.outs {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// run delivers the flushes queued for the backend until Run closes the
// queue. Each send is bounded by the backend's deadline, not by Run's ctx: a
// send in progress when garner is told to stop, and the flush still queued
// then, are delivered (an HTTP backend drops the batches of a cancelled
// send) before the final flush.
func (o *output) run() {
	for snap := range o.queue {
		sctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		if err := o.send(sctx, snap); err != nil {
			o.log.WithError(err).Warn("flush to backend failed")
		}
		cancel()
	}
}

func (o *output) send(ctx context.Context, snap *model.Snapshot) error {
	start := time.Now()
	err := o.b.SendMetrics(ctx, snap)
	o.dur.Observe(time.Since(start).Seconds())
	if err != nil {
		o.errs.Inc()
		return err
	}
	o.sends.Inc()
	o.series.Add(float64(snap.Len()))
	return nil
}

// dropIdle removes from snap the series that had no samples this interval
// and would go out as zeros: counters at 0, timers without values, sets
// without members. Gauges stay (they keep their value). Used by the final
// flush: a zero there says nothing, and in a store that keeps one point per
// step it can overwrite what the garner taking over stored for that step.
func dropIdle(snap *model.Snapshot) {
	snap.Counters = slices.DeleteFunc(snap.Counters, func(c model.Counter) bool { return c.Value == 0 })
	snap.Timers = slices.DeleteFunc(snap.Timers, func(t model.Timer) bool { return len(t.Values) == 0 && t.SampledCount == 0 })
	snap.Sets = slices.DeleteFunc(snap.Sets, func(s model.Set) bool { return s.Count() == 0 })
}
