package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

func newTestRegistry(t *testing.T, opts Options) (*Registry, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(opts, garnertest.QuietLog(), reg), reg
}

// switchable is a check whose result the test sets.
type switchable struct {
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (s *switchable) set(err error) { s.err.Store(&err) }

func (s *switchable) check(context.Context) error {
	s.calls.Add(1)
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

func runRegistry(t *testing.T, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		garnertest.Receive(t, "Run did not return after cancel", 5*time.Second, done)
	})
}

func TestRegisterValidation(t *testing.T) {
	r, _ := newTestRegistry(t, Options{})
	ok := func(context.Context) error { return nil }
	if err := r.Register("graphite", Soft, ok); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterInternal("flush", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"duplicate dependency", r.Register("graphite", Hard, ok)},
		{"internal named like a dependency", r.RegisterInternal("graphite", func() error { return nil })},
		{"dependency named like an internal check", r.Register("flush", Soft, ok)},
		{"duplicate internal", r.RegisterInternal("flush", func() error { return nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, ErrDuplicate) {
				t.Fatalf("err = %v, want ErrDuplicate", tt.err)
			}
		})
	}
	for name, err := range map[string]error{
		"empty name": r.Register("", Soft, ok),
		"nil check":  r.Register("x", Soft, nil),
		"bad kind":   r.Register("y", Kind(9), ok),
	} {
		if err == nil {
			t.Errorf("%s: Register accepted it", name)
		}
	}
	if got := strings.Join(r.Names(), ","); got != "flush,graphite" {
		t.Errorf("Names = %q", got)
	}
}

func TestInternalChecks(t *testing.T) {
	r, _ := newTestRegistry(t, Options{})
	var broken atomic.Bool
	_ = r.RegisterInternal("shards", func() error { return nil })
	_ = r.RegisterInternal("flush", func() error {
		if broken.Load() {
			return errors.New("last flush 1m ago")
		}
		return nil
	})
	res := r.Internal()
	if len(res) != 2 || res[0].Name != "flush" || !res[0].OK || res[0].Status != "OK" || res[0].Type != "internal" {
		t.Fatalf("Internal = %+v", res)
	}
	broken.Store(true)
	c, ok := r.Check("flush")
	if !ok || c.OK || c.Status != "FAIL" || c.Details != "last flush 1m ago" {
		t.Fatalf("Check(flush) = %+v, %v", c, ok)
	}
	if _, ok := r.Check("nope"); ok {
		t.Fatal("Check(nope) found something")
	}
}

// TestTransitions records probe results directly with chosen times.
func TestTransitions(t *testing.T) {
	r, reg := newTestRegistry(t, Options{History: 3, Timeout: 100 * time.Millisecond, Interval: time.Second})
	_ = r.Register("carbon", Soft, func(context.Context) error { return nil })
	d := r.deps["carbon"]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	down := errors.New("connection refused")

	if s := d.snapshot(EventQuery{Limit: -1}); s.Status != StatusUnknown || s.LastCheck != nil || len(s.Events) != 0 {
		t.Fatalf("before any probe: %+v", s)
	}
	d.record(at(0), time.Millisecond, down)
	d.record(at(1), time.Millisecond, down)
	s := d.snapshot(EventQuery{Limit: -1})
	if s.Status != StatusDown || len(s.Events) != 1 || s.Events[0].Event != "downtime" || s.Events[0].Ended != nil {
		t.Fatalf("after two failures: %+v", s)
	}
	if s.ConsecutiveFailures != 2 || s.LastError != "connection refused" {
		t.Fatalf("failures %d, error %q", s.ConsecutiveFailures, s.LastError)
	}
	if got := testutil.ToFloat64(r.up.WithLabelValues("carbon", "soft")); got != 0 {
		t.Fatalf("garner_dependency_up = %v, want 0", got)
	}

	d.record(at(2), 3*time.Millisecond, nil)
	s = d.snapshot(EventQuery{Limit: -1})
	if s.Status != StatusUp || len(s.Events) != 2 {
		t.Fatalf("after recovery: %+v", s)
	}
	up, downEv := s.Events[0], s.Events[1]
	if up.Event != "uptime" || up.Ended != nil {
		t.Fatalf("newest event = %+v, want an ongoing uptime", up)
	}
	if downEv.Event != "downtime" || downEv.Ended == nil || !downEv.Ended.Equal(up.Started) {
		t.Fatalf("downtime = %+v, want it ended when the uptime started (%v)", downEv, up.Started)
	}
	if s.UptimePercent < 33.3 || s.UptimePercent > 33.4 {
		t.Fatalf("uptime percent = %v, want 1/3", s.UptimePercent)
	}
	if s.AvgResponseTimeMs < 1.66 || s.AvgResponseTimeMs > 1.67 {
		t.Fatalf("avg response = %v ms, want (1+1+3)/3", s.AvgResponseTimeMs)
	}
	if got := testutil.ToFloat64(r.up.WithLabelValues("carbon", "soft")); got != 1 {
		t.Fatalf("garner_dependency_up = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.checks.WithLabelValues("carbon", "down")); got != 2 {
		t.Fatalf("checks down = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "garner_dependency_check_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("duration histogram series = %d, %v", n, err)
	}

	// Slow but successful: degraded, still up (no new event).
	d.record(at(3), 80*time.Millisecond, nil)
	s = d.snapshot(EventQuery{Limit: -1})
	if s.Status != StatusDegraded || len(s.Events) != 2 {
		t.Fatalf("slow probe: status %s, %d events", s.Status, len(s.Events))
	}
	if !s.result().OK {
		t.Fatal("a degraded dependency must not fail deepcheck")
	}

	// History is bounded: two more transitions push the oldest out.
	d.record(at(4), time.Millisecond, down)
	d.record(at(5), time.Millisecond, nil)
	s = d.snapshot(EventQuery{Limit: -1})
	if s.EventsKept != 3 || len(s.Events) != 3 {
		t.Fatalf("kept %d events, want 3", s.EventsKept)
	}
	if want := at(2).Add(3 * time.Millisecond); !s.Events[2].Started.Equal(want) { // a probe's time is when it answered
		t.Fatalf("oldest kept event started %v, want %v", s.Events[2].Started, want)
	}
}

func TestEventPagination(t *testing.T) {
	r, _ := newTestRegistry(t, Options{History: 50})
	_ = r.Register("up1", Hard, func(context.Context) error { return nil })
	d := r.deps["up1"]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ { // 10 alternating events, started at t0+0s .. t0+9s
		var err error
		if i%2 == 1 {
			err = errors.New("down")
		}
		d.record(t0.Add(time.Duration(i)*time.Second), 0, err)
	}
	tests := []struct {
		name      string
		q         EventQuery
		wantFirst int // seconds after t0 of the first event returned; -1 = none
		wantN     int
		wantNext  int // seconds of next_before; -1 = none
	}{
		{"default page", EventQuery{Limit: 3}, 9, 3, 7},
		{"all", EventQuery{Limit: -1}, 9, 10, -1},
		{"none", EventQuery{Limit: 0}, -1, 0, -1},
		{"second page", EventQuery{Limit: 3, Before: t0.Add(7 * time.Second)}, 6, 3, 4},
		{"last page", EventQuery{Limit: 3, Before: t0.Add(2 * time.Second)}, 1, 2, -1},
		{"before everything", EventQuery{Limit: 3, Before: t0}, -1, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := d.snapshot(tt.q)
			if len(s.Events) != tt.wantN {
				t.Fatalf("%d events, want %d", len(s.Events), tt.wantN)
			}
			if tt.wantFirst >= 0 && !s.Events[0].Started.Equal(t0.Add(time.Duration(tt.wantFirst)*time.Second)) {
				t.Fatalf("first event started %v", s.Events[0].Started)
			}
			switch {
			case tt.wantNext < 0 && s.NextBefore != nil:
				t.Fatalf("next_before = %v, want none", s.NextBefore)
			case tt.wantNext >= 0 && (s.NextBefore == nil || !s.NextBefore.Equal(t0.Add(time.Duration(tt.wantNext)*time.Second))):
				t.Fatalf("next_before = %v, want t0+%ds", s.NextBefore, tt.wantNext)
			}
		})
	}
}

func TestProberDownThenUp(t *testing.T) {
	r, _ := newTestRegistry(t, Options{Interval: 10 * time.Millisecond, Timeout: 5 * time.Millisecond})
	var c switchable
	c.set(errors.New("refused"))
	if err := r.Register("graphite", Soft, c.check); err != nil {
		t.Fatal(err)
	}
	runRegistry(t, r)
	state := func() DependencyState { return r.Dependencies(EventQuery{Limit: -1})[0] }
	garnertest.WaitFor(t, "down", 5*time.Second, func() bool { return state().Status == StatusDown })
	if got := r.DependencyResults(); len(got) != 1 || got[0].OK {
		t.Fatalf("DependencyResults = %+v", got)
	}
	c.set(nil)
	garnertest.WaitFor(t, "up", 5*time.Second, func() bool { return state().Status == StatusUp })
	s := state()
	if len(s.Events) != 2 || s.Events[1].Event != "downtime" || s.Events[1].Ended == nil {
		t.Fatalf("events = %+v, want an ended downtime then an uptime", s.Events)
	}
	// Registered while Run runs: probed too.
	var late switchable
	if err := r.Register("late", Hard, late.check); err != nil {
		t.Fatal(err)
	}
	garnertest.WaitFor(t, "late dependency probed", 5*time.Second, func() bool { return late.calls.Load() > 0 })
}

// TestHangingCheck: a check that ignores its context is counted down after
// the timeout, the state stays readable at once, and probes do not pile up.
func TestHangingCheck(t *testing.T) {
	r, _ := newTestRegistry(t, Options{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond})
	release := make(chan struct{})
	var calls, running, maxRunning atomic.Int64
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	_ = r.Register("stuck", Hard, func(context.Context) error {
		calls.Add(1)
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		<-release // ignores ctx
		return nil
	})
	runRegistry(t, r)
	garnertest.WaitFor(t, "down after timeout", 5*time.Second, func() bool {
		d := r.Dependencies(EventQuery{})[0]
		return d.Status == StatusDown && strings.Contains(d.LastError, "no answer within")
	})
	// Reading the state must not wait for the hung check: if it did, these
	// reads would not end before release, which only comes after them.
	read := make(chan struct{})
	go func() {
		defer close(read)
		for range 100 {
			_ = r.Dependencies(EventQuery{Limit: 10})
			_ = r.DependencyResults()
		}
	}()
	garnertest.Receive(t, "reading the state blocks while the check hangs", 10*time.Second, read)
	time.Sleep(100 * time.Millisecond)
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d checks ran at once; a stuck check must not pile up", m)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("check called %d times while the first one hangs", c)
	}
	once.Do(func() { close(release) })
	garnertest.WaitFor(t, "probing again after the check returned", 5*time.Second, func() bool { return calls.Load() > 1 })
}

func TestOverall(t *testing.T) {
	dep := func(kind Kind, st Status) DependencyState { return DependencyState{Type: kind.String(), Status: st} }
	tests := []struct {
		name string
		deps []DependencyState
		want Status
	}{
		{"none", nil, StatusUp},
		{"all up", []DependencyState{dep(Hard, StatusUp), dep(Soft, StatusUp)}, StatusUp},
		{"unknown does not count", []DependencyState{dep(Hard, StatusUnknown)}, StatusUp},
		{"soft down", []DependencyState{dep(Hard, StatusUp), dep(Soft, StatusDown)}, StatusDegraded},
		{"degraded", []DependencyState{dep(Hard, StatusDegraded)}, StatusDegraded},
		{"hard down", []DependencyState{dep(Soft, StatusDown), dep(Hard, StatusDown)}, StatusDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Overall(tt.deps); got != tt.want {
				t.Fatalf("Overall = %s, want %s", got, tt.want)
			}
		})
	}
}
