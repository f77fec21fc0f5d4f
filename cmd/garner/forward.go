package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/forwarder"
	"github.com/garner-metrics/garner/pkg/health"
	"github.com/garner-metrics/garner/pkg/ingest"
	"github.com/garner-metrics/garner/pkg/receiver"
)

// forwarderMode returns the configuration the pipeline is built from: cfg
// itself in standalone mode; in forwarder mode a copy adjusted for that
// mode (cfg, the loaded configuration that SIGHUP reloads compare, is left
// as loaded). The forwarder is the only backend (backends is ignored, as in
// gostatsd), flushes happen every [http-transport] flush-interval and are
// never aligned (the aggregators would get every forwarder at once), and
// every series expires after each flush, so that only what arrived in an
// interval is forwarded. Gauge deltas (+N/-N) therefore apply within one
// forwarding interval; the aggregators see absolute values.
func forwarderMode(cfg *config.Config) *config.Config {
	if cfg.Forward.ServerMode != config.ModeForwarder {
		return cfg
	}
	pc := *cfg
	interval := cfg.Forward.HTTPTransport.FlushInterval
	pc.Backends = nil
	pc.FlushInterval = interval
	pc.FlushAligned, pc.FlushOffset = false, 0
	pc.BackendTimeout = interval
	pc.Expiry = config.Expiry{Counter: -1, Gauge: -1, Set: -1, Timer: -1}
	return &pc
}

// newForwarder returns the forwarder in forwarder mode (nil in standalone
// mode). It does not change cfg.
func newForwarder(cfg *config.Config, log logrus.FieldLogger, reg prometheus.Registerer) (*forwarder.Forwarder, error) {
	if cfg.Forward.ServerMode != config.ModeForwarder {
		return nil, nil
	}
	opts := cfg.Forward.HTTPTransport
	opts.DrainTimeout = cfg.ShutdownTimeout
	opts.Hostname = cfg.Hostname
	f, err := forwarder.New(opts, log.WithField("component", "forwarder"), reg)
	if err != nil {
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	log.WithFields(logrus.Fields{
		"api_endpoint": opts.APIEndpoints, "protocol": opts.Protocol, "compression": opts.CompressionType,
		"flush_interval": opts.FlushInterval.String(),
	}).Info("forwarder mode: sending aggregates to the upstream aggregators")
	return f, nil
}

// mountForwarding mounts the ingestion endpoints (/v2/raw, /v2/event, and
// /v3/* unless ingestion.v3=false) on the HTTP servers with ingestion
// enabled, and registers the forwarder's api-endpoints as hard dependencies.
func mountForwarding(adm *admin, cfg *config.Config, lines *receiver.Lines, fwd *forwarder.Forwarder,
	log logrus.FieldLogger, reg prometheus.Registerer) error {
	if fwd != nil {
		for _, d := range fwd.Dependencies() {
			if err := adm.health.Register("forward "+d.Name, health.Hard, d.Check); err != nil {
				return err
			}
		}
	}
	if !adm.web.IngestionEnabled() {
		return nil
	}
	h, err := newIngest(cfg, lines, log, reg)
	if err != nil {
		return err
	}
	for _, r := range h.Routes() {
		adm.web.HandleIngestion(r.Pattern, r.Handler)
	}
	return nil
}

// newIngest builds the ingestion handlers from the [ingestion] keys.
func newIngest(cfg *config.Config, lines *receiver.Lines, log logrus.FieldLogger, reg prometheus.Registerer) (*ingest.Handler, error) {
	return ingest.New(cfg.Forward.Ingestion, lines, log.WithField("component", "ingest"), reg)
}

// ingestionEnabled reports whether any HTTP server serves ingestion.
func ingestionEnabled(cfg *config.Config) bool {
	if cfg.Admin.Addr != "" && cfg.Admin.EnableIngestion {
		return true
	}
	for _, s := range cfg.Admin.HTTPServers {
		if s.EnableIngestion {
			return true
		}
	}
	return false
}
