package forwarder

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// Options configures a Forwarder. Each field is set by the [http-transport]
// key of the same name (config maps them; the key defaults come from
// DefaultOptions). A zero field takes its DefaultOptions value where the
// field says so.
type Options struct {
	// TLS is the client side of https:// endpoints (tls-ca-file,
	// tls-cert-file, tls-key-file, tls-server-name; see tls.go). Zero: the
	// system roots, no client certificate.
	TLS tlsconf.ClientOptions
	// APIEndpoints are the upstream base URLs, without trailing "/"
	// (api-endpoint). Required.
	APIEndpoints []string
	// Protocol is "v3" or "v2" (protocol). Zero: "v3" (the default).
	Protocol string
	// CompressionType is "zlib" (Content-Encoding deflate), "zstd" (v3
	// requests only; v2 ones use zlib) or "none" (compression-type, or
	// compress = false). Zero: "zlib" (the default).
	CompressionType string
	// CompressionLevel is 0 (fastest) to 9 (smallest) (compression-level).
	// Zero means 0; the default is 9.
	CompressionLevel int
	// MaxRequests bounds the requests in flight, all upstreams together
	// (max-requests). Zero: the default, 1000.
	MaxRequests int
	// MaxRequestElapsedTime is one batch's retry budget, from its creation
	// (max-request-elapsed-time); negative = one attempt, no retries
	// (gostatsd's -1). Zero: the default, 30s.
	MaxRequestElapsedTime time.Duration
	// ClientTimeout bounds one request: connect, send, answer
	// (client-timeout). Zero: the default, 10s.
	ClientTimeout time.Duration
	// CustomHeaders are added to every request, canonical names
	// (custom-headers). Default none.
	CustomHeaders map[string]string
	// DynamicHeaders are tag names whose values become request headers
	// (dynamic-headers). Default none.
	DynamicHeaders []string
	// FastFail drops a batch at once on a 4xx other than 404, 408 and 429
	// (fast-fail-on-non-retryable-errors). Default false: retry it.
	FastFail bool
	// DNSRefresh is how often endpoint host names are re-resolved, one
	// upstream per address (dns-refresh). Zero (the default): not resolved.
	DNSRefresh time.Duration
	// MaxBufferSize bounds the bytes of unsent batches per upstream
	// (max-buffer-size). Zero: the default, 64 MiB.
	MaxBufferSize int
	// MaxBufferAge is how long an unsent batch is kept while its upstream
	// is out, from its creation (max-buffer-age); older ones are dropped and
	// counted. Zero: the default, 10m: longer than a rolling restart of an
	// aggregator tier, so a forwarder whose aggregators all restart, or
	// whose one aggregator is rescheduled, delivers everything afterwards
	// (max-buffer-size still bounds the memory).
	MaxBufferAge time.Duration
	// V3Reprobe is how long after a fallback to v2 (a 404 to /v3/raw) the
	// next batch is tried in v3 again (v3-reprobe-interval): a 404 from an
	// ingress during a deploy is not for ever. Zero: the default, 5m.
	V3Reprobe time.Duration
	// MaxSeriesPerRequest bounds the series of one request
	// (max-series-per-request). Zero: the default, 20000.
	MaxSeriesPerRequest int
	// UpstreamFailures is how many failed attempts in a row take an
	// upstream out of the choice (upstream-failures). Zero: the default, 3.
	UpstreamFailures int
	// ProbeInterval is how often an upstream that is out is probed
	// (probe-interval). Zero: the default, 2s.
	ProbeInterval time.Duration
	// FlushInterval is how often events are batched and sent
	// (flush-interval). Zero: the default, 1s.
	FlushInterval time.Duration
	// DrainTimeout bounds sending what is held at shutdown (garner's
	// shutdown-timeout). Zero: the default, 10s.
	DrainTimeout time.Duration
	// Hostname names this forwarder in v3 batches (hostname). Default "".
	Hostname string
	// Resolver resolves endpoint names when DNSRefresh > 0. Nil (the
	// default): net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// DefaultOptions returns the forwarder's defaults, the [http-transport] key
// defaults.
func DefaultOptions() Options {
	return Options{
		Protocol:              "v3",
		CompressionType:       "zlib",
		CompressionLevel:      9,
		MaxRequests:           1000,
		MaxRequestElapsedTime: 30 * time.Second,
		ClientTimeout:         10 * time.Second,
		MaxBufferSize:         64 << 20,
		MaxBufferAge:          10 * time.Minute,
		V3Reprobe:             5 * time.Minute,
		MaxSeriesPerRequest:   20000,
		UpstreamFailures:      3,
		ProbeInterval:         2 * time.Second,
		FlushInterval:         time.Second,
		DrainTimeout:          10 * time.Second,
	}
}

// withDefaults fills the zero fields that take a default.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	o.Protocol = cmp.Or(o.Protocol, d.Protocol)
	o.CompressionType = cmp.Or(o.CompressionType, d.CompressionType)
	o.MaxRequestElapsedTime = cmp.Or(o.MaxRequestElapsedTime, d.MaxRequestElapsedTime) // < 0 means no retries
	o.MaxRequests = positiveOr(o.MaxRequests, d.MaxRequests)
	o.ClientTimeout = positiveOr(o.ClientTimeout, d.ClientTimeout)
	o.MaxBufferSize = positiveOr(o.MaxBufferSize, d.MaxBufferSize)
	o.MaxBufferAge = positiveOr(o.MaxBufferAge, d.MaxBufferAge)
	o.V3Reprobe = positiveOr(o.V3Reprobe, d.V3Reprobe)
	o.MaxSeriesPerRequest = positiveOr(o.MaxSeriesPerRequest, d.MaxSeriesPerRequest)
	o.UpstreamFailures = positiveOr(o.UpstreamFailures, d.UpstreamFailures)
	o.ProbeInterval = positiveOr(o.ProbeInterval, d.ProbeInterval)
	o.FlushInterval = positiveOr(o.FlushInterval, d.FlushInterval)
	o.DrainTimeout = positiveOr(o.DrainTimeout, d.DrainTimeout)
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	return o
}

// positiveOr is v when it is positive, else def.
func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
