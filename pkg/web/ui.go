package web

import (
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/garner-metrics/garner/pkg/health"
	"github.com/garner-metrics/garner/pkg/version"
)

// uiPage is the status page: one self-contained HTML document (inline CSS
// and JS, no external assets) that polls ui/data and renders it.
//
//go:embed ui.html
var uiPage []byte

// uiEvents is how many recent events per dependency the page shows.
const uiEvents = 5

func (s *Server) ui(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Content-Length", strconv.Itoa(len(uiPage)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(uiPage)
}

// Summary is what the status page shows (GET /ui/data).
type Summary struct {
	Status                 health.Status            `json:"status"`
	Timestamp              time.Time                `json:"timestamp"`
	Version                string                   `json:"version"`
	Commit                 string                   `json:"commit"`
	BuildDate              string                   `json:"build_date"`
	Hostname               string                   `json:"hostname"`
	ServerMode             string                   `json:"server_mode"`
	Role                   string                   `json:"role"` // standalone, aggregator (standalone with ingestion) or forwarder
	Uptime                 string                   `json:"uptime"`
	UptimeSeconds          float64                  `json:"uptime_seconds"`
	Ready                  bool                     `json:"ready"`
	Draining               bool                     `json:"draining"`
	Totals                 Totals                   `json:"totals"`
	Rates                  Rates                    `json:"rates"`
	LastFlush              *time.Time               `json:"last_flush"`
	LastFlushAgeSeconds    float64                  `json:"last_flush_age_seconds"`
	LastFlushDurationMs    float64                  `json:"last_flush_duration_ms"`
	Checks                 []health.CheckResult     `json:"checks"`
	DependenciesStatus     health.Status            `json:"dependencies_status"`
	Dependencies           []health.DependencyState `json:"dependencies"`
	RefreshIntervalSeconds float64                  `json:"refresh_interval_seconds"`
	// History is the last hour of rates, oldest first, one point per
	// refresh interval: the page's charts.
	History []Point `json:"history"`
}

func (s *Server) summary() Summary {
	v := version.Get()
	up := time.Since(s.started)
	sum := Summary{
		Timestamp: time.Now().UTC(), Version: v.Version, Commit: v.Commit, BuildDate: v.BuildDate,
		Hostname: s.opts.Hostname, ServerMode: s.opts.ServerMode,
		Uptime: up.Round(time.Second).String(), UptimeSeconds: up.Seconds(),
		Ready: s.readyErr() == nil, Draining: s.Draining(),
		Role:   s.role(),
		Totals: readTotals(s.deps.Gatherer),
		Checks: s.internal(), Dependencies: []health.DependencyState{},
		RefreshIntervalSeconds: s.opts.StatsInterval.Seconds(),
	}
	sum.Rates, sum.History = s.stats.current()
	if sum.Checks == nil {
		sum.Checks = []health.CheckResult{}
	}
	if s.deps.Flush != nil {
		at, d := s.deps.Flush()
		if !at.IsZero() {
			t := at.UTC()
			sum.LastFlush = &t
			sum.LastFlushAgeSeconds = time.Since(at).Seconds()
		}
		sum.LastFlushDurationMs = float64(d.Microseconds()) / 1000
	}
	if s.deps.Health != nil {
		sum.Dependencies = s.deps.Health.Dependencies(health.EventQuery{Limit: uiEvents})
	}
	sum.DependenciesStatus = health.Overall(sum.Dependencies)
	sum.Status = sum.DependenciesStatus
	for _, c := range sum.Checks {
		if !c.OK {
			sum.Status = health.StatusDown
		}
	}
	return sum
}

// role is what this garner does: a forwarder, an aggregator (it takes
// forwarded series over HTTP) or a standalone server.
func (s *Server) role() string {
	switch {
	case s.opts.ServerMode == "forwarder":
		return "forwarder"
	case s.IngestionEnabled():
		return "aggregator"
	}
	return "standalone"
}

func (s *Server) uiData(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.summary())
}
