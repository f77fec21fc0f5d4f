package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/health"
)

// The health endpoints over a real Server: status codes per dependency
// state, answers from recorded state, readiness, and event pages.

func TestHealthStatusCodes(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	var internalErr, hardErr, softErr atomicErr
	_ = env.hr.RegisterInternal("shards", internalErr.get)
	_ = env.hr.Register("upstream", health.Hard, func(context.Context) error { return hardErr.get() })
	_ = env.hr.Register("graphite", health.Soft, func(context.Context) error { return softErr.get() })
	base := "http://" + env.addrs["admin"]
	waitProbed := func(name string, wantUp bool) {
		t.Helper()
		garnertest.WaitFor(t, fmt.Sprintf("%s to be up=%v", name, wantUp), 5*time.Second, func() bool {
			for _, d := range env.hr.Dependencies(health.EventQuery{}) {
				if d.Name == name && (d.Status == health.StatusUp || d.Status == health.StatusDegraded) == wantUp && d.Status != health.StatusUnknown {
					return true
				}
			}
			return false
		})
	}
	type want struct{ healthcheck, deepcheck, full int }
	steps := []struct {
		name                 string
		internal, hard, soft error
		want                 want
		fullStatus           string
	}{
		{"all fine", nil, nil, nil, want{200, 200, 200}, "up"},
		{"soft dependency down", nil, nil, errors.New("refused"), want{200, 500, 200}, "degraded"},
		{"hard dependency down", nil, errors.New("refused"), nil, want{200, 500, 503}, "down"},
		{"internal check fails", errors.New("1 of 2 shards running"), nil, nil, want{500, 200, 503}, "down"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			internalErr.set(st.internal)
			hardErr.set(st.hard)
			softErr.set(st.soft)
			waitProbed("upstream", st.hard == nil)
			waitProbed("graphite", st.soft == nil)
			if a := do(t, "GET", base+"/healthcheck", "", nil); a.code != st.want.healthcheck {
				t.Errorf("/healthcheck %d, want %d: %s", a.code, st.want.healthcheck, a.body)
			}
			if a := do(t, "GET", base+"/deepcheck", "", nil); a.code != st.want.deepcheck {
				t.Errorf("/deepcheck %d, want %d: %s", a.code, st.want.deepcheck, a.body)
			}
			a := do(t, "GET", base+"/health", "", nil)
			var body struct{ Status string }
			_ = json.Unmarshal([]byte(a.body), &body)
			if a.code != st.want.full || body.Status != st.fullStatus {
				t.Errorf("/health %d %q, want %d %q", a.code, body.Status, st.want.full, st.fullStatus)
			}
			// Liveness never depends on checks.
			if a := do(t, "GET", base+"/health/live", "", nil); a.code != 204 {
				t.Errorf("/health/live %d", a.code)
			}
		})
	}
}

type atomicErr struct {
	mu  sync.Mutex
	err error
}

func (a *atomicErr) set(err error) { a.mu.Lock(); a.err = err; a.mu.Unlock() }
func (a *atomicErr) get() error    { a.mu.Lock(); defer a.mu.Unlock(); return a.err }

// TestHealthFastWhenDependencyHangs: answers come from recorded state.
func TestHealthFastWhenDependencyHangs(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	for _, n := range []string{"a", "b", "c"} {
		_ = env.hr.Register(n, health.Hard, func(ctx context.Context) error {
			<-hang // ignores ctx on purpose
			return nil
		})
	}
	base := "http://" + env.addrs["admin"]
	for _, p := range []string{"/deepcheck", "/health", "/health/dependencies", "/status", "/ui/data", "/healthcheck", "/health/ready"} {
		start := time.Now()
		a := do(t, "GET", base+p, "", nil)
		if el := time.Since(start); el > time.Second {
			t.Errorf("%s took %s with hanging dependencies", p, el)
		}
		if a.code == 0 {
			t.Errorf("%s: no answer", p)
		}
	}
}

func TestReadiness(t *testing.T) {
	var started, ready atomicErr
	started.set(errors.New("no"))
	env := start(t, Options{Listeners: []Listener{adminListener()}}, func(d *Deps) {
		d.Started = func() bool { return started.get() == nil }
		d.Ready = ready.get
	})
	base := "http://" + env.addrs["admin"]
	check := func(path string, code int, body string) {
		t.Helper()
		a := do(t, "GET", base+path, "", nil)
		if a.code != code || !strings.Contains(a.body, body) {
			t.Fatalf("%s: %d %q, want %d %q", path, a.code, a.body, code, body)
		}
	}
	check("/health/startup", 503, "STARTING")
	check("/health/ready", 503, "starting")
	started.set(nil)
	check("/health/startup", 200, "OK")
	check("/health/ready", 200, "OK")
	ready.set(errors.New("0 of 2 udp readers reading"))
	check("/health/ready", 503, "udp readers")
	ready.set(nil)
	env.srv.StartDraining()
	check("/health/ready", 503, "shutting down")
	check("/health/probes/readiness", 503, "shutting down")
	check("/health/live", 204, "")
	check("/healthcheck", 200, "ok")
}

func TestDependenciesPagination(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	var e atomicErr
	var n int
	var mu sync.Mutex
	_ = env.hr.Register("flappy", health.Soft, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%2 == 0 {
			return errors.New("down")
		}
		return e.get()
	})
	base := "http://" + env.addrs["admin"]
	type depsAnswer struct {
		Dependencies map[string]health.DependencyState
	}
	get := func(q string) health.DependencyState {
		a := do(t, "GET", base+"/health/dependencies"+q, "", nil)
		var d depsAnswer
		if err := json.Unmarshal([]byte(a.body), &d); err != nil {
			t.Fatalf("%s: %v", a.body, err)
		}
		return d.Dependencies["flappy"]
	}
	garnertest.WaitFor(t, "6 events", 5*time.Second, func() bool { return get("?limit=100").EventsKept >= 6 })
	p1 := get("?limit=2")
	if len(p1.Events) != 2 || p1.NextBefore == nil {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := get("?limit=2&before=" + p1.NextBefore.Format(time.RFC3339Nano))
	if len(p2.Events) != 2 || !p2.Events[0].Started.Before(p1.Events[1].Started) {
		t.Fatalf("page 2 does not continue page 1: %+v then %+v", p1.Events, p2.Events)
	}
	if d := get("?limit=0"); len(d.Events) != 0 {
		t.Fatalf("limit=0: %d events", len(d.Events))
	}
	if d := get(""); len(d.Events) > defaultEventLimit {
		t.Fatalf("default limit: %d events", len(d.Events))
	}
}
