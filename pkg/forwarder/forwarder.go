// Package forwarder is garner's forwarder mode: it takes the aggregator's
// snapshots (every [http-transport] flush-interval), splits the series over
// the upstream aggregators by rendezvous hashing of their series keys,
// encodes them (v3, or v2 for gostatsd), compresses and POSTs them, with
// retries, a bounded buffer per upstream and upstreams taken out of the
// choice while they fail.
//
// It is a backends.Backend (the flusher hands it every snapshot and event)
// and a backends.Runner: Run sends; SendMetrics and SendEvent never wait for
// the network. When Run's context ends it keeps sending what it holds for
// Options.DrainTimeout, then counts what is left as dropped and returns.
// Requests go through backends/httpsend, garner's one retrying HTTP sender.
package forwarder

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/tlsconf"
	"github.com/garner-metrics/garner/pkg/version"
)

// Name is the forwarder's name as a backend (in logs and backend metrics).
const Name = "forwarder"

// Forwarder sends snapshots and events to the upstream aggregators. Its
// methods are safe for concurrent use.
//
// The work is split by file: options.go (Options, DefaultOptions),
// metrics.go (self-metrics), upstreams.go (endpoints, DNS, which upstreams
// exist), upstream.go and send.go (one upstream's queue and requests, through
// httpsend), route.go (snapshots split over the upstreams and encoded),
// events.go, transcode.go (v3 batches re-encoded for v2), drain.go (Run and
// the drain at shutdown), health.go (dependency checks).
type Forwarder struct {
	opts   Options
	log    logrus.FieldLogger
	comp   *compressor
	m      *fwdMetrics
	pool   *pool
	upBase upstreamConfig // what every upstream shares; see newUpstreamLocked

	mu        sync.Mutex
	endpoints []*endpoint
	all       map[*upstream]struct{} // active and retired, until drained
	active    atomic.Pointer[[]*upstream]
	runCtx    context.Context // set by Run: upstreams started later use it

	encMu  sync.Mutex // SendMetrics / event batching state
	enc    encoder
	raw    []byte
	keyBuf []byte
	parts  map[partKey]*selection
	hdrs   map[string]http.Header

	evMu   sync.Mutex
	events []*model.Event
	checks []*model.ServiceCheck
}

var (
	_ backends.Backend            = (*Forwarder)(nil)
	_ backends.Runner             = (*Forwarder)(nil)
	_ backends.ServiceCheckSender = (*Forwarder)(nil)
)

// New builds a forwarder. Zero Options fields take their DefaultOptions
// value (see Options). Endpoint names are resolved here once when DNSRefresh
// is set (bounded by ClientTimeout); nothing is sent before Run.
func New(opts Options, log logrus.FieldLogger, reg prometheus.Registerer) (*Forwarder, error) {
	opts = opts.withDefaults()
	if len(opts.APIEndpoints) == 0 {
		return nil, errors.New("no api-endpoint")
	}
	comp, err := newCompressor(opts.CompressionType, opts.CompressionLevel)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		opts:  opts,
		log:   log,
		comp:  comp,
		pool:  &pool{sem: make(chan struct{}, opts.MaxRequests)},
		all:   map[*upstream]struct{}{},
		parts: map[partKey]*selection{},
		hdrs:  map[string]http.Header{},
	}
	f.pool.wakeAll = f.wakeAll
	if f.m, err = newMetrics(reg, f, log); err != nil {
		return nil, err
	}
	header := http.Header{}
	for k, v := range opts.CustomHeaders {
		header.Set(k, v)
	}
	header.Set("Content-Type", "application/x-protobuf")
	shared := &atomic.Pointer[http.Header]{}
	shared.Store(&header)
	retry := httpsend.Retry{}
	if opts.MaxRequestElapsedTime < 0 {
		retry.MaxRetries = -1
	}
	f.upBase = upstreamConfig{
		v2: opts.Protocol == "v2", reprobe: opts.V3Reprobe, maxBufferSize: opts.MaxBufferSize, failures: opts.UpstreamFailures,
		fastFail: opts.FastFail, timeout: opts.ClientTimeout, header: shared,
		userAgent: "garner/" + version.Get().Version + " (forwarder)", retry: retry,
		log: log, m: f.m, pool: f.pool, tr: transcoder{comp: comp, m: f.m}, retired: f.forget,
	}
	if f.upBase.tls, err = clientTLS(opts.TLS, log); err != nil {
		return nil, err
	}
	f.upBase.tlsErrs = tlsconf.ClientHandshakeErrors(reg)
	for _, raw := range opts.APIEndpoints {
		ep, err := parseEndpoint(raw, opts.DNSRefresh > 0)
		if err != nil {
			return nil, err
		}
		f.endpoints = append(f.endpoints, ep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.ClientTimeout)
	defer cancel()
	f.mu.Lock()
	for _, ep := range f.endpoints {
		f.resolveLocked(ctx, ep)
	}
	f.publishLocked()
	f.mu.Unlock()
	return f, nil
}

// SetAuthorization replaces the Authorization header of the requests from
// now on (the bearer token, its file re-read on SIGHUP); "" removes it.
func (f *Forwarder) SetAuthorization(v string) {
	next := f.upBase.header.Load().Clone()
	if v == "" {
		next.Del("Authorization")
	} else {
		next.Set("Authorization", v)
	}
	f.upBase.header.Store(&next)
}

// Name implements backends.Backend.
func (f *Forwarder) Name() string { return Name }
