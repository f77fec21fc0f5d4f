package web

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// The CPU profile endpoint: one at a time, freed when the client goes away.

func TestProfileSingleFlight(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	base := "http://" + env.addrs["admin"]

	tests := []struct{ name, first, second string }{
		{"profile then profile", "/debug/pprof/profile?seconds=1", "/debug/pprof/profile?seconds=1"},
		{"profile then trace", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"},
		{"trace then delta heap", "/debug/pprof/trace?seconds=1", "/debug/pprof/heap?seconds=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := make(chan answer, 1)
			go func() { first <- do(t, "GET", base+tt.first, "", nil) }()
			waitBusy(t, env.srv)
			a := do(t, "GET", base+tt.second, "", nil)
			if a.code != http.StatusTooManyRequests {
				t.Fatalf("concurrent request: %d, want 429", a.code)
			}
			ra, err := strconv.Atoi(a.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 2 {
				t.Fatalf("Retry-After %q, want 1..2 seconds", a.header.Get("Retry-After"))
			}
			if f := <-first; f.code != 200 || len(f.body) == 0 {
				t.Fatalf("first request: %d, %d bytes", f.code, len(f.body))
			}
			// The slot is free again.
			if a := do(t, "GET", base+"/debug/pprof/trace?seconds=0.05", "", nil); a.code != 200 {
				t.Fatalf("after the first finished: %d", a.code)
			}
		})
	}

	t.Run("client going away frees the slot", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/debug/pprof/profile?seconds=60", nil)
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitBusy(t, env.srv)
		cancel()
		<-errc
		garnertest.WaitFor(t, "the slot to be freed after the client went away", 5*time.Second, func() bool { return !env.srv.prof.isBusy() })
		if a := do(t, "GET", base+"/debug/pprof/profile?seconds=1", "", nil); a.code != 200 {
			t.Fatalf("next profile: %d", a.code)
		}
	})
}

func waitBusy(t *testing.T, s *Server) {
	t.Helper()
	garnertest.WaitFor(t, "the profile to start", 5*time.Second, s.prof.isBusy)
}
