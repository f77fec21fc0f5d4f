package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
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
		h = s.protect(sv, h, adminToken, "admin-token")
	}
	sv.mux.Handle(pattern, s.instrument(sv, name, h))
}

func (s *Server) instrument(sv *served, name string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"server": sv.l.Name, "handler": name}
	h = promhttp.InstrumentHandlerDuration(s.m.duration.MustCurryWith(labels), h)
	return promhttp.InstrumentHandlerCounter(s.m.requests.MustCurryWith(labels), h)
}

// protect answers 401 without the token that token picks from the
// credentials in force (when New had one: SetTokens cannot add one); key
// names it for the caller.
func (s *Server) protect(sv *served, h http.Handler, token func(*credentials) []byte, key string) http.Handler {
	if token(s.creds.Load()) == nil {
		return h
	}
	msg := "this endpoint needs the " + strings.TrimSuffix(key, "-token") + " token: send \"Authorization: Bearer <" + key + ">\""

	refused := s.m.refused.WithLabelValues(sv.l.Name, "unauthorized")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r, token(s.creds.Load())) {
			refused.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="garner"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", msg)
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
		if _, pattern := sv.mux.Handler(r); pattern == "" {
			// No route: the mux's own 404 or 405 (with Allow), or a
			// redirect. Errors become garner's JSON error body.
			je := &jsonErrors{ResponseWriter: w}
			sv.mux.ServeHTTP(je, r)
			je.finish(r)
			return
		}
		sv.mux.ServeHTTP(w, r)
	})
}

// jsonErrors turns the text/plain error answers of handlers garner does
// not write itself (net/http's mux, http.Error in ingestion, the body
// limit's 413) into the JSON error body every endpoint documents, with
// Cache-Control: no-store. Other answers pass through unchanged.
type jsonErrors struct {
	http.ResponseWriter
	code int // an error being rewritten; 0 = passing through
	text bytes.Buffer
}

func (j *jsonErrors) WriteHeader(code int) {
	if code >= 400 && j.code == 0 && strings.HasPrefix(j.Header().Get("Content-Type"), "text/plain") {
		j.code = code
		return
	}
	j.ResponseWriter.WriteHeader(code)
}

func (j *jsonErrors) Write(b []byte) (int, error) {
	if j.code != 0 {
		return j.text.Write(b)
	}
	return j.ResponseWriter.Write(b)
}

// finish writes the rewritten error, if any.
func (j *jsonErrors) finish(r *http.Request) {
	if j.code == 0 {
		return
	}
	kind := strings.ReplaceAll(strings.ToLower(http.StatusText(j.code)), " ", "_")
	msg := strings.TrimSpace(j.text.String())
	switch j.code {
	case http.StatusNotFound:
		msg = fmt.Sprintf("no endpoint %q on this server (HTTP.md lists them; some need enable-prof, enable-expvar or enable-ingestion)", r.URL.Path)
	case http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("%s is not allowed on %q; allowed: %s", r.Method, r.URL.Path, j.Header().Get("Allow"))
	}
	writeError(j.ResponseWriter, j.code, kind, msg)
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
		w.Header().Set("Cache-Control", "no-store")
		je := &jsonErrors{ResponseWriter: w}
		r.Body = http.MaxBytesReader(je, r.Body, s.opts.MaxBodySize)
		h.ServeHTTP(je, r)
		je.finish(r)
	})
}

// mountIngestion routes the ingestion pattern through auth and metrics.
// (HandleIngestion calls it for each server with ingestion enabled.)
func (s *Server) mountIngestion(sv *served, pattern string, h http.Handler) {
	if s.creds.Load().ingest == nil {
		s.route(sv, pattern, "ingestion "+pattern, false, s.ingestion(sv, h))
		return
	}
	s.route(sv, pattern, "ingestion "+pattern, true, s.protect(sv, s.ingestion(sv, h), ingestToken, "ingestion-token"))
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, errorBody{Error: kind, Message: msg})
}

// WriteJSON writes v as the JSON answer every garner endpoint gives:
// indented, application/json; charset=utf-8, Cache-Control: no-store, and
// without HTML escapes (a message shows <admin-token>, not \u003c...).
// Components mounting endpoints of their own (HandleAdmin) use it.
func WriteJSON(w http.ResponseWriter, code int, v any) { writeJSON(w, code, v) }

// WriteError writes garner's JSON error body {"error": kind, "message": msg}.
func WriteError(w http.ResponseWriter, code int, kind, msg string) { writeError(w, code, kind, msg) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	b := []byte(`{"error":"internal","message":"cannot encode the answer"}` + "\n")
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
	} else {
		b = buf.Bytes()
	}
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
