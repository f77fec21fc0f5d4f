package prometheus

import (
	"time"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// Options configures the backend; config maps the [prometheus] keys onto it
// (prometheus.<key>, named as the field: remote-write-url → RemoteWriteURL).
// Start from DefaultOptions.
type Options struct {
	// TLS is the client side of https:// URLs (keys tls-ca-file,
	// tls-cert-file, tls-key-file, tls-server-name; see httpsend.Options.TLS).
	// Zero (the default): the system roots, no client certificate.
	TLS tlsconf.ClientOptions
	// RemoteWriteURL is the http(s) URL of the remote write endpoint.
	// Required: no default.
	RemoteWriteURL string
	// Headers are extra request headers, canonical name → value (the
	// [prometheus.headers] table). Default none.
	Headers map[string]string
	// BasicAuthUsername and BasicAuthPassword set HTTP basic auth; ""
	// (default) = none. Exclusive with BearerToken.
	BasicAuthUsername string
	BasicAuthPassword string
	// BearerToken is sent as "Authorization: Bearer <token>"; "" (default) = none.
	BearerToken string
	// MetricsPerBatch is the most time series per request. Default 1000; 0 =
	// the whole flush in one request.
	MetricsPerBatch int
	// MaxRequests is the most requests in flight. Default 4; 0 = the HTTP
	// sender's default.
	MaxRequests int
	// Timeout bounds one request attempt; failed attempts are retried until
	// backend-timeout. Default 5s; 0 = the HTTP sender's default.
	Timeout time.Duration
	// Timers is how timers are sent: TimersSummary (default; "" means it
	// too) or TimersNativeHistogram.
	Timers string
}

// Values of Options.Timers (the timers key).
const (
	// TimersSummary sends a timer as a summary: per-interval quantiles
	// and running _sum and _count.
	TimersSummary = "summary"
	// TimersNativeHistogram sends a timer as a native histogram (schema,
	// spans, delta-encoded bucket counts), cumulative since the series
	// appeared; Prometheus needs --enable-feature=native-histograms.
	TimersNativeHistogram = "native-histogram"
)

// DefaultOptions returns the defaults of every [prometheus] key.
func DefaultOptions() Options {
	return Options{
		MetricsPerBatch: 1000,
		MaxRequests:     4,
		Timeout:         5 * time.Second,
		Timers:          TimersSummary,
	}
}
