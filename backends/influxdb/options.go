package influxdb

import (
	"time"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// Options configures the backend; config maps the [influxdb] keys onto it
// (influxdb.<key>, named as the field: api-endpoint → APIEndpoint). Key
// names and defaults follow gostatsd. Start from DefaultOptions.
type Options struct {
	// TLS is the client side of https:// URLs (keys tls-ca-file,
	// tls-cert-file, tls-key-file, tls-server-name; see httpsend.Options.TLS).
	// Zero (the default): the system roots, no client certificate.
	TLS tlsconf.ClientOptions
	// APIEndpoint is the base URL, e.g. http://127.0.0.1:8086. Required: no default.
	APIEndpoint string
	// APIVersion selects the write API: 1 (/write?db=&rp=&consistency=) or
	// 2 (/api/v2/write?org=&bucket=). Default 2; any other value fails New.
	APIVersion int
	// Database to write to; required with APIVersion 1. Default "".
	Database string
	// RetentionPolicy with APIVersion 1; "" (default) = the database's default.
	RetentionPolicy string
	// Consistency with APIVersion 1: "" (default, the server's), any, one, quorum or all.
	Consistency string
	// Org and Bucket to write to; both required with APIVersion 2. Default "".
	Org, Bucket string
	// Credentials is sent as "Authorization: Token <credentials>" (a v2 API
	// token, or "user:password" for v1); "" (default) = no Authorization header.
	Credentials string
	// CompressPayload gzips request bodies. Default true; false (the zero
	// value) sends them uncompressed.
	CompressPayload bool
	// MetricsPerBatch is the most series (one line each) per write request.
	// Default 5000; 0 = the whole flush in one request.
	MetricsPerBatch int
	// MaxRequests is the most write requests in flight. Default 10; 0 = the
	// HTTP sender's default.
	MaxRequests int
	// MaxRequestElapsedTime is one request's time budget, retries included;
	// the batch is dropped and counted after it. Default 15s; 0 = the HTTP
	// sender's default.
	MaxRequestElapsedTime time.Duration
	// Timeout bounds one request attempt. Default 10s; 0 = the HTTP sender's default.
	Timeout time.Duration
}

// DefaultOptions returns the defaults of every [influxdb] key.
func DefaultOptions() Options {
	return Options{
		APIVersion:            2,
		CompressPayload:       true,
		MetricsPerBatch:       5000,
		MaxRequests:           10,
		MaxRequestElapsedTime: 15 * time.Second,
		Timeout:               10 * time.Second,
	}
}
