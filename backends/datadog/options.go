package datadog

import (
	"time"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// Options configures the backend; config maps the [datadog] keys onto it
// (datadog.<key>, named as the field: api_endpoint → APIEndpoint). Key names
// and defaults follow gostatsd. Start from DefaultOptions.
type Options struct {
	// TLS is the client side of https:// URLs (keys tls-ca-file,
	// tls-cert-file, tls-key-file, tls-server-name; see httpsend.Options.TLS).
	// Zero (the default): the system roots, no client certificate.
	TLS tlsconf.ClientOptions
	// APIKey is sent as the DD-API-KEY header. Required: no default.
	APIKey string
	// APIEndpoint is the base URL; series go to <APIEndpoint>/api/v1/series.
	// Default https://api.datadoghq.com; "" fails New.
	APIEndpoint string
	// Compression of request bodies (key compress_payload, which gostatsd
	// writes as a boolean): "deflate" (zlib, default), "gzip" or "" (none).
	Compression string
	// MetricsPerBatch is the most garner series per request (a timer is ~14
	// Datadog series). Default 1000; 0 = the whole flush in one request.
	MetricsPerBatch int
	// MaxRequests is the most requests in flight. Default 10; 0 = the HTTP
	// sender's default.
	MaxRequests int
	// MaxRequestElapsedTime is one request's time budget, retries included.
	// Default 15s; 0 = the HTTP sender's default.
	MaxRequestElapsedTime time.Duration
	// ClientTimeout bounds one request attempt. Default 9s; 0 = the HTTP
	// sender's default.
	ClientTimeout time.Duration
	// UserAgent is the User-Agent header. Default "garner"; "" = garner/<version>.
	UserAgent string
}

// DefaultOptions returns the defaults of every [datadog] key.
func DefaultOptions() Options {
	return Options{
		APIEndpoint:           "https://api.datadoghq.com",
		Compression:           "deflate",
		MetricsPerBatch:       1000,
		MaxRequests:           10,
		MaxRequestElapsedTime: 15 * time.Second,
		ClientTimeout:         9 * time.Second,
		UserAgent:             "garner",
	}
}
