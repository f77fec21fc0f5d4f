package exporter

import "github.com/garner-metrics/garner/pkg/tlsconf"

// Options configures the exporter; config maps the [exporter] keys onto it
// (exporter.<key>, named as the field: listen-address → ListenAddress).
// Start from DefaultOptions.
type Options struct {
	// ListenAddress is the host:port of the scrape endpoint, its own
	// listener apart from the admin server. Default ":9102", as
	// statsd_exporter's --web.listen-address.
	ListenAddress string
	// TelemetryPath is the path Prometheus scrapes. Default "/metrics", as
	// statsd_exporter's --web.telemetry-path.
	TelemetryPath string
	// MappingConfig is the path of a statsd_exporter mapping file (YAML),
	// re-read on SIGHUP. "" (default) = no mappings: every name escaped.
	MappingConfig string
	// MappingCacheSize bounds the mapper's cache of results by name. Default
	// 1000, as statsd_exporter's --statsd.cache-size; negative = no cache.
	MappingCacheSize int
	// MaxSeries bounds the series the endpoint exposes; past it new series
	// are dropped and counted (garner_exporter_dropped_samples_total
	// {reason="max_series"}). Default 1000000; 0 = no bound.
	MaxSeries int
	// TLS makes the endpoint serve HTTPS (exporter.tls-cert-file,
	// tls-key-file), requiring a client certificate from the CAs of
	// tls-client-ca-file when set; the files are re-read when they change.
	// Zero = plain HTTP, as statsd_exporter without --web.config.file.
	TLS tlsconf.ServerOptions
	// Token, when set (exporter.token or exporter.token-file), is the bearer
	// token every request must carry (Prometheus: authorization.credentials
	// or bearer_token_file); compared in constant time; 401 without it. It
	// is its own token: a scraper holds neither admin-token nor
	// ingestion-token. "" = none.
	Token string
}

// DefaultOptions returns the defaults of every [exporter] key.
func DefaultOptions() Options {
	return Options{ListenAddress: ":9102", TelemetryPath: "/metrics", MappingCacheSize: 1000, MaxSeries: 1_000_000}
}
