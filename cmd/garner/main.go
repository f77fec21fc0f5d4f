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
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
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
	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/pkg/version"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // could not start (port taken, ...) or failed while running
	exitConfig  = 2 // bad flags or configuration
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// Catch the stop signals first: one that arrives while garner starts
	// must still end in a final flush and exit 0, not kill the process.
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	cfg, err := config.Load(args)
	if errors.Is(err, config.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "garner: %v\n", err)
		return exitConfig
	}
	if cfg.ShowVersion {
		fmt.Println(version.Get())
		return exitOK
	}
	log := newLogger(cfg)
	rl := newReloader(args, cfg, log) // catches SIGHUP from here on
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
		log.WithField("bytes", cfg.MemoryLimit).Info("memory-limit set (GOMEMLIMIT)")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	fwd, err := newForwarder(cfg, log, reg)
	if err != nil {
		log.WithError(err).Error("cannot configure the forwarder")
		return exitConfig
	}
	cfg = forwarderMode(cfg) // the pipeline's view; the loaded config stays as it is (see forward.go)
	bs, err := all.New(cfg, log, reg)
	if err != nil {
		log.WithError(err).Error("cannot configure backends")
		return exitConfig
	}
	if fwd != nil {
		bs = append(bs, fwd)
	}
	events := flush.NewEvents(flush.EventOptions{QueueLength: cfg.MaxEventQueueSize, MaxLength: cfg.MaxEventLength, Timeout: cfg.BackendTimeout}, bs, log, reg)
	filterMetrics := filter.NewMetrics(reg)
	rules, err := filterMetrics.Compile(cfg.Filters.Rules)
	if err != nil {
		log.WithError(err).Error("cannot compile the filters")
		return exitConfig
	}
	agg := aggregator.New(aggregator.Options{
		Shards:              cfg.MaxWorkers,
		MaxQueuedSamples:    cfg.MaxQueueSize,
		PercentThresholds:   cfg.PercentThreshold,
		Expiry:              cfg.Expiry,
		HistogramLimit:      cfg.HistogramLimit,
		DisabledSubMetrics:  cfg.DisabledSubMetrics,
		MaxSeries:           cfg.MaxSeries,
		MaxSeriesPerMetric:  cfg.MaxSeriesPerMetric,
		CardinalityOverflow: cfg.CardinalityOverflow,
	}, log, reg)
	lines := receiver.NewLines(receiver.Options{
		IgnoreHost:        cfg.IgnoreHost,
		Namespace:         cfg.Namespace,
		DefaultTags:       cfg.DefaultTags,
		GaugeDeltas:       cfg.GaugeDeltas,
		BadLinesPerMinute: cfg.BadLinesPerMinute,
		Limits:            cfg.LineLimits,
		Rules:             rules,
	}, agg, events, log, reg)
	flusher := flush.New(flush.Options{
		Interval: cfg.FlushInterval, Aligned: cfg.FlushAligned, Offset: cfg.FlushOffset, Timeout: cfg.BackendTimeout,
	}, agg, bs, log, reg)
	adm, err := newAdmin(cfg, log, reg, agg, flusher, bs) // before the statsd port: see newAdmin
	if err != nil {
		log.WithError(err).Error("cannot start the http servers")
		return exitConfig
	}
	defer adm.close()
	mountDebug(adm.web, cfg, agg, lines)
	if err := mountForwarding(adm, cfg, lines, fwd, log, reg); err != nil {
		log.WithError(err).Error("cannot set up forwarding ingestion")
		return exitConfig
	}

	receivers, err := listen(cfg, lines, log, reg)
	if err != nil {
		log.WithError(err).Error("cannot start receivers")
		return exitRuntime
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
	bg.Go(func() error { return events.Run(bgCtx) })
	bg.Go(func() error { return adm.run(bgCtx) })
	rl.on(func(next *config.Config) error {
		r, err := filterMetrics.Compile(next.Filters.Rules)
		if err == nil {
			lines.SetRules(r)
		}
		return err
	}, "filters", "filter.*", "drop-tag-keys", "max-tag-value-length", "mappings", "mapping.*")
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
	for _, b := range bs {
		if c, ok := b.(io.Closer); ok {
			_ = c.Close()
		}
	}
	log.Info("garner stopped")
	return code
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
			rs = append(rs, u)
		}
	}
	if cfg.TCPMetricsAddr != "" {
		t, err := receiver.ListenTCP(receiver.TCPOptions{
			Addr: cfg.TCPMetricsAddr, MaxLineLength: cfg.TCPMaxLineLength,
			MaxConnections: cfg.TCPMaxConnections, IdleTimeout: cfg.TCPIdleTimeout,
		}, lines, log, reg)
		if err != nil {
			return fail(err)
		}
		log.WithField("address", t.Addr().String()).Info("listening for statsd on tcp")
		rs = append(rs, t)
	}
	return rs, nil
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
