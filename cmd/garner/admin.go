package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/flush"
	"github.com/garner-metrics/garner/pkg/health"
	"github.com/garner-metrics/garner/pkg/version"
	"github.com/garner-metrics/garner/pkg/web"
)

// admin is garner's HTTP side: the servers (admin-addr and [http.<name>]),
// the health registry they read, and the shutdown grace period.
//
// Other components mount their HTTP handlers on web (web.HandleIngestion)
// and register their dependencies in health (health.Register).
type admin struct {
	cfg    *config.Config
	log    logrus.FieldLogger
	web    *web.Server
	health *health.Registry

	receivers atomic.Pointer[[]readingChecker]
	started   atomic.Bool // every receiver was reading once: startup is complete
}

// readingChecker is what the receivers expose for the health checks.
type readingChecker interface {
	Reading() error
}

// errAddrInUse is the start failure for an admin address another process
// holds; main exits with exitListen.
var errAddrInUse = errors.New("address in use")

// newAdmin builds the health registry (internal checks, one soft dependency
// per backend that can be checked) and binds every HTTP listener. Call it
// before the statsd listeners are bound: when admin-addr is taken, another
// garner most likely runs, and binding the statsd port with SO_REUSEPORT
// would silently share its traffic.
func newAdmin(cfg *config.Config, log logrus.FieldLogger, reg *prometheus.Registry,
	agg *aggregator.Aggregator, flusher *flush.Flusher, bs []backends.Backend) (*admin, error) {
	a := &admin{cfg: cfg, log: log}
	a.health = health.New(cfg.Admin.Health, log.WithField("component", "health"), reg)

	must := func(err error) {
		if err != nil {
			panic(err) // names are fixed here: a duplicate is a bug
		}
	}
	must(a.health.RegisterInternal("receivers", a.checkReceivers))
	must(a.health.RegisterInternal("shards", agg.CheckShards))
	stale := 2*cfg.FlushInterval + 5*time.Second
	must(a.health.RegisterInternal("flush", func() error {
		last, _ := flusher.LastFlush()
		if ago := time.Since(last); ago > stale {
			return fmt.Errorf("last flush %s ago (flush-interval %s)", ago.Round(time.Second), cfg.FlushInterval)
		}
		return nil
	}))
	for _, b := range bs {
		if hc, ok := b.(backends.HealthChecker); ok {
			if err := a.health.Register(b.Name(), health.Soft, hc.CheckHealth); err != nil {
				return nil, err
			}
		}
	}

	if err := watchExpiry(cfg, log.WithField("component", "tls_expiry"), reg, a.health); err != nil {
		return nil, err
	}

	reg.MustRegister(buildInfo())

	var ls []web.Listener
	if cfg.Admin.Addr != "" {
		l := web.Listener{
			Name: "admin", Address: cfg.Admin.Addr, Admin: true, Healthcheck: true,
			Prof: cfg.Admin.EnableProf, Expvar: cfg.Admin.EnableExpvar, Ingestion: cfg.Admin.EnableIngestion,
		}
		var err error
		if l.TLS, err = serverTLS(cfg.TLS.Admin, "admin-tls-cert-file", log.WithFields(logrus.Fields{"component": "http", "http_server": "admin"})); err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	for _, s := range cfg.Admin.HTTPServers {
		l := web.Listener{
			Name: s.Name, Address: s.Address, Healthcheck: s.EnableHealthcheck,
			Prof: s.EnableProf, Expvar: s.EnableExpvar, Ingestion: s.EnableIngestion,
		}
		var err error
		if l.TLS, err = serverTLS(cfg.TLS.HTTP[s.Name], "http."+s.Name+".tls-cert-file", log.WithFields(logrus.Fields{"component": "http", "http_server": s.Name})); err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	wo := web.DefaultOptions()
	wo.Listeners = ls
	wo.BasePath = cfg.Admin.HealthBasePath
	wo.Token = cfg.Admin.Token
	wo.IngestionToken = cfg.Auth.IngestionToken
	wo.MaxBodySize = cfg.Forward.Ingestion.MaxBodyBytes
	wo.Hostname = cfg.Hostname
	wo.ServerMode = cfg.Forward.ServerMode
	srv, err := web.New(wo, web.Deps{
		Log:        log.WithField("component", "http"),
		Registerer: reg,
		Gatherer:   reg,
		Health:     a.health,
		Flush:      flusher.LastFlush,
		Started:    a.startupComplete,
		Ready:      a.checkReceivers,
	})
	if err != nil {
		return nil, a.explainBindError(err)
	}
	a.web = srv
	return a, nil
}

// explainBindError makes a listen failure a start failure (exitListen)
// and turns "address in use" into a message that says who holds it, asking
// {base}/up there.
func (a *admin) explainBindError(err error) error {
	var be *web.BindError
	if !errors.As(err, &be) {
		return err
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return failListen(err)
	}
	key := "admin-addr"
	if be.Listener != "admin" {
		key = "http." + be.Listener + ".address"
	}
	if other := a.askUp(be.Address); other != nil {
		return failListen(fmt.Errorf("%w: another garner is already running on %s %q (version %s, commit %s, up %s): stop it, or give this one another %s",
			errAddrInUse, key, be.Address, other.Version, other.Commit, other.Uptime, key))
	}
	return failListen(fmt.Errorf("%w: %s %q is taken by another process; another instance may already be running: stop it, or choose another %s",
		errAddrInUse, key, be.Address, key))
}

// askUp asks whatever listens on addr for {base}/up and returns its answer
// if it is garner's.
func (a *admin) askUp(addr string) *web.UpBody {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(host, port)+a.cfg.Admin.HealthBasePath+"/up", nil)
	if err != nil {
		return nil
	}
	if a.cfg.Admin.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.Admin.Token)
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var up web.UpBody
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&up) != nil || up.Service != "garner" {
		return nil
	}
	return &up
}

// setReceivers gives the receivers to the health checks.
func (a *admin) setReceivers(rs []runner) {
	var cs []readingChecker
	for _, r := range rs {
		if c, ok := r.(readingChecker); ok {
			cs = append(cs, c)
		}
	}
	a.receivers.Store(&cs)
}

// checkReceivers is the "receivers" check and readiness: every receiver is
// reading. The first time it passes, startup is complete.
func (a *admin) checkReceivers() error {
	rs := a.receivers.Load()
	if rs == nil {
		return errors.New("receivers not started")
	}
	var errs []error
	for _, r := range *rs {
		if err := r.Reading(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.started.Store(true)
	return nil
}

// startupComplete reports whether every receiver was reading at least once.
func (a *admin) startupComplete() bool {
	return a.started.Load() || a.checkReceivers() == nil
}

// graceful returns a context for the receivers that ends shutdown-grace
// after sig ends. Meanwhile readiness answers 503 and ingestion goes on,
// so that load balancers stop sending; a second SIGTERM/SIGINT cuts the
// grace short. Ingestion over HTTP stops before the context ends, so the
// final flush includes every request that was answered.
func (a *admin) graceful(sig context.Context) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	context.AfterFunc(sig, func() {
		defer cancel()
		a.web.StartDraining()
		if g := a.cfg.Admin.ShutdownGrace; g > 0 {
			a.log.WithField("shutdown_grace", g.String()).Info("shutting down: readiness answers 503; still ingesting for the grace period")
			again := make(chan os.Signal, 1)
			signal.Notify(again, syscall.SIGTERM, syscall.SIGINT)
			t := time.NewTimer(g)
			select {
			case <-t.C:
			case <-again:
				a.log.Info("second signal: ending the grace period now")
			}
			t.Stop()
			signal.Stop(again)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := a.web.StopIngestion(sctx); err != nil {
			a.log.WithError(err).Warn("http ingestion did not finish in time")
		}
	})
	return ctx
}

// run runs the dependency prober and the HTTP servers until ctx ends (after
// the final flush) and returns when both have stopped.
func (a *admin) run(ctx context.Context) error {
	if len(a.web.Addrs()) == 0 {
		return nil // nobody to read the probes: do not probe
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.health.Run(ctx)
	}()
	err := a.web.Run(ctx)
	<-done
	return err
}

// close releases the listeners when run was never called (a later start
// step failed).
func (a *admin) close() { a.web.Close() }

func buildInfo() prometheus.Collector {
	v := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "garner_build_info",
		Help: "Always 1; the labels say which garner build runs.",
		ConstLabels: prometheus.Labels{
			"version": v.Version, "commit": v.Commit, "build_date": v.BuildDate, "goversion": v.GoVersion,
		},
	})
	g.Set(1)
	return g
}
