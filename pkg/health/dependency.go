package health

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Event is one period during which a dependency was up ("uptime") or down
// ("downtime"). Ended is nil while the period lasts.
type Event struct {
	Event   string     `json:"event"`
	Started time.Time  `json:"date_started"`
	Ended   *time.Time `json:"date_ended"`
}

// DependencyState is the recorded state of one dependency.
type DependencyState struct {
	Name                string     `json:"name"`
	Type                string     `json:"type"` // hard or soft
	Status              Status     `json:"status"`
	LastCheck           *time.Time `json:"last_check"` // nil before the first probe
	LastError           string     `json:"last_error,omitempty"`
	LastResponseTimeMs  float64    `json:"last_response_time_ms"`
	AvgResponseTimeMs   float64    `json:"avg_response_time_ms"` // mean of the last Options.Window probes
	UptimePercent       float64    `json:"uptime_percent"`       // probes up / probes, since start
	Checks              uint64     `json:"checks"`
	ChecksUp            uint64     `json:"checks_up"`
	ChecksDown          uint64     `json:"checks_down"`
	Events              []Event    `json:"events"`                // newest first, as selected by the EventQuery
	EventsKept          int        `json:"events_kept"`           // events in the bounded history
	NextBefore          *time.Time `json:"next_before,omitempty"` // pass as ?before= for the next page
	ConsecutiveFailures uint64     `json:"consecutive_failures"`
}

func (d DependencyState) result() CheckResult {
	res := CheckResult{Name: d.Name, Type: d.Type, OK: d.Status == StatusUp || d.Status == StatusDegraded, Details: string(d.Status)}
	if res.OK {
		res.Status = "OK"
	} else {
		res.Status = "FAIL"
	}
	if d.LastError != "" {
		res.Details += ": " + d.LastError
	}
	return res
}

type dependency struct {
	name  string
	kind  Kind
	check CheckFunc
	r     *Registry

	upG         prometheus.Gauge
	dur         prometheus.Observer
	cUp, cDown  prometheus.Counter
	interval    time.Duration
	timeout     time.Duration
	history     int
	slowAbove   time.Duration
	windowLimit int

	mu          sync.Mutex
	status      Status
	lastCheck   time.Time
	lastErr     string
	lastDur     time.Duration
	ticks, ups  uint64
	downs, fail uint64
	window      []time.Duration // ring of recent probe durations
	wpos        int
	events      []Event // oldest first, at most history
}

func newDependency(name string, kind Kind, check CheckFunc, r *Registry) *dependency {
	return &dependency{
		name: name, kind: kind, check: check, r: r,
		upG:         r.up.WithLabelValues(name, kind.String()),
		dur:         r.duration.WithLabelValues(name),
		cUp:         r.checks.WithLabelValues(name, "up"),
		cDown:       r.checks.WithLabelValues(name, "down"),
		interval:    r.opts.Interval,
		timeout:     r.opts.Timeout,
		history:     r.opts.History,
		slowAbove:   r.opts.Timeout / 2,
		windowLimit: r.opts.Window,
		status:      StatusUnknown,
	}
}

// loop probes at once, then every interval, until ctx ends.
func (d *dependency) loop(ctx context.Context) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		d.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe runs the check once. A check that ignores its context is abandoned
// after the timeout (and counted down); the next probe waits for it to
// return so that stuck checks do not pile up.
func (d *dependency) probe(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- d.check(pctx) }()
	var err error
	select {
	case err = <-done:
	case <-pctx.Done():
		// Give a well-behaved check a moment to return its own error.
		select {
		case err = <-done:
		case <-time.After(50 * time.Millisecond):
			err = fmt.Errorf("no answer within %s", d.timeout)
			defer d.waitAbandoned(ctx, done)
		}
	}
	if ctx.Err() != nil {
		return // shutting down: the cancellation is not the dependency's fault
	}
	if err == nil && pctx.Err() != nil {
		err = fmt.Errorf("no answer within %s", d.timeout)
	}
	d.record(start, time.Since(start), err)
}

func (d *dependency) waitAbandoned(ctx context.Context, done <-chan error) {
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		case <-time.After(d.timeout):
			d.r.log.WithField("dependency", d.name).Warn("dependency check ignores its context; abandoning it at shutdown")
		}
	}
}

func (d *dependency) record(at time.Time, took time.Duration, err error) {
	d.dur.Observe(took.Seconds())
	now := at.Add(took)
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.status
	d.ticks++
	d.lastCheck, d.lastDur = now, took
	if len(d.window) < d.windowLimit {
		d.window = append(d.window, took)
	} else {
		d.window[d.wpos] = took
		d.wpos = (d.wpos + 1) % d.windowLimit
	}
	if err != nil {
		d.downs++
		d.fail++
		d.lastErr = err.Error()
		d.status = StatusDown
		d.upG.Set(0)
		d.cDown.Inc()
	} else {
		d.ups++
		d.fail = 0
		d.lastErr = ""
		d.status = StatusUp
		if took > d.slowAbove {
			d.status = StatusDegraded
		}
		d.upG.Set(1)
		d.cUp.Inc()
	}
	wasUp := prev == StatusUp || prev == StatusDegraded
	isUp := err == nil
	if prev != StatusUnknown && wasUp == isUp {
		return
	}
	kind := "uptime"
	if !isUp {
		kind = "downtime"
	}
	if n := len(d.events); n > 0 && d.events[n-1].Ended == nil {
		end := now
		d.events[n-1].Ended = &end
	}
	if len(d.events) == d.history {
		copy(d.events, d.events[1:])
		d.events = d.events[:len(d.events)-1]
	}
	d.events = append(d.events, Event{Event: kind, Started: now})
	if prev != StatusUnknown {
		l := d.r.log.WithField("dependency", d.name).WithField("type", d.kind.String())
		if isUp {
			l.Info("dependency is up again")
		} else {
			l.WithError(err).Warn("dependency is down")
		}
	}
}

func (d *dependency) snapshot(q EventQuery) DependencyState {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := DependencyState{
		Name: d.name, Type: d.kind.String(), Status: d.status, LastError: d.lastErr,
		LastResponseTimeMs: ms(d.lastDur),
		Checks:             d.ticks, ChecksUp: d.ups, ChecksDown: d.downs,
		ConsecutiveFailures: d.fail,
		EventsKept:          len(d.events),
		Events:              []Event{},
	}
	if !d.lastCheck.IsZero() {
		t := d.lastCheck
		s.LastCheck = &t
	}
	if d.ticks > 0 {
		s.UptimePercent = float64(d.ups) / float64(d.ticks) * 100
	}
	if len(d.window) > 0 {
		var sum time.Duration
		for _, w := range d.window {
			sum += w
		}
		s.AvgResponseTimeMs = ms(sum / time.Duration(len(d.window)))
	}
	for i := len(d.events) - 1; i >= 0; i-- {
		e := d.events[i]
		if !q.Before.IsZero() && !e.Started.Before(q.Before) {
			continue
		}
		if q.Limit >= 0 && len(s.Events) >= q.Limit {
			if len(s.Events) > 0 {
				next := s.Events[len(s.Events)-1].Started
				s.NextBefore = &next
			}
			break
		}
		if e.Ended != nil {
			end := *e.Ended
			e.Ended = &end
		}
		s.Events = append(s.Events, e)
	}
	return s
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
