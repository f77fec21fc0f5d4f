package forwarder

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// batchKind is what a batch carries; the value is the kind label of the
// batch metrics.
type batchKind string

const (
	kindRaw   batchKind = "raw"
	kindEvent batchKind = "event"
)

func (k batchKind) String() string { return string(k) }

// batch is one request body with its delivery state.
type batch struct {
	kind     batchKind
	v2       bool   // body is v2 (else v3)
	body     []byte // compressed
	enc      httpsend.Compression
	header   http.Header
	items    int // series or events: what is lost if it is dropped
	samples  int // values in the series (see selection.samples); events: items
	created  time.Time
	expires  time.Time     // dropped (expired) if still unsent then: max-buffer-age
	budget   time.Duration // retry budget of one delivery (max-request-elapsed-time)
	deadline time.Time     // give up retrying this delivery after this

	// in flight: cancel stops the request (the buffer needed room); dropped
	// says it was counted as dropped then.
	cancel  context.CancelFunc
	dropped bool
}

// pool is what the upstreams of one forwarder share: the request slots
// (max-requests, all upstreams together), the goroutines Run waits for, and
// the drain flag.
type pool struct {
	sem      chan struct{}
	wg       sync.WaitGroup
	draining atomic.Bool
	wakeAll  func() // a slot was freed: any upstream may start a request
}

// upstreamConfig is what an upstream is given at construction. The
// forwarder fills the shared part once; each upstream adds its address.
type upstreamConfig struct {
	id   string         // identity in the rendezvous hash: URL with the address dialled
	base *url.URL       // URL prefix of the requests (the endpoint as configured)
	pin  netip.AddrPort // address to dial, if not the URL's host

	v2            bool          // protocol = v2
	reprobe       time.Duration // after a fallback to v2, try v3 again this long after
	maxBufferSize int
	failures      int // failures in a row that take it out
	fastFail      bool
	timeout       time.Duration                // one request
	header        *atomic.Pointer[http.Header] // custom headers and Content-Type, on every request; shared, SetAuthorization swaps it
	userAgent     string
	retry         httpsend.Retry
	tls           *tlsconf.Client        // clientTLS
	tlsErrs       *prometheus.CounterVec // garner_tls_client_handshake_errors_total

	log     logrus.FieldLogger
	m       *fwdMetrics
	pool    *pool
	tr      transcoder
	retired func(*upstream) // called once it is retired and empty
}

// upstream is one aggregator: an address of an api-endpoint. It keeps a
// bounded queue of batches and sends them with up to max-requests in flight
// (all upstreams together), through httpsend's Client, retrying within each
// batch's deadline.
type upstream struct {
	cfg    upstreamConfig
	id     string
	base   string
	hash   uint64
	client httpsend.Client
	log    logrus.FieldLogger // with the upstream field
	logLim *ratelog.Limiter   // failed attempts

	v2      atomic.Bool  // speaks v2: protocol=v2, or answered 404 to /v3
	v2since atomic.Int64 // unix nanos of the last fallback to v2
	up      atomic.Bool  // in the choice; false after upstream-failures failures in a row, until a probe succeeds
	fails   atomic.Int32
	probing atomic.Bool
	lastOK  atomic.Int64 // unix nanos of the last accepted request
	started atomic.Bool  // run was started

	mu       sync.Mutex
	queue    []*batch // waiting, oldest first
	inflight []*batch
	bytes    int // body bytes queued and in flight
	retired  bool
	gone     bool // retired, empty and its loop ended: not to be revived
	lastErr  error
	wake     chan struct{}
}

func newUpstream(cfg upstreamConfig) *upstream {
	u := &upstream{
		cfg: cfg, id: cfg.id, base: cfg.base.String(), hash: upstreamHash(cfg.id),
		log:    cfg.log.WithField("upstream", cfg.id),
		logLim: ratelog.Every(10*time.Second, 1),
		wake:   make(chan struct{}, 1),
	}
	dialer := &net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.timeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if cfg.pin.IsValid() {
		// One address of a name: dial it, whatever the URL's host resolves
		// to now (TLS still verifies the name in the URL).
		addr := cfg.pin.String()
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	u.client = httpsend.Client{HTTP: &http.Client{Transport: cfg.transport(tr, u.log)}, Timeout: cfg.timeout, UserAgent: cfg.userAgent, Retry: cfg.retry}
	u.up.Store(true)
	u.v2.Store(cfg.v2)
	return u
}

func (u *upstream) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// enqueue adds b; when the buffer is over max-buffer-size the oldest queued
// batches are dropped (or, when none is queued, the oldest in flight is
// cancelled), but never b itself.
func (u *upstream) enqueue(b *batch) {
	u.mu.Lock()
	u.queue = append(u.queue, b)
	u.bytes += len(b.body)
	for u.bytes > u.cfg.maxBufferSize {
		switch {
		case len(u.queue) > 1:
			old := u.queue[0]
			u.queue[0] = nil
			u.queue = u.queue[1:]
			u.bytes -= len(old.body)
			u.cfg.m.dropped(old, reasonBufferFull, u.id)
		case len(u.inflight) > 0:
			old := u.inflight[0]
			u.inflight = u.inflight[1:]
			u.bytes -= len(old.body)
			old.dropped = true
			old.cancel()
			u.cfg.m.dropped(old, reasonBufferFull, u.id)
		default:
			goto done
		}
	}
done:
	u.mu.Unlock()
	u.signal()
}

// pushFront puts batches back at the head of the queue (parked while the
// upstream is out, or split by the v2 fallback).
func (u *upstream) pushFrontLocked(bs ...*batch) {
	u.queue = append(append(make([]*batch, 0, len(bs)+len(u.queue)), bs...), u.queue...)
}

// removeInflightLocked forgets b as in flight; it reports false when b was
// already dropped by enqueue.
func (u *upstream) removeInflightLocked(b *batch) bool {
	for i, x := range u.inflight {
		if x == b {
			u.inflight = append(u.inflight[:i], u.inflight[i+1:]...)
			return true
		}
	}
	return false
}

// expireLocked drops queued batches older than max-buffer-age.
func (u *upstream) expireLocked(now time.Time) {
	kept := u.queue[:0]
	for _, b := range u.queue {
		if now.After(b.expires) {
			u.bytes -= len(b.body)
			u.cfg.m.dropped(b, reasonExpired, u.id)
			continue
		}
		kept = append(kept, b)
	}
	clear(u.queue[len(kept):])
	u.queue = kept
}

// pending reports the batches queued and in flight.
func (u *upstream) pending() (queued, inflight, bytes int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.queue), len(u.inflight), u.bytes
}

// convert re-encodes b (v3) for v2 after a fallback. Event batches become
// one request per event; the extra ones go to the head of the queue.
func (u *upstream) convert(b *batch) bool {
	before := len(b.body)
	rest, err := u.cfg.tr.toV2(b)
	if err != nil {
		u.logFailure(err, b)
		u.finishDropped(b, reasonRejected)
		return false
	}
	u.mu.Lock()
	u.bytes += len(b.body) - before
	for _, r := range rest {
		u.bytes += len(r.body)
	}
	u.pushFrontLocked(rest...)
	u.mu.Unlock()
	if len(rest) > 0 {
		u.signal()
	}
	return true
}

func (u *upstream) finish(b *batch) {
	u.mu.Lock()
	if u.removeInflightLocked(b) {
		u.bytes -= len(b.body)
	}
	u.mu.Unlock()
}

func (u *upstream) finishDropped(b *batch, reason string) {
	u.mu.Lock()
	was := u.removeInflightLocked(b)
	if was {
		u.bytes -= len(b.body)
	}
	u.mu.Unlock()
	if was { // else enqueue dropped and counted it
		u.cfg.m.dropped(b, reason, u.id)
	}
}

// park returns b to the head of the queue: the upstream is out of the
// choice, and a probe will bring it back (or b expires meanwhile).
func (u *upstream) park(b *batch) {
	u.mu.Lock()
	if u.removeInflightLocked(b) {
		u.pushFrontLocked(b)
	}
	u.mu.Unlock()
}

func (u *upstream) setErr(err error) {
	u.mu.Lock()
	u.lastErr = err
	u.mu.Unlock()
}

// failed counts a failed attempt; upstream-failures in a row take the
// upstream out of the choice.
func (u *upstream) failed() {
	if int(u.fails.Add(1)) >= u.cfg.failures && u.up.CompareAndSwap(true, false) {
		u.cfg.m.down.Inc()
		u.log.WithField("failures", u.fails.Load()).
			Warn("taking upstream out of the choice: its series go to their next choice until a probe succeeds")
	}
}
