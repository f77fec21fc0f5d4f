package config

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/garner-metrics/garner/backends/exporter"
	"github.com/garner-metrics/garner/pkg/mapping"
)

// Exporter is the [exporter] section: the statsd_exporter-compatible scrape
// endpoint's options, with their defaults from exporter.DefaultOptions().
type Exporter = exporter.Options

var exporterDefaults = exporter.DefaultOptions()

var exporterKeys = slices.Concat(
	[]key{
		{"exporter.listen-address", kString, exporterDefaults.ListenAddress, "host:port of the Prometheus scrape endpoint of the exporter backend, its own listener (statsd_exporter's --web.listen-address)", false, to(func(c *Config) any { return &c.Exporter.ListenAddress })},
		{"exporter.telemetry-path", kString, exporterDefaults.TelemetryPath, "Path of the scrape endpoint (statsd_exporter's --web.telemetry-path)", false, to(func(c *Config) any { return &c.Exporter.TelemetryPath })},
		{"exporter.mapping-config", kString, exporterDefaults.MappingConfig, "statsd_exporter mapping file (YAML), unchanged (statsd_exporter's --statsd.mapping-config); re-read on SIGHUP, a bad new file keeps the old one; empty = no mappings, names escaped", false, to(func(c *Config) any { return &c.Exporter.MappingConfig })},
		{"exporter.mapping-cache-size", kInt, exporterDefaults.MappingCacheSize, "Mapping results cached by name (statsd_exporter's --statsd.cache-size); negative = no cache", false, to(func(c *Config) any { return &c.Exporter.MappingCacheSize })},
		{"exporter.max-series", kInt, exporterDefaults.MaxSeries, "Most series the scrape endpoint exposes; new series past it are dropped and counted (garner_exporter_dropped_samples_total{reason=\"max_series\"}); 0 = no bound", false, toNonNegative(func(c *Config) any { return &c.Exporter.MaxSeries })},
	},
	serverTLSKeys("exporter.", false,
		"PEM certificate (chain, leaf first) the scrape endpoint serves HTTPS with; set with tls-key-file (statsd_exporter's --web.config.file tls_server_config). A failed handshake is counted in garner_tls_handshake_errors_total{listener=\"exporter\"}. Re-read when the file changes. Empty = plain HTTP",
		"PEM private key of exporter.tls-cert-file",
		"PEM CA bundle: the scrape endpoint then requires a client certificate from one of these CAs (mutual TLS; Prometheus tls_config cert_file). Empty = none asked"),
	[]key{
		{"exporter.token", kString, "", "Bearer token every request to the scrape endpoint must carry (Prometheus authorization.credentials); its own, neither admin-token nor ingestion-token; compared in constant time, 401 without it. Empty = none. Prefer exporter.token-file or GARNER_EXPORTER_TOKEN", false, nil},
		{"exporter.token-file", kString, "", "File holding exporter.token (trailing newline ignored), read at start; exclusive with exporter.token", false, nil},
	},
)

func (c *Config) loadExporter(r *reader) {
	e := &c.Exporter
	if _, _, err := net.SplitHostPort(e.ListenAddress); err != nil {
		r.fail("exporter.listen-address", fmt.Errorf("%q is not host:port: %w", e.ListenAddress, err))
	}
	if !strings.HasPrefix(e.TelemetryPath, "/") {
		r.fail("exporter.telemetry-path", fmt.Errorf("%q must start with /", e.TelemetryPath))
	}
	e.TLS = r.serverTLS("exporter.")
	if e.TLS.Enabled() {
		r.checkServerTLS("exporter.", e.TLS)
	}
	e.Token, _ = r.tokenFile("exporter.token", "exporter.token-file", strings.TrimSpace(r.str("exporter.token")))
	// Refuse a bad mapping file here too, so that --check-config sees it.
	if e.MappingConfig != "" && contains(c.Backends, exporter.Name) {
		if _, _, err := mapping.Load(e.MappingConfig, -1); err != nil {
			r.fail("exporter.mapping-config", err)
		}
	}
}
