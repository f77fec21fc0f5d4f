package web

import (
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/garner-metrics/garner/pkg/version"
)

// expvarBody has the stdlib expvar handler's cmdline and memstats plus
// garner's own counters. It is built per request instead of being published
// in the process-wide expvar registry, so several Servers (tests) coexist.
type expvarBody struct {
	Cmdline  []string          `json:"cmdline"`
	Memstats *runtime.MemStats `json:"memstats"`
	Garner   garnerVars        `json:"garner"`
}

type garnerVars struct {
	Totals
	Version                  string  `json:"version"`
	UptimeSeconds            float64 `json:"uptime_seconds"`
	LastFlushUnix            float64 `json:"last_flush_unix"`
	LastFlushDurationSeconds float64 `json:"last_flush_duration_seconds"`
	Goroutines               int     `json:"goroutines"`
}

func (s *Server) garnerVars() garnerVars {
	v := garnerVars{
		Totals:        readTotals(s.deps.Gatherer),
		Version:       version.Get().Version,
		UptimeSeconds: time.Since(s.started).Seconds(),
		Goroutines:    runtime.NumGoroutine(),
	}
	if s.deps.Flush != nil {
		at, d := s.deps.Flush()
		if !at.IsZero() {
			v.LastFlushUnix = float64(at.UnixNano()) / 1e9
		}
		v.LastFlushDurationSeconds = d.Seconds()
	}
	return v
}

func (s *Server) expvar(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, http.StatusOK, expvarBody{Cmdline: os.Args, Memstats: &ms, Garner: s.garnerVars()})
}
