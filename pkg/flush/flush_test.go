package flush

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// fixedSource hands out a copy of one snapshot, stamped with the flush time.
type fixedSource struct{ snap model.Snapshot }

func (s *fixedSource) Snapshot(_ context.Context, now time.Time) (*model.Snapshot, error) {
	c := s.snap
	c.Time = now
	return &c, nil
}

// recorder is a backend that keeps the snapshots it gets and the titles of
// the events and the names of the service checks.
type recorder struct {
	mu     sync.Mutex
	snaps  []*model.Snapshot
	events []string
	checks []string
}

var (
	_ backends.Backend            = (*recorder)(nil)
	_ backends.ServiceCheckSender = (*recorder)(nil)
)

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) SendMetrics(_ context.Context, s *model.Snapshot) error {
	return keep(r, &r.snaps, s)
}

func (r *recorder) SendEvent(_ context.Context, e *model.Event) error {
	return keep(r, &r.events, e.Title)
}

func (r *recorder) SendServiceCheck(_ context.Context, c *model.ServiceCheck) error {
	return keep(r, &r.checks, c.Name)
}

// keep appends x to one of r's lists, under r's lock.
func keep[T any](r *recorder, list *[]T, x T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*list = append(*list, x)
	return nil
}

func (r *recorder) all() []*model.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*model.Snapshot(nil), r.snaps...)
}

func idleAndBusy() model.Snapshot {
	return model.Snapshot{
		Counters: []model.Counter{{Series: model.Series{Name: "idle"}}, {Series: model.Series{Name: "busy"}, Value: 5}},
		Gauges:   []model.Gauge{{Series: model.Series{Name: "g"}, Value: 0}},
		Sets: []model.Set{{Series: model.Series{Name: "idle"}, Members: map[string]struct{}{}},
			{Series: model.Series{Name: "busy"}, Members: map[string]struct{}{"a": {}}}},
		Timers: []model.Timer{{Series: model.Series{Name: "idle"}},
			{Series: model.Series{Name: "busy"}, Values: []float64{1}, SampledCount: 1}},
	}
}

// TestFinalFlushTimestampAndIdle: the final flush after periodic ones is
// stamped with the time the next periodic flush was due (a later carbon step
// than the last periodic one), and carries no idle zeros; periodic flushes
// still do.
func TestFinalFlushTimestampAndIdle(t *testing.T) {
	for _, aligned := range []bool{true, false} {
		const interval = 200 * time.Millisecond
		k := &recorder{}
		f := New(Options{Interval: interval, Aligned: aligned, Timeout: time.Second},
			&fixedSource{snap: idleAndBusy()}, []backends.Backend{k}, logrus.New(), prometheus.NewRegistry())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for len(k.all()) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		periodic := k.all()
		if len(periodic) < 2 {
			t.Fatalf("aligned=%v: %d periodic flushes in 10s", aligned, len(periodic))
		}
		last := periodic[len(periodic)-1]
		if err := f.Final(context.Background()); err != nil {
			t.Fatal(err)
		}
		all := k.all()
		final := all[len(all)-1]
		// The final flush closes the interval after the last periodic one.
		if d := final.Time.Sub(last.Time); d < interval-20*time.Millisecond || d > interval+20*time.Millisecond {
			t.Errorf("aligned=%v: final flush at %v, last periodic at %v: want one interval (%v) later", aligned, final.Time, last.Time, interval)
		}
		if aligned && !final.Time.Equal(final.Time.Truncate(interval)) {
			t.Errorf("final flush at %v, not on the %v grid", final.Time, interval)
		}
		if last.Len() != 7 {
			t.Errorf("periodic flush has %d series, want all 7 (idle zeros included)", last.Len())
		}
		if len(final.Counters) != 1 || final.Counters[0].Name != "busy" || len(final.Sets) != 1 || final.Sets[0].Name != "busy" ||
			len(final.Timers) != 1 || final.Timers[0].Name != "busy" || len(final.Gauges) != 1 {
			t.Errorf("final flush %+v: want the busy counter, set and timer and the gauge only", final)
		}
	}
}

// TestFinalFlushWithoutRun: a final flush with no periodic one before it is
// stamped at the next flush time, never in the past.
func TestFinalFlushWithoutRun(t *testing.T) {
	k := &recorder{}
	f := New(Options{Interval: time.Hour, Aligned: true, Timeout: time.Second},
		&fixedSource{snap: idleAndBusy()}, []backends.Backend{k}, logrus.New(), prometheus.NewRegistry())
	before := time.Now()
	if err := f.Final(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := k.all()[0].Time
	if !got.After(before) || got.Sub(before) > time.Hour || !got.Equal(got.Truncate(time.Hour)) {
		t.Errorf("final flush at %v (called at %v): want the next full hour", got, before)
	}
}

// blocker is a backend whose sends wait for release, and record whether
// their context had ended by then.
type blocker struct {
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	ctxErrs []error
}

func (b *blocker) Name() string                                  { return "blocker" }
func (b *blocker) SendEvent(context.Context, *model.Event) error { return nil }
func (b *blocker) SendMetrics(ctx context.Context, _ *model.Snapshot) error {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-b.release
	b.mu.Lock()
	b.ctxErrs = append(b.ctxErrs, ctx.Err())
	b.mu.Unlock()
	return ctx.Err()
}

// TestShutdownLetsASendInProgressFinish: a periodic flush that a backend is
// still sending when garner is told to stop keeps its deadline
// (backend-timeout) instead of being cancelled with the flush loop: an HTTP
// backend would drop the batches of a cancelled send, a loss on every
// restart.
func TestShutdownLetsASendInProgressFinish(t *testing.T) {
	b := &blocker{started: make(chan struct{}, 1), release: make(chan struct{})}
	f := New(Options{Interval: 20 * time.Millisecond, Timeout: time.Minute},
		&fixedSource{snap: idleAndBusy()}, []backends.Backend{b}, logrus.New(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	garnertest.Receive(t, "no flush started", 10*time.Second, b.started)
	cancel() // SIGTERM while the backend sends (cancelling is synchronous)
	close(b.release)
	if err := garnertest.Receive(t, "Run did not return after the send finished", 10*time.Second, done); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ctxErrs) == 0 || b.ctxErrs[0] != nil {
		t.Fatalf("the send in progress at shutdown saw its context end (%v): its data would be dropped", b.ctxErrs)
	}
}
