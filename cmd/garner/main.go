// Command garner is a statsd-compatible metrics aggregation server.
//
// main only wires components together. Shutdown order (SIGTERM/SIGINT):
//
//  0. readiness answers 503 at once; ingestion goes on for shutdown-grace,
//     then HTTP ingestion stops (admin.go);
//  1. receivers stop reading after draining what the kernel already queued;
//     the periodic flush loop stops;
//  2. the final flush collects everything the shards hold (their queues
//     included) and delivers it to every backend, bounded by shutdown-timeout;
//  3. shards, the event dispatcher and backends stop; garner exits 0.
//
// A start failure is one plain "garner: ..." line on stderr and an exit
// code per class (exitConfig, exitListen below).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/all"
	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/flush"
	"github.com/garner-metrics/garner/pkg/forwarder"
	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/pkg/version"
)

// Exit codes, one per class of failure; README.md ("Exit codes") documents
// them for operators.
const (
	exitOK      = 0
	exitRuntime = 1 // garner started, then failed while running
	exitConfig  = 2 // bad flags, environment or configuration (also --check-config)
	exitListen  = 3 // a listen address cannot be bound: in use, or not allowed
)

// startError is a start failure: main prints it as one plain "garner: ..."
// line on stderr and exits with code.
type startError struct {
	code int
	err  error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func failConfig(err error) error { return &startError{exitConfig, err} }
func failListen(err error) error { return &startError{exitListen, err} }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// Catch the stop signals first: one that arrives while garner starts
	// must still end in a final flush and exit 0, not kill the process.
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	code, err := serve(sigCtx, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "garner: %v\n", err)
		var se *startError
		if errors.As(err, &se) {
			return se.code
		}
	}
	return code
}

// pipeline is everything a start builds before it binds a port: what
// --check-config builds too.
type pipeline struct {
	cfg           *config.Config // the pipeline's view (forwarderMode)
	fwd           *forwarder.Forwarder
	bs            []backends.Backend
	events        *flush.Events
	filterMetrics *filter.Metrics
	agg           *aggregator.Aggregator
	lines         *receiver.Lines
	flusher       *flush.Flusher
}

// build validates what the configuration alone cannot (backends' and the
// forwarder's settings, filters, ingestion) by building the components. It
// binds no port and starts no goroutine; a failure is a configuration error.
func build(loaded *config.Config, log logrus.FieldLogger, reg prometheus.Registerer) (*pipeline, error) {
	fwd, err := newForwarder(loaded, log, reg)
	if err != nil {
		return nil, failConfig(fmt.Errorf("cannot configure the forwarder: %w", err))
	}
	cfg := forwarderMode(loaded) // the pipeline's view; the loaded config stays as it is (see forward.go)
	bs, err := all.New(cfg, log, reg)
	if err != nil {
		return nil, failConfig(fmt.Errorf("cannot configure backends: %w", err))
	}
	if fwd != nil {
		bs = append(bs, fwd)
	}
	p := &pipeline{cfg: cfg, fwd: fwd, bs: bs}
	p.events = flush.NewEvents(flush.EventOptions{QueueLength: cfg.MaxEventQueueSize, MaxLength: cfg.MaxEventLength, Timeout: cfg.BackendTimeout}, bs, log, reg)
	p.filterMetrics = filter.NewMetrics(reg)
	rules, err := p.filterMetrics.Compile(cfg.Filters.Rules)
	if err != nil {
		p.close()
		return nil, failConfig(fmt.Errorf("cannot compile the filters: %w", err))
	}
	p.agg = aggregator.New(aggregator.Options{
		Shards:              cfg.MaxWorkers,
		MaxQueuedSamples:    cfg.MaxQueueSize,
		PercentThresholds:   cfg.PercentThreshold,
		Expiry:              cfg.Expiry,
		HistogramLimit:      cfg.HistogramLimit,
		DisabledSubMetrics:  cfg.DisabledSubMetrics,
		MaxSeries:           cfg.MaxSeries,
		MaxSeriesPerMetric:  cfg.MaxSeriesPerMetric,
		CardinalityOverflow: cfg.CardinalityOverflow,
		TimerAggregation:    cfg.Timers.Aggregation,
		HistogramMaxBuckets: cfg.Timers.HistogramMaxBuckets,
		SetAggregation:      cfg.Sets.Aggregation,
		HLLPrecision:        cfg.Sets.HLLPrecision,
		TimestampSlots:      timestampSlots(cfg),
	}, log, reg)
	p.lines = receiver.NewLines(receiver.Options{
		IgnoreHost:         cfg.IgnoreHost,
		Namespace:          cfg.Namespace,
		DefaultTags:        cfg.DefaultTags,
		GaugeDeltas:        cfg.GaugeDeltas,
		BadLinesPerMinute:  cfg.BadLinesPerMinute,
		Limits:             cfg.LineLimits,
		Rules:              rules,
		DisabledTagFormats: cfg.Protocol.DisabledTagFormats,
		Timestamps:         cfg.Protocol.Timestamps,
		TimestampMaxAge:    cfg.Protocol.TimestampMaxAge,
	}, p.agg, p.events, log, reg)
	p.flusher = flush.New(flush.Options{
		Interval: cfg.FlushInterval, Aligned: cfg.FlushAligned, Offset: cfg.FlushOffset, Timeout: cfg.BackendTimeout,
	}, p.agg, bs, log, reg)
	return p, nil
}

// timestampSlots are the intervals timestamped samples go to: the flush
// intervals, on the wall clock (flush-offset counts only for aligned flushes).
func timestampSlots(cfg *config.Config) aggregator.TimestampSlots {
	s := aggregator.TimestampSlots{Interval: cfg.FlushInterval}
	if cfg.FlushAligned {
		s.Offset = cfg.FlushOffset
	}
	return s
}

// close closes the backends (a start that fails, or --check-config).
func (p *pipeline) close() {
	for _, b := range p.bs {
		if c, ok := b.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// checkConfig is --check-config: load and build everything a start would,
// bind nothing, print the warnings and "ok" (exit 0) or what is wrong (exit 2).
func checkConfig(cfg *config.Config) (int, error) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := build(cfg, log, prometheus.NewRegistry())
	if err != nil {
		return exitConfig, err
	}
	defer p.close()
	if ingestionEnabled(cfg) {
		if _, err := newIngest(cfg, p.lines, log, prometheus.NewRegistry()); err != nil {
			return exitConfig, failConfig(fmt.Errorf("cannot set up forwarding ingestion: %w", err))
		}
	}
	for _, w := range cfg.Warnings {
		fmt.Printf("warning: %s\n", w)
	}
	fmt.Println("ok")
	return exitOK, nil
}

// serve starts garner and runs it until a signal (see the package doc). A
// start failure is a *startError; the code is for a start that succeeded.
func serve(sigCtx context.Context, args []string) (int, error) {
	loaded, err := config.Load(args)
	if errors.Is(err, config.ErrHelp) {
		return exitOK, nil
	}
	if err != nil {
		return exitConfig, failConfig(err)
	}
	if loaded.ShowVersion {
		fmt.Println(version.Get())
		return exitOK, nil
	}
	if loaded.CheckConfig {
		return checkConfig(loaded)
	}
	log := newLogger(loaded)
	rl := newReloader(args, loaded, log) // catches SIGHUP from here on
	for _, w := range loaded.Warnings {
		log.Warn(w)
	}
	if loaded.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(loaded.MemoryLimit))
		log.WithField("bytes", loaded.MemoryLimit).Info("memory-limit set (GOMEMLIMIT)")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	p, err := build(loaded, log, reg)
	if err != nil {
		return exitConfig, err
	}
	defer p.close()
	cfg, agg, lines, flusher, bs := p.cfg, p.agg, p.lines, p.flusher, p.bs
	adm, err := newAdmin(cfg, log, reg, agg, flusher, bs) // before the statsd port: see newAdmin
	var se *startError
	if errors.As(err, &se) {
		return exitListen, err
	}
	if err != nil {
		return exitConfig, failConfig(fmt.Errorf("cannot set up the http servers: %w", err))
	}
	defer adm.close()
	mountDebug(adm.web, cfg, agg, lines)
	if err := mountForwarding(adm, cfg, lines, p.fwd, log, reg); err != nil {
		return exitConfig, failConfig(fmt.Errorf("cannot set up forwarding ingestion: %w", err))
	}

	receivers, err := listen(cfg, lines, log, reg)
	if err != nil {
		return exitListen, failListen(fmt.Errorf("cannot start receivers: %w", err))
	}
	adm.setReceivers(receivers)
	log.WithFields(logrus.Fields{
		"version": version.Get().Version, "backends": cfg.Backends, "flush_interval": cfg.FlushInterval.String(),
		"shards": cfg.MaxWorkers,
	}).Info("garner started")

	// Background components live until after the final flush.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg errgroup.Group
	bg.Go(func() error { return agg.Run(bgCtx) })
	bg.Go(func() error { return p.events.Run(bgCtx) })
	bg.Go(func() error { return adm.run(bgCtx) })
	rl.on(func(next *config.Config) error {
		r, err := p.filterMetrics.Compile(next.Filters.Rules)
		if err == nil {
			lines.SetRules(r)
		}
		return err
	}, "filters", "filter.*", "drop-tag-keys", "max-tag-value-length", "mappings", "mapping.*")
	watchMappingFile(rl, bs, log)
	rl.onSignal(func() { reloadTLS(log.WithField("component", "tls")) })
	watchTokens(rl, adm.web, p.fwd, loaded, log)
	bg.Go(func() error { return rl.Run(bgCtx) })
	for _, b := range bs {
		if r, ok := b.(backends.Runner); ok {
			bg.Go(func() error { return r.Run(bgCtx) })
		}
	}

	// Receivers and the flush loop stop at the signal, or when one fails.
	g, gctx := errgroup.WithContext(adm.graceful(sigCtx)) // shutdown-grace after the signal
	for _, r := range receivers {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error { return flusher.Run(gctx) })
	if st := newStatser(cfg, reg, lines, log); st != nil {
		g.Go(func() error { return st.Run(gctx) })
	}
	code := exitOK
	if err := g.Wait(); err != nil {
		log.WithError(err).Error("garner failed")
		code = exitRuntime
	}

	log.WithField("queued_samples", agg.QueuedSamples()).Info("shutting down: final flush")
	fctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := flusher.Final(fctx); err != nil {
		log.WithError(err).Error("final flush incomplete")
	}
	cancel()
	stopBackground()
	_ = bg.Wait()
	log.Info("garner stopped")
	return code, nil
}

type runner interface {
	Run(ctx context.Context) error
}

// listen binds every configured receiver; a failure closes those already bound.
func listen(cfg *config.Config, lines *receiver.Lines, log logrus.FieldLogger, reg prometheus.Registerer) ([]runner, error) {
	var rs []runner
	fail := func(err error) ([]runner, error) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, r := range rs {
			_ = r.Run(ctx) // cancelled: closes at once
		}
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if receiver.IsUnixPath(cfg.MetricsAddr) {
			u, err := receiver.ListenUnixgram(cfg.MetricsAddr, cfg.ReceiveBatchSize, cfg.MaxDatagramSize, lines, log)
			if err != nil {
				return fail(err)
			}
			if err := u.SetMode(cfg.Socket.Mode); err != nil {
				rs = append(rs, u)
				return fail(err)
			}
			log.WithField("address", u.Addr().String()).Info("listening for statsd on unix datagram socket")
			rs = append(rs, u)
		} else {
			u, err := receiver.ListenUDP(receiver.UDPOptions{
				Addr: cfg.MetricsAddr, Readers: cfg.MaxReaders, BatchSize: cfg.ReceiveBatchSize,
				DatagramSize: cfg.MaxDatagramSize, ReceiveBuffer: cfg.SocketReceiveBuffer,
			}, lines, log, reg)
			if err != nil {
				return fail(err)
			}
			log.WithFields(logrus.Fields{"address": u.Addr().String(), "readers": cfg.MaxReaders}).Info("listening for statsd on udp")
			warnSharedPort(cfg, u, log)
			rs = append(rs, u)
		}
	}
	if cfg.TCPMetricsAddr != "" {
		tc, err := serverTLS(cfg.TLS.TCP, "tcp-tls-cert-file", log.WithField("receiver", "tcp"))
		if err != nil {
			return fail(err)
		}
		t, err := receiver.ListenTCP(receiver.TCPOptions{
			Addr: cfg.TCPMetricsAddr, MaxLineLength: cfg.TCPMaxLineLength,
			MaxConnections: cfg.TCPMaxConnections, IdleTimeout: cfg.TCPIdleTimeout, TLS: tc,
		}, lines, log, reg)
		if err != nil {
			return fail(err)
		}
		log.WithFields(logrus.Fields{"address": t.Addr().String(), "tls": tc != nil}).Info("listening for statsd on tcp")
		rs = append(rs, t)
	}
	return rs, nil
}

// warnSharedPort warns when another process already receives on the
// statsd UDP port (SO_REUSEPORT: the kernel now splits the traffic between
// both), unless handover says this is a deliberate takeover.
func warnSharedPort(cfg *config.Config, u *receiver.UDP, log logrus.FieldLogger) {
	others, err := u.PortSharers()
	if err != nil {
		log.WithError(err).Debug("cannot tell whether another process shares the statsd port")
		return
	}
	if len(others) == 0 {
		return
	}
	names := make([]string, len(others))
	for i, o := range others {
		names[i] = o.String()
	}
	f := log.WithFields(logrus.Fields{"address": u.Addr().String(), "shared_with": strings.Join(names, ", ")})
	if cfg.Handover {
		f.Info("handover: sharing the statsd port with the running process; stop it once this one is ready")
		return
	}
	f.Warn("another process already receives on the statsd port (SO_REUSEPORT): the kernel now splits the traffic between it and this garner. Stop one of them, give this one another metrics-addr, or start it with --handover when taking over on purpose (zero-downtime restart)")
}

func newLogger(cfg *config.Config) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	if lvl, err := logrus.ParseLevel(cfg.LogLevel); err == nil {
		l.SetLevel(lvl)
	}
	l.SetFormatter(newFormatter(cfg))
	return l
}

func newFormatter(cfg *config.Config) logrus.Formatter {
	if cfg.LogJSON {
		return &logrus.JSONFormatter{}
	}
	return &logrus.TextFormatter{}
}
