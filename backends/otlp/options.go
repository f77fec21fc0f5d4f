package otlp

import (
	"time"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// Conversions of timers (the conversion key), as gostatsd names them.
const (
	AsGauge     = "AsGauge"     // timers as gauges <name>.<stat>, gsd_histogram buckets as gauges <name>.histogram{le}
	AsHistogram = "AsHistogram" // timers as OTLP histograms (count, sum, min, max; buckets from gsd_histogram)
	// AsExponentialHistogram sends timers as delta OTLP exponential
	// histograms (scale, zero count, positive and negative buckets, count,
	// sum, min, max); gsd_histogram timers as AsHistogram does.
	AsExponentialHistogram = "AsExponentialHistogram"
)

// Options configures the backend; config maps the [otlp] keys onto it
// (otlp.<key>, named as the field: metrics_endpoint → MetricsEndpoint). Key
// names, defaults and meaning follow gostatsd's otlp backend. Start from
// DefaultOptions.
type Options struct {
	// TLS is the client side of https:// URLs (keys tls-ca-file,
	// tls-cert-file, tls-key-file, tls-server-name; see httpsend.Options.TLS).
	// Zero (the default): the system roots, no client certificate.
	TLS tlsconf.ClientOptions
	// MetricsEndpoint is the OTLP/HTTP metrics URL (…/v1/metrics). Required: no default.
	MetricsEndpoint string
	// LogsEndpoint is the OTLP/HTTP logs URL (…/v1/logs) for events; ""
	// (default) = events are not sent.
	LogsEndpoint string
	// MaxRequests is the most requests in flight, metrics and logs together.
	// Default 4; 0 = the HTTP sender's default.
	MaxRequests int
	// MaxRetries is how many times one failed request is retried. Default
	// 3; 0 = never.
	MaxRetries int
	// MaxRequestElapsedTime bounds one request with its retries (and each
	// attempt, at most 10s). Default 15s; 0 = the HTTP sender's default.
	MaxRequestElapsedTime time.Duration
	// CompressPayload gzips request bodies. Default true; false (the zero
	// value) sends them uncompressed.
	CompressPayload bool
	// MetricsPerBatch is the most metrics (one data point each) per
	// request. Default 1000; 0 = the whole flush in one request.
	MetricsPerBatch int
	// ResourceKeys are tag keys whose tags become resource attributes
	// instead of data point attributes. Default none.
	ResourceKeys []string
	// Conversion of timers: AsGauge (default; also what "" means),
	// AsHistogram or AsExponentialHistogram.
	Conversion string
	// UserAgent of every request; "" (default) = garner/<version>.
	UserAgent string
}

// DefaultOptions returns the defaults of every [otlp] key.
func DefaultOptions() Options {
	return Options{
		MaxRequests:           4,
		MaxRetries:            3,
		MaxRequestElapsedTime: 15 * time.Second,
		CompressPayload:       true,
		MetricsPerBatch:       1000,
		Conversion:            AsGauge,
	}
}
