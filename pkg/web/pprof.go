package web

import (
	"fmt"
	"math"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"
)

// profSlot lets one timed profile (CPU profile, trace, or a delta profile
// asked with ?seconds=) run at a time. A request that finds it taken gets
// 429 at once, with Retry-After saying when the running one ends. The slot
// is released when the handler returns, which net/http/pprof does as soon as
// the client goes away (the request context ends).
type profSlot struct {
	mu    sync.Mutex
	busy  bool
	until time.Time
	what  string
}

func newProfSlot() *profSlot { return &profSlot{} }

// acquire takes the slot for d, or returns how long until it frees up.
func (p *profSlot) acquire(what string, d time.Duration) (release func(), wait time.Duration, runningWhat string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy {
		return nil, max(time.Until(p.until), time.Second), p.what
	}
	p.busy, p.until, p.what = true, time.Now().Add(d), what
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.busy = false
			p.mu.Unlock()
		})
	}, 0, ""
}

func (s *Server) pprofRoutes(sv *served) {
	s.route(sv, "GET /debug/pprof/", "pprof", false, s.pprofIndex(sv))
	s.route(sv, "GET /debug/pprof/cmdline", "pprof_cmdline", false, http.HandlerFunc(pprof.Cmdline))
	s.route(sv, "GET /debug/pprof/symbol", "pprof_symbol", false, http.HandlerFunc(pprof.Symbol))
	s.route(sv, "POST /debug/pprof/symbol", "pprof_symbol", false, http.HandlerFunc(pprof.Symbol))
	s.route(sv, "GET /debug/pprof/profile", "pprof_profile", false, s.singleFlight(sv, "profile", 30, true, http.HandlerFunc(pprof.Profile)))
	s.route(sv, "GET /debug/pprof/trace", "pprof_trace", false, s.singleFlight(sv, "trace", 1, false, http.HandlerFunc(pprof.Trace)))
}

// pprofIndex serves the index and the named profiles (heap, allocs,
// goroutine, block, mutex, threadcreate). A named profile asked with
// ?seconds= is a delta profile that takes that long: it takes the slot.
func (s *Server) pprofIndex(sv *served) http.Handler {
	delta := s.singleFlight(sv, "delta profile", 0, true, http.HandlerFunc(pprof.Index))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("seconds") != "" && len(r.URL.Path) > len("/debug/pprof/") {
			delta.ServeHTTP(w, r)
			return
		}
		pprof.Index(w, r)
	})
}

// singleFlight runs h only when the profile slot is free. defSeconds is the
// handler's default duration (net/http/pprof's) when ?seconds= is absent;
// whole says the handler reads ?seconds= as an integer (net/http/pprof
// silently turns "0.5" into its default there, so it is refused instead).
func (s *Server) singleFlight(sv *served, what string, defSeconds int, whole bool, h http.Handler) http.Handler {
	busy := s.m.refused.WithLabelValues(sv.l.Name, "profile_busy")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secs := float64(defSeconds)
		if v := r.URL.Query().Get("seconds"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 || math.IsNaN(f) || (whole && f != math.Trunc(f)) {
				kind := "a positive number"
				if whole {
					kind = "a positive whole number"
				}
				writeError(w, http.StatusBadRequest, "bad_request", "seconds: want "+kind+", got "+strconv.Quote(v))
				return
			}
			secs = f
		}
		if secs > MaxProfileSeconds {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("seconds: at most %d", MaxProfileSeconds))
			return
		}
		release, wait, running := s.prof.acquire(what, time.Duration(secs*float64(time.Second)))
		if release == nil {
			busy.Inc()
			retry := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			writeError(w, http.StatusTooManyRequests, "profile_busy",
				fmt.Sprintf("a %s is already running; only one profile or trace runs at a time: retry in %ds", running, retry))
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}

// isBusy reports whether a timed profile runs (for tests).
func (p *profSlot) isBusy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy
}
