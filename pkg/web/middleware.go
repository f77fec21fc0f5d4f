package web

import (
	"encoding/json"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/ratelog"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	refused  *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_http_requests_total",
			Help: "HTTP requests answered, by server, handler and status code.",
		}, []string{"server", "handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "garner_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by server and handler.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"server", "handler"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "garner_http_requests_in_flight",
			Help: "HTTP requests being answered, by server.",
		}, []string{"server"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_http_refused_requests_total",
			Help: "HTTP requests refused before their handler ran, by reason (unauthorized, profile_busy, shutting_down).",
		}, []string{"server", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.inflight, m.refused)
	}
	return m
}

// route is what every handler is registered through: it adds the auth
// check (unless open) and the request metrics labelled with the handler's
// name.
func (s *Server) route(sv *served, pattern, name string, open bool, h http.Handler) {
	if !open {
		h = s.protect(sv, h)
	}
	sv.mux.Handle(pattern, s.instrument(sv, name, h))
}

func (s *Server) instrument(sv *served, name string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"server": sv.l.Name, "handler": name}
	h = promhttp.InstrumentHandlerDuration(s.m.duration.MustCurryWith(labels), h)
	return promhttp.InstrumentHandlerCounter(s.m.requests.MustCurryWith(labels), h)
}

// protect answers 401 without a valid bearer token (when one is configured).
func (s *Server) protect(sv *served, h http.Handler) http.Handler {
	if s.token == nil {
		return h
	}
	refused := s.m.refused.WithLabelValues(sv.l.Name, "unauthorized")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			refused.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="garner"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs the admin token: send \"Authorization: Bearer <admin-token>\"")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// wrap is each server's outermost handler.
func (s *Server) wrap(sv *served) http.Handler {
	inflight := s.m.inflight.WithLabelValues(sv.l.Name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Inc()
		defer inflight.Dec()
		w.Header().Set("Server", ServerHeader)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		sv.mux.ServeHTTP(w, r)
	})
}

// ingestion wraps a handler mounted with HandleIngestion.
func (s *Server) ingestion(sv *served, h http.Handler) http.Handler {
	refused := s.m.refused.WithLabelValues(sv.l.Name, "shutting_down")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ingestMu.RLock()
		if s.ingestionClosed.Load() {
			s.ingestMu.RUnlock()
			refused.Inc()
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "shutting_down", "garner is shutting down and takes no more data; send to another instance")
			return
		}
		s.ingestWG.Add(1)
		s.ingestMu.RUnlock()
		defer s.ingestWG.Done()
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodySize)
		h.ServeHTTP(w, r)
	})
}

// mountIngestion routes the ingestion pattern through auth and metrics.
// (HandleIngestion calls it for each server with ingestion enabled.)
func (s *Server) mountIngestion(sv *served, pattern string, h http.Handler) {
	s.route(sv, pattern, "ingestion "+pattern, false, s.ingestion(sv, h))
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, errorBody{Error: kind, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"internal","message":"cannot encode the answer"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeText(w http.ResponseWriter, code int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}

// errorLogWriter sends net/http's own error log (TLS handshakes, panics in
// handlers, accept errors) to logrus, rate-limited: a client can trigger
// these at will.
type errorLogWriter struct {
	log logrus.FieldLogger
	lim *ratelog.Limiter
}

func (e *errorLogWriter) Write(p []byte) (int, error) {
	if l := e.lim.Entry(e.log); l != nil {
		l.Warn(string(trimNewline(p)))
	}
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

func newErrorLog(l logrus.FieldLogger) *log.Logger {
	return log.New(&errorLogWriter{log: l, lim: ratelog.Every(time.Minute, 10)}, "", 0)
}
