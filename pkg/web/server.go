// Package web serves garner's HTTP surface: the admin server (admin-addr:
// health, probes, dependencies, self-metrics, expvar, pprof, the status page)
// and gostatsd's named HTTP servers ([http.<name>]), each serving the groups
// of endpoints its flags enable. Other components mount their ingestion
// handlers (the forwarding protocol's /v2/raw, ...) with HandleIngestion.
//
// Every handler only reads state kept elsewhere (the health registry, the
// metrics registry): none calls a downstream system, so health answers stay
// fast when every dependency hangs. HTTP.md documents every endpoint.
package web

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/health"
)

// Hardening limits shared by every server.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 60 * time.Second  // whole request, body included (ingestion)
	WriteTimeout      = 150 * time.Second // above the longest profile (MaxProfileSeconds)
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
	// MaxProfileSeconds caps ?seconds= of /debug/pprof/profile and trace.
	MaxProfileSeconds = 120
	// ServerHeader is the Server response header: no version, on purpose.
	ServerHeader = "garner"
)

// Listener is one HTTP server: the admin server (Admin true) or one of
// gostatsd's [http.<name>] servers. The flags choose which endpoint groups
// it serves.
//
// Keys: the admin server is admin-addr with enable-prof, enable-expvar and
// enable-ingestion; a gostatsd server is http.<name>.address with
// http.<name>.enable-prof, -expvar, -ingestion and -healthcheck. Every flag
// defaults to false (the zero value) except as config sets it.
type Listener struct {
	Name    string // "admin" for admin-addr, else the [http.<name>] section name
	Address string // host:port; required
	// Admin serves everything that is not behind a flag below: the status
	// page, /status, /metrics and the health endpoints.
	Admin       bool
	Prof        bool // /debug/pprof/... (enable-prof)
	Expvar      bool // /expvar (enable-expvar)
	Healthcheck bool // /healthcheck, /deepcheck and the {base} health family (enable-healthcheck; always on admin-addr)
	Ingestion   bool // handlers mounted with HandleIngestion (enable-ingestion)
	// TLS, when set, makes the server HTTPS only (HTTP/1.1; a plain HTTP
	// request gets 400), failed handshakes counted in
	// garner_tls_handshake_errors_total{listener=Name}; built by
	// tlsconf.ServerConfig. Nil = plain HTTP.
	TLS *tls.Config
}

// Options configures the servers; config maps admin-addr, the
// [http.<name>] sections and the keys named below onto it. Start from
// DefaultOptions; a zero field takes its default.
type Options struct {
	// Listeners are the servers to run: admin-addr first, then http-servers
	// in order. Default none.
	Listeners []Listener
	// BasePath of the Kubernetes-style health endpoints (key
	// health-base-path). Default "/health"; "" = default.
	BasePath string
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every endpoint except the probes and /healthcheck (key admin-token).
	// Default "" = no token.
	Token string
	// IngestionToken, when set, is the bearer token of the ingestion
	// endpoints (key ingestion-token) instead of Token: forwarders hold it,
	// not the admin token, and Token no longer opens ingestion. Default ""
	// = ingestion takes Token, as the other endpoints.
	IngestionToken string
	// MaxBodySize bounds the body of an ingestion request, in bytes, before
	// any decompression, which the handler bounds itself (key
	// ingestion.max-body-bytes). Default 16 MiB; 0 = default.
	MaxBodySize int64
	// Hostname and ServerMode are reported by {base}/up (keys hostname and
	// server-mode). Default "".
	Hostname   string
	ServerMode string
	// ShutdownTimeout bounds how long Run waits for requests in flight
	// (profiles are cut short) once its context ends (no key). Default 5s;
	// 0 = default.
	ShutdownTimeout time.Duration
	// StatsInterval is how often the status page's rates are sampled (no
	// key). Default 5s; 0 = default.
	StatsInterval time.Duration
}

// DefaultOptions returns the servers' defaults, with no listener.
func DefaultOptions() Options {
	return Options{
		BasePath:        "/health",
		MaxBodySize:     16 << 20,
		ShutdownTimeout: 5 * time.Second,
		StatsInterval:   5 * time.Second,
	}
}

// Deps is what the servers read from.
type Deps struct {
	Log        logrus.FieldLogger
	Registerer prometheus.Registerer // garner_http_* and garner_build_info
	Gatherer   prometheus.Gatherer   // served on /metrics, summarised on /expvar and the status page
	Health     *health.Registry
	// Flush, when set, reports the last flush's completion time and duration.
	Flush func() (time.Time, time.Duration)
	// Started, when set, reports whether startup is complete (receivers
	// reading). Unset = complete.
	Started func() bool
	// Ready, when set, returns why garner cannot take traffic (nil = it
	// can). Readiness is also 503 once StartDraining was called.
	Ready func() error
}

// BindError is returned by New when an address cannot be bound.
type BindError struct {
	Listener string
	Address  string
	Err      error
}

func (e *BindError) Error() string {
	return fmt.Sprintf("cannot listen on %q for http server %q: %v", e.Address, e.Listener, e.Err)
}

func (e *BindError) Unwrap() error { return e.Err }

// Server is the set of HTTP servers. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	deps    Deps
	log     logrus.FieldLogger
	started time.Time
	creds   atomic.Pointer[credentials] // SetTokens swaps them
	m       *httpMetrics
	prof    *profSlot
	stats   *statsSampler

	servers []*served

	draining        atomic.Bool // readiness is 503
	ingestionClosed atomic.Bool // ingestion answers 503
	ingestMu        sync.RWMutex
	ingestWG        sync.WaitGroup

	closeOnce sync.Once
}

type served struct {
	l   Listener
	ln  net.Listener
	mux *http.ServeMux
	srv *http.Server
}

// New binds every listener (so that a taken address fails the start before
// anything runs) and builds their handlers. Run serves them. On error, the
// listeners already bound are closed and the error is a *BindError.
func New(opts Options, deps Deps) (*Server, error) {
	def := DefaultOptions()
	if opts.BasePath == "" {
		opts.BasePath = def.BasePath
	}
	opts.BasePath = "/" + strings.Trim(opts.BasePath, "/")
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = def.MaxBodySize
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = def.ShutdownTimeout
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = def.StatsInterval
	}
	if deps.Log == nil {
		deps.Log = logrus.New()
	}
	s := &Server{
		opts:    opts,
		deps:    deps,
		log:     deps.Log,
		started: time.Now(),
		prof:    newProfSlot(),
	}
	if deps.Health != nil {
		s.started = deps.Health.Started()
	}
	s.creds.Store(newCredentials(opts.Token, opts.IngestionToken))
	s.m = newHTTPMetrics(deps.Registerer)
	s.stats = newStatsSampler(deps.Gatherer, deps.Flush, opts.StatsInterval)
	for _, l := range opts.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			s.Close()
			return nil, &BindError{Listener: l.Name, Address: l.Address, Err: err}
		}
		if l.TLS != nil {
			ln = s.tlsListener(l, ln)
		}
		sv := &served{l: l, ln: ln, mux: http.NewServeMux()}
		s.routes(sv)
		sv.srv = &http.Server{
			Handler:           s.wrap(sv),
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      WriteTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          newErrorLog(deps.Log.WithField("http_server", l.Name)),
		}
		s.servers = append(s.servers, sv)
	}
	return s, nil
}

// Addrs returns the bound address of every listener by name (useful with
// port 0).
func (s *Server) Addrs() map[string]string {
	out := make(map[string]string, len(s.servers))
	for _, sv := range s.servers {
		out[sv.l.Name] = sv.ln.Addr().String()
	}
	return out
}

// HandleIngestion mounts h at pattern (a net/http ServeMux pattern such as
// "POST /v2/raw") on every server with ingestion enabled. The handler gets
// the token check (when admin-token is set), a body bounded by
// Options.MaxBodySize (reading past it fails with *http.MaxBytesError; answer
// 413), 503 + Retry-After once StopIngestion was called, and request
// metrics. It may be called at any time; it panics on a pattern that
// conflicts with an existing route, like http.ServeMux.Handle.
func (s *Server) HandleIngestion(pattern string, h http.Handler) {
	for _, sv := range s.servers {
		if sv.l.Ingestion {
			s.mountIngestion(sv, pattern, h)
		}
	}
}

// HandleAdmin mounts h at pattern (e.g. "GET /debug/cardinality") on every
// admin server, behind the token check (when admin-token is set) and with
// request metrics labelled name. Like HandleIngestion it may be called at
// any time and panics on a conflicting pattern.
func (s *Server) HandleAdmin(pattern, name string, h http.Handler) {
	for _, sv := range s.servers {
		if sv.l.Admin {
			s.route(sv, pattern, name, false, h)
		}
	}
}

// IngestionEnabled reports whether any server serves ingestion handlers.
func (s *Server) IngestionEnabled() bool {
	for _, sv := range s.servers {
		if sv.l.Ingestion {
			return true
		}
	}
	return false
}

// StartDraining makes readiness answer 503 from now on (shutdown started).
// Everything else keeps working.
func (s *Server) StartDraining() { s.draining.Store(true) }

// Draining reports whether StartDraining was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// StopIngestion makes ingestion handlers answer 503 from now on and waits
// for the requests already in them to finish (bounded by ctx), so that a
// final flush after it includes everything that was accepted.
func (s *Server) StopIngestion(ctx context.Context) error {
	s.ingestMu.Lock()
	s.ingestionClosed.Store(true)
	s.ingestMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.ingestWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingestion requests still running: %w", ctx.Err())
	}
}

// Run serves every listener until ctx is cancelled, then shuts the servers
// down (requests in flight get Options.ShutdownTimeout) and returns once
// every serving goroutine has exited. It returns the first serving error,
// or nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(s.servers)+1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, sv := range s.servers {
		wg.Go(func() {
			s.log.WithFields(logrus.Fields{"http_server": sv.l.Name, "address": sv.ln.Addr().String(), "tls": sv.l.TLS != nil}).Info("serving http")
			if err := sv.srv.Serve(sv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http server %q on %q: %w", sv.l.Name, sv.l.Address, err)
				cancel()
			}
		})
	}
	wg.Go(func() {
		s.stats.run(sctx, s.opts.StatsInterval)
	})
	<-sctx.Done()
	s.StartDraining()
	shctx, shcancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	for _, sv := range s.servers {
		if err := sv.srv.Shutdown(shctx); err != nil {
			_ = sv.srv.Close()
		}
	}
	shcancel()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// Close closes the listeners of a Server whose Run was never called.
// Calling it after Run has no effect beyond closing what is still open.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		for _, sv := range s.servers {
			_ = sv.ln.Close()
		}
	})
}

// credentials are the bearer tokens in force; nil = none (ingest nil:
// ingestion takes admin).
type credentials struct{ admin, ingest []byte }

func newCredentials(admin, ingestion string) *credentials {
	c := &credentials{}
	if admin != "" {
		c.admin = []byte(admin)
	}
	if ingestion != "" {
		c.ingest = []byte(ingestion)
	}
	return c
}

func adminToken(c *credentials) []byte  { return c.admin }
func ingestToken(c *credentials) []byte { return c.ingest }

// SetTokens replaces the admin and ingestion tokens (Options.Token and
// IngestionToken) for the requests from now on: garner re-reads its token
// files on SIGHUP. Which endpoints need a token was decided by New, so a
// token cannot be turned on or off here: that is refused, and nothing
// changes.
func (s *Server) SetTokens(admin, ingestion string) error {
	cur, next := s.creds.Load(), newCredentials(admin, ingestion)
	if (cur.admin == nil) != (next.admin == nil) || (cur.ingest == nil) != (next.ingest == nil) {
		return errors.New("turning admin-token or ingestion-token on or off needs a restart")
	}
	s.creds.Store(next)
	return nil
}

// authorized checks the bearer token against token in constant time; a
// nil token lets every request in.
func authorized(r *http.Request, token []byte) bool {
	if token == nil {
		return true
	}
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(prefix):])), token) == 1
}
