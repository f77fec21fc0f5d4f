// Package health keeps garner's health state: internal checks (receivers
// reading, shards alive, flush loop ticking) and the dependencies garner sends
// to (backends, forward upstreams), which a background prober checks on an
// interval.
//
// Readers (the HTTP handlers) only read recorded state: asking for a
// dependency's status never calls the dependency, so it answers in
// microseconds even when every dependency hangs. Internal checks are
// evaluated when asked, and must therefore only read in-process state
// without blocking.
package health

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// Kind says how much a dependency matters.
type Kind uint8

// Dependency kinds.
const (
	// Hard: garner cannot do its job without it (a forward upstream). A hard
	// dependency that is down makes the overall dependency status "down".
	Hard Kind = iota + 1
	// Soft: one output among others (a backend). A soft dependency that is
	// down makes the overall dependency status "degraded".
	Soft
)

// String is "hard" or "soft".
func (k Kind) String() string {
	switch k {
	case Hard:
		return "hard"
	case Soft:
		return "soft"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Status of a dependency, or of all of them.
type Status string

// Statuses.
const (
	StatusUp       Status = "up"
	StatusDown     Status = "down"
	StatusDegraded Status = "degraded" // up, but slow (dependency) or some soft dependency down (overall)
	StatusUnknown  Status = "unknown"  // not probed yet
)

// CheckFunc probes one dependency. It must return when ctx ends.
type CheckFunc func(ctx context.Context) error

// InternalFunc reports the health of a part of garner itself. It is called
// by HTTP handlers, so it must only read in-process state and never block.
type InternalFunc func() error

// Options configures a Registry; config maps the dependency-* keys onto
// it. Start from DefaultOptions; a zero field takes its default.
type Options struct {
	// Interval between two probes of one dependency (key
	// dependency-check-interval). Default 10s; 0 = default.
	Interval time.Duration
	// Timeout bounds one probe; a probe that takes longer counts as down
	// (key dependency-check-timeout). Default 5s; 0 = default; at most Interval.
	Timeout time.Duration
	// History is how many up/down events are kept per dependency (key
	// dependency-history). Default 100; 0 = default.
	History int
	// Window is how many recent probes the rolling mean response time
	// covers (no key). Default 20; 0 = default.
	Window int
}

// DefaultOptions returns the defaults of the dependency-* keys.
func DefaultOptions() Options {
	return Options{Interval: 10 * time.Second, Timeout: 5 * time.Second, History: 100, Window: 20}
}

func (o *Options) setDefaults() {
	d := DefaultOptions()
	if o.Interval <= 0 {
		o.Interval = d.Interval
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Timeout > o.Interval {
		o.Timeout = o.Interval
	}
	if o.History <= 0 {
		o.History = d.History
	}
	if o.Window <= 0 {
		o.Window = d.Window
	}
}

// ErrDuplicate is returned by Register and RegisterInternal for a name
// already registered.
var ErrDuplicate = errors.New("health check already registered")

// Registry holds every check and the probe results. All methods are safe for
// concurrent use.
type Registry struct {
	opts    Options
	log     logrus.FieldLogger
	started time.Time
	now     func() time.Time

	up       *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	checks   *prometheus.CounterVec

	mu       sync.RWMutex
	deps     map[string]*dependency
	order    []string // dependency names, sorted
	internal map[string]InternalFunc
	iorder   []string        // internal check names, sorted
	runCtx   context.Context // set by Run
	wg       *sync.WaitGroup
	stopped  bool // Run is returning: no new probe goroutines
}

// New returns an empty Registry; reg receives garner_dependency_* metrics.
func New(opts Options, log logrus.FieldLogger, reg prometheus.Registerer) *Registry {
	opts.setDefaults()
	r := &Registry{
		opts:     opts,
		log:      log,
		started:  time.Now(),
		now:      time.Now,
		deps:     make(map[string]*dependency),
		internal: make(map[string]InternalFunc),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "garner_dependency_up",
			Help: "1 when the last probe of the dependency succeeded, 0 when it failed.",
		}, []string{"dependency", "type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "garner_dependency_check_duration_seconds",
			Help:    "Response time of dependency probes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"dependency"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_dependency_checks_total",
			Help: "Dependency probes run, by result (up or down).",
		}, []string{"dependency", "result"}),
	}
	reg.MustRegister(r.up, r.duration, r.checks)
	return r
}

// Started is when the Registry was created (garner's start, for uptime).
func (r *Registry) Started() time.Time { return r.started }

// Options returns the effective options (defaults filled in).
func (r *Registry) Options() Options { return r.opts }

// Register adds a dependency probed in the background by Run. It may be
// called before or while Run runs. The name is what the HTTP endpoints and
// the dependency label show; it must be unique.
func (r *Registry) Register(name string, kind Kind, check CheckFunc) error {
	if name == "" || check == nil || (kind != Hard && kind != Soft) {
		return fmt.Errorf("register dependency %q: want a name, a check and kind hard or soft", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.takenLocked(name) {
		return fmt.Errorf("register dependency %q: %w", name, ErrDuplicate)
	}
	d := newDependency(name, kind, check, r)
	r.deps[name] = d
	r.order = insertSorted(r.order, name)
	r.up.WithLabelValues(name, kind.String()).Set(0)
	if r.runCtx != nil && !r.stopped {
		r.startLocked(d)
	}
	return nil
}

// RegisterInternal adds a check of garner itself, evaluated when asked.
func (r *Registry) RegisterInternal(name string, check InternalFunc) error {
	if name == "" || check == nil {
		return fmt.Errorf("register internal check %q: want a name and a check", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.takenLocked(name) {
		return fmt.Errorf("register internal check %q: %w", name, ErrDuplicate)
	}
	r.internal[name] = check
	r.iorder = insertSorted(r.iorder, name)
	return nil
}

// takenLocked reports whether name is a dependency or an internal check
// already: the two share one name space. r.mu must be held.
func (r *Registry) takenLocked(name string) bool {
	_, dep := r.deps[name]
	_, internal := r.internal[name]
	return dep || internal
}

func insertSorted(list []string, s string) []string {
	i := sort.SearchStrings(list, s)
	list = append(list, "")
	copy(list[i+1:], list[i:])
	list[i] = s
	return list
}

// Run probes every dependency (the ones registered later too) on the
// interval until ctx is cancelled, and returns nil once every probe
// goroutine has exited. Each dependency has its own goroutine, so a hanging
// one delays only itself. Run must be called once.
func (r *Registry) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	r.mu.Lock()
	r.runCtx, r.wg = ctx, &wg
	for _, name := range r.order {
		r.startLocked(r.deps[name])
	}
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	wg.Wait()
	return nil
}

func (r *Registry) startLocked(d *dependency) {
	r.wg.Go(func() {
		d.loop(r.runCtx)
	})
}

// CheckResult is the outcome of one internal check, or the recorded state of
// one dependency, as the HTTP endpoints show it.
type CheckResult struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // internal, hard or soft
	OK      bool   `json:"ok"`
	Status  string `json:"status"` // OK or FAIL
	Details string `json:"details,omitempty"`
}

// Internal evaluates every internal check, in name order.
func (r *Registry) Internal() []CheckResult {
	r.mu.RLock()
	names := append([]string(nil), r.iorder...)
	fns := make([]InternalFunc, len(names))
	for i, n := range names {
		fns[i] = r.internal[n]
	}
	r.mu.RUnlock()
	out := make([]CheckResult, len(names))
	for i, n := range names {
		out[i] = internalResult(n, fns[i])
	}
	return out
}

func internalResult(name string, fn InternalFunc) CheckResult {
	res := CheckResult{Name: name, Type: "internal", OK: true, Status: "OK"}
	if err := fn(); err != nil {
		res.OK, res.Status, res.Details = false, "FAIL", err.Error()
	}
	return res
}

// DependencyResults returns every dependency's recorded state as a check
// result, in name order. A dependency not probed yet is not OK.
func (r *Registry) DependencyResults() []CheckResult {
	deps := r.Dependencies(EventQuery{Limit: 0})
	out := make([]CheckResult, len(deps))
	for i, d := range deps {
		out[i] = d.result()
	}
	return out
}

// Check returns one check (internal or dependency) by name.
func (r *Registry) Check(name string) (CheckResult, bool) {
	r.mu.RLock()
	fn, isInternal := r.internal[name]
	d := r.deps[name]
	r.mu.RUnlock()
	if isInternal {
		return internalResult(name, fn), true
	}
	if d == nil {
		return CheckResult{}, false
	}
	return d.snapshot(EventQuery{}).result(), true
}

// Names returns the names of every check, internal first, each group sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append(append([]string(nil), r.iorder...), r.order...)
}

// EventQuery selects a page of a dependency's event history, newest first.
type EventQuery struct {
	// Limit is the most events returned per dependency; 0 = none,
	// negative = all kept.
	Limit int
	// Before, when not zero, keeps only events that started before it.
	Before time.Time
}

// Dependencies returns every dependency's state, in name order, with the
// events selected by q.
func (r *Registry) Dependencies(q EventQuery) []DependencyState {
	r.mu.RLock()
	deps := make([]*dependency, len(r.order))
	for i, n := range r.order {
		deps[i] = r.deps[n]
	}
	r.mu.RUnlock()
	out := make([]DependencyState, len(deps))
	for i, d := range deps {
		out[i] = d.snapshot(q)
	}
	return out
}

// Overall summarises dependency states: down when a hard dependency is down,
// degraded when a soft one is down or any is degraded, up otherwise
// (dependencies not probed yet do not count).
func Overall(deps []DependencyState) Status {
	st := StatusUp
	for _, d := range deps {
		switch {
		case d.Status == StatusDown && d.Type == Hard.String():
			return StatusDown
		case d.Status == StatusDown || d.Status == StatusDegraded:
			st = StatusDegraded
		}
	}
	return st
}
