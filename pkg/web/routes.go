package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/garner-metrics/garner/pkg/health"
	"github.com/garner-metrics/garner/pkg/version"
)

// routes registers the endpoint groups a listener's flags enable. A GET
// pattern also answers HEAD; other methods get 405 with an Allow header.
func (s *Server) routes(sv *served) {
	l := sv.l
	base := s.opts.BasePath
	if l.Admin || l.Healthcheck {
		s.route(sv, "GET /healthcheck", "healthcheck", true, http.HandlerFunc(s.healthcheck))
		s.route(sv, "GET /deepcheck", "deepcheck", false, http.HandlerFunc(s.deepcheck))
		s.route(sv, "GET "+base, "health", false, http.HandlerFunc(s.healthFull))
		s.route(sv, "GET "+base+"/live", "live", true, http.HandlerFunc(s.live))
		s.route(sv, "GET "+base+"/probes/liveness", "liveness", true, http.HandlerFunc(s.liveness))
		s.route(sv, "GET "+base+"/ready", "ready", true, http.HandlerFunc(s.ready))
		s.route(sv, "GET "+base+"/probes/readiness", "readiness", true, http.HandlerFunc(s.ready))
		s.route(sv, "GET "+base+"/startup", "startup", true, http.HandlerFunc(s.startup))
		s.route(sv, "GET "+base+"/probes/startup", "startup_probe", true, http.HandlerFunc(s.startup))
		s.route(sv, "GET "+base+"/up", "up", false, http.HandlerFunc(s.up))
		s.route(sv, "GET "+base+"/dependencies", "dependencies", false, http.HandlerFunc(s.dependencies))
	}
	if l.Admin {
		metrics := s.metricsHandler()
		s.route(sv, "GET /metrics", "metrics", false, metrics)
		s.route(sv, "GET "+base+"/metrics", "health_metrics", false, metrics)
		s.route(sv, "GET /status", "status", false, http.HandlerFunc(s.statusAll))
		s.route(sv, "GET /status/{check}", "status_check", false, http.HandlerFunc(s.statusOne))
		// The page itself holds no data (it is open, so that a browser can
		// load it and then send the token); its data endpoint is protected.
		s.route(sv, "GET /{$}", "ui", true, http.HandlerFunc(s.ui))
		s.route(sv, "GET /ui", "ui", true, http.HandlerFunc(s.ui))
		s.route(sv, "GET /ui/data", "ui_data", false, http.HandlerFunc(s.uiData))
	}
	if l.Expvar {
		s.route(sv, "GET /expvar", "expvar", false, http.HandlerFunc(s.expvar))
	}
	if l.Prof {
		s.pprofRoutes(sv)
	}
}

func (s *Server) metricsHandler() http.Handler {
	if s.deps.Gatherer == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "no metrics registry")
		})
	}
	return promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   false,
	})
}

// checksBody is gostatsd's /healthcheck and /deepcheck body.
type checksBody struct {
	OK     []string `json:"ok"`
	Failed []string `json:"failed"`
}

func checksOf(results []health.CheckResult) (checksBody, bool) {
	b := checksBody{OK: []string{}, Failed: []string{}}
	for _, r := range results {
		if r.OK {
			b.OK = append(b.OK, r.Name)
		} else {
			b.Failed = append(b.Failed, r.Name)
		}
	}
	return b, len(b.Failed) == 0
}

func (s *Server) internal() []health.CheckResult {
	if s.deps.Health == nil {
		return nil
	}
	return s.deps.Health.Internal()
}

func (s *Server) depResults() []health.CheckResult {
	if s.deps.Health == nil {
		return nil
	}
	return s.deps.Health.DependencyResults()
}

// healthcheck: internal health only; a dependency never fails it.
func (s *Server) healthcheck(w http.ResponseWriter, _ *http.Request) {
	b, ok := checksOf(s.internal())
	writeJSON(w, statusCode(ok, http.StatusInternalServerError), b)
}

// deepcheck: the downstream dependencies; 500 when any is down or not
// probed yet.
func (s *Server) deepcheck(w http.ResponseWriter, _ *http.Request) {
	b, ok := checksOf(s.depResults())
	writeJSON(w, statusCode(ok, http.StatusInternalServerError), b)
}

func statusCode(ok bool, bad int) int {
	if ok {
		return http.StatusOK
	}
	return bad
}

type fullHealth struct {
	Status         health.Status        `json:"status"`
	Timestamp      time.Time            `json:"timestamp"`
	Uptime         string               `json:"uptime"`
	UptimeSeconds  float64              `json:"uptime_seconds"`
	Version        string               `json:"version"`
	Commit         string               `json:"commit"`
	Ready          bool                 `json:"ready"`
	Draining       bool                 `json:"draining"`
	Checks         []health.CheckResult `json:"checks"`
	Dependencies   health.Status        `json:"dependencies"`
	ResponseTimeMs float64              `json:"response_time_ms"`
}

// healthFull: down (503) when an internal check fails or a hard dependency
// is down; degraded (200) when a soft dependency is down; up (200).
func (s *Server) healthFull(w http.ResponseWriter, _ *http.Request) {
	start := time.Now()
	v := version.Get()
	checks := s.internal()
	var deps []health.DependencyState
	if s.deps.Health != nil {
		deps = s.deps.Health.Dependencies(health.EventQuery{})
	}
	depStatus := health.Overall(deps)
	st := depStatus
	for _, c := range checks {
		if !c.OK {
			st = health.StatusDown
		}
	}
	checks = append(checks, s.depResults()...)
	up := time.Since(s.started)
	body := fullHealth{
		Status: st, Timestamp: time.Now().UTC(), Uptime: up.Round(time.Second).String(), UptimeSeconds: up.Seconds(),
		Version: v.Version, Commit: v.Commit, Ready: s.readyErr() == nil, Draining: s.Draining(),
		Checks: checks, Dependencies: depStatus,
	}
	if body.Checks == nil {
		body.Checks = []health.CheckResult{}
	}
	body.ResponseTimeMs = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, statusCode(st != health.StatusDown, http.StatusServiceUnavailable), body)
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) liveness(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "OK\n")
}

type notReady string

func (e notReady) Error() string { return string(e) }

func (s *Server) readyErr() error {
	if s.Draining() {
		return notReady("shutting down")
	}
	if s.deps.Started != nil && !s.deps.Started() {
		return notReady("starting")
	}
	if s.deps.Ready != nil {
		return s.deps.Ready()
	}
	return nil
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if err := s.readyErr(); err != nil {
		writeText(w, http.StatusServiceUnavailable, "NOT READY: "+err.Error()+"\n")
		return
	}
	writeText(w, http.StatusOK, "OK\n")
}

func (s *Server) startup(w http.ResponseWriter, _ *http.Request) {
	if s.deps.Started != nil && !s.deps.Started() {
		writeText(w, http.StatusServiceUnavailable, "STARTING\n")
		return
	}
	writeText(w, http.StatusOK, "OK\n")
}

// UpBody is the body of {base}/up; garner reads it from another instance
// to say which version holds the admin address.
type UpBody struct {
	Status        string  `json:"status"`
	Service       string  `json:"service"` // always "garner"
	Version       string  `json:"version"`
	Commit        string  `json:"commit"`
	BuildDate     string  `json:"build_date"`
	GoVersion     string  `json:"go_version"`
	Hostname      string  `json:"hostname"`
	ServerMode    string  `json:"server_mode"`
	Uptime        string  `json:"uptime"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Started       string  `json:"started"`
}

func (s *Server) up(w http.ResponseWriter, _ *http.Request) {
	v := version.Get()
	up := time.Since(s.started)
	writeJSON(w, http.StatusOK, UpBody{
		Status: "up", Service: "garner", Version: v.Version, Commit: v.Commit, BuildDate: v.BuildDate, GoVersion: v.GoVersion,
		Hostname: s.opts.Hostname, ServerMode: s.opts.ServerMode,
		Uptime: up.Round(time.Second).String(), UptimeSeconds: up.Seconds(), Started: s.started.UTC().Format(time.RFC3339),
	})
}

type depsBody struct {
	Status       health.Status                     `json:"status"`
	Timestamp    time.Time                         `json:"timestamp"`
	Dependencies map[string]health.DependencyState `json:"dependencies"`
}

// defaultEventLimit is the events per dependency {base}/dependencies shows
// without ?limit=.
const defaultEventLimit = 10

func (s *Server) dependencies(w http.ResponseWriter, r *http.Request) {
	q := health.EventQuery{Limit: defaultEventLimit}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit: want a whole number >= 0, got "+strconv.Quote(v))
			return
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "before: want an RFC 3339 time or unix seconds, got "+strconv.Quote(v))
			return
		}
		q.Before = t
	}
	body := depsBody{Status: health.StatusUp, Timestamp: time.Now().UTC(), Dependencies: map[string]health.DependencyState{}}
	if s.deps.Health != nil {
		deps := s.deps.Health.Dependencies(q)
		body.Status = health.Overall(deps)
		for _, d := range deps {
			body.Dependencies[d.Name] = d
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	sec, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(sec*1e9)), nil
}

type statusBody struct {
	Status string               `json:"status"` // OK or FAIL
	Checks []health.CheckResult `json:"checks"`
}

// statusAll lists every check: 200 when all are OK, 503 otherwise.
func (s *Server) statusAll(w http.ResponseWriter, _ *http.Request) {
	checks := append(s.internal(), s.depResults()...)
	body := statusBody{Status: "OK", Checks: checks}
	if body.Checks == nil {
		body.Checks = []health.CheckResult{}
	}
	for _, c := range checks {
		if !c.OK {
			body.Status = "FAIL"
		}
	}
	writeJSON(w, statusCode(body.Status == "OK", http.StatusServiceUnavailable), body)
}

// statusOne shows one check: 200 when OK, 503 when failing, 404 unknown.
func (s *Server) statusOne(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("check")
	if s.deps.Health == nil {
		writeError(w, http.StatusNotFound, "not_found", "no check named "+strconv.Quote(name))
		return
	}
	c, ok := s.deps.Health.Check(name)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no check named "+strconv.Quote(name)+"; known: "+strings.Join(s.deps.Health.Names(), ", "))
		return
	}
	writeJSON(w, statusCode(c.OK, http.StatusServiceUnavailable), c)
}
