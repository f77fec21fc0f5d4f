package forwarder

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

type batchKind uint8

const (
	kindRaw batchKind = iota
	kindEvent
)

func (k batchKind) String() string {
	if k == kindEvent {
		return "event"
	}
	return "raw"
}

// batch is one request body with its delivery state.
type batch struct {
	kind     batchKind
	v2       bool   // body is v2 (else v3)
	body     []byte // compressed
	enc      string // Content-Encoding
	header   http.Header
	items    int // series or events: what is lost if it is dropped
	created  time.Time
	deadline time.Time // give up retrying after this

	// in flight: cancel stops the request (the buffer needed room); dropped
	// says it was counted as dropped then.
	cancel  context.CancelFunc
	dropped bool
}

// upstream is one aggregator: an address of an api-endpoint. It keeps a
// bounded queue of batches and sends them with up to max-requests in flight
// (all upstreams together), retrying within each batch's deadline.
type upstream struct {
	f        *Forwarder
	id       string // identity in the rendezvous hash: URL with the address dialled
	base     string // URL prefix of the requests (the endpoint as configured)
	endpoint string // the api-endpoint this comes from
	hash     uint64
	client   *http.Client

	v2      atomic.Bool // speaks v2: protocol=v2, or answered 404 to /v3
	up      atomic.Bool // in the choice; false after upstream-failures failures in a row, until a probe succeeds
	fails   atomic.Int32
	probing atomic.Bool
	lastOK  atomic.Int64 // unix nanos of the last accepted request
	started atomic.Bool  // run was started

	mu       sync.Mutex
	queue    []*batch // waiting, oldest first
	inflight []*batch
	bytes    int // body bytes queued and in flight
	retired  bool
	lastErr  error
	wake     chan struct{}
	logLast  time.Time
	logSupp  int
}

func newUpstream(f *Forwarder, endpoint, id string, base *url.URL, pin netip.AddrPort) *upstream {
	u := &upstream{
		f: f, id: id, base: base.String(), endpoint: endpoint, hash: upstreamHash(id),
		wake: make(chan struct{}, 1),
	}
	dialer := &net.Dialer{Timeout: f.opts.ClientTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   f.opts.ClientTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if pin.IsValid() {
		// One address of a name: dial it, whatever the URL's host resolves
		// to now (TLS still verifies the name in the URL).
		addr := pin.String()
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	u.client = &http.Client{Transport: tr, Timeout: f.opts.ClientTimeout}
	u.up.Store(true)
	u.v2.Store(f.opts.Protocol == "v2")
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
	for u.bytes > u.f.opts.MaxBufferSize {
		switch {
		case len(u.queue) > 1:
			old := u.queue[0]
			u.queue[0] = nil
			u.queue = u.queue[1:]
			u.bytes -= len(old.body)
			u.f.dropped(old, reasonBufferFull)
		case len(u.inflight) > 0:
			old := u.inflight[0]
			u.inflight = u.inflight[1:]
			u.bytes -= len(old.body)
			old.dropped = true
			old.cancel()
			u.f.dropped(old, reasonBufferFull)
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

// expireLocked drops queued batches whose deadline passed.
func (u *upstream) expireLocked(now time.Time) {
	kept := u.queue[:0]
	for _, b := range u.queue {
		if now.After(b.deadline) {
			u.bytes -= len(b.body)
			u.f.dropped(b, reasonExpired)
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

// run starts requests for queued batches while the upstream is in the
// choice (or the forwarder is draining) and a request slot is free. It
// returns when ctx ends, or when the upstream was retired and is empty.
func (u *upstream) run(ctx context.Context) {
	defer u.f.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		u.mu.Lock()
		u.expireLocked(time.Now())
		if u.retired && len(u.queue) == 0 && len(u.inflight) == 0 {
			u.mu.Unlock()
			u.f.forget(u)
			return
		}
		var b *batch
		if len(u.queue) > 0 && (u.up.Load() || u.f.draining.Load()) {
			select {
			case u.f.sem <- struct{}{}:
				b = u.queue[0]
				u.queue[0] = nil
				u.queue = u.queue[1:]
				u.inflight = append(u.inflight, b)
				var bctx context.Context
				bctx, b.cancel = context.WithCancel(ctx)
				u.f.wg.Add(1)
				go u.post(bctx, b)
			default:
			}
		}
		u.mu.Unlock()
		if b != nil {
			continue
		}
		select {
		case <-u.wake:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// outcome of one attempt.
type outcome struct {
	ok         bool
	fallback   bool // 404 on a v3 endpoint
	fatal      bool // not worth retrying (fast-fail)
	unhealthy  bool // counts towards taking the upstream out
	retryAfter time.Duration
	err        error
}

// post delivers b, retrying within its deadline.
func (u *upstream) post(ctx context.Context, b *batch) {
	f := u.f
	defer f.wg.Done()
	defer func() {
		<-f.sem
		f.wakeAll()
	}()
	defer b.cancel()
	for attempt := 1; ; attempt++ {
		if !b.v2 && u.v2.Load() && !u.convert(b) {
			return
		}
		start := time.Now()
		o := u.attempt(ctx, b)
		f.m.duration.Observe(time.Since(start).Seconds())
		switch {
		case o.ok:
			u.fails.Store(0)
			u.lastOK.Store(time.Now().UnixNano())
			f.m.sentBytes.Add(float64(len(b.body)))
			f.sentItems(b)
			u.finish(b)
			return
		case o.fallback:
			u.fallBack() // the next turn converts b
			attempt = 0
			continue
		case ctx.Err() != nil:
			u.finishDropped(b, reasonShutdown) // or already counted by enqueue
			return
		case o.fatal:
			u.logFailure(o.err, b)
			u.finishDropped(b, reasonRejected)
			return
		}
		u.setErr(o.err)
		if o.unhealthy {
			u.failed()
		}
		u.logFailure(o.err, b)
		wait := f.backoff(attempt)
		if o.retryAfter > wait {
			wait = o.retryAfter
		}
		if f.noRetry || time.Now().Add(wait).After(b.deadline) {
			u.finishDropped(b, reasonRetries)
			return
		}
		if !u.up.Load() && !f.draining.Load() {
			u.park(b)
			return
		}
		f.m.retries.Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			u.finishDropped(b, reasonShutdown)
			return
		case <-t.C:
		}
		if !u.up.Load() && !f.draining.Load() {
			u.park(b)
			return
		}
	}
}

// attempt sends b once.
func (u *upstream) attempt(ctx context.Context, b *batch) outcome {
	path := "/v3/raw"
	switch {
	case b.kind == kindRaw && b.v2:
		path = "/v2/raw"
	case b.kind == kindEvent && b.v2:
		path = "/v2/event"
	case b.kind == kindEvent:
		path = "/v3/event"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+path, bytes.NewReader(b.body))
	if err != nil {
		return outcome{fatal: true, err: fmt.Errorf("cannot build the request: %w", err)}
	}
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	for k, v := range u.f.opts.CustomHeaders {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", b.enc)
	req.Header.Set("User-Agent", u.f.userAgent)
	resp, err := u.client.Do(req)
	if err != nil {
		return outcome{unhealthy: true, err: fmt.Errorf("POST %s: %w", u.base+path, err)}
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return outcome{ok: true}
	}
	err = fmt.Errorf("POST %s: %s: %q", u.base+path, resp.Status, bytes.TrimSpace(snippet))
	o := outcome{err: err, retryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	switch {
	case code == http.StatusNotFound && !b.v2:
		o.fallback = true
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
	case code >= 500:
		o.unhealthy = true
	case code >= 400:
		o.fatal = u.f.opts.FastFail
	}
	return o
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the wait before retry n (1, 2, ...): exponential from 100ms,
// at most 5s, with ±50% jitter so that forwarders do not retry in step.
func (f *Forwarder) backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 6)
	d = min(d, 5*time.Second)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// convert re-encodes b (v3) for v2 after a fallback. Event batches become
// one request per event; the extra ones go to the head of the queue.
func (u *upstream) convert(b *batch) bool {
	before := len(b.body)
	rest, err := u.f.toV2(b)
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
		u.f.dropped(b, reason)
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
	if int(u.fails.Add(1)) >= u.f.opts.UpstreamFailures && u.up.CompareAndSwap(true, false) {
		u.f.m.down.Inc()
		u.f.log.WithFields(logrus.Fields{"upstream": u.id, "failures": u.fails.Load()}).
			Warn("taking upstream out of the choice: its series go to their next choice until a probe succeeds")
	}
}

// probe sends an empty /v2/raw (every gostatsd and garner aggregator takes
// it) and brings the upstream back into the choice when it is accepted.
func (u *upstream) probe(ctx context.Context) {
	defer u.f.wg.Done()
	defer u.probing.Store(false)
	err := u.ping(ctx)
	if err != nil {
		u.f.m.probes.WithLabelValues("down").Inc()
		u.setErr(err)
		return
	}
	u.f.m.probes.WithLabelValues("up").Inc()
	u.fails.Store(0)
	if u.up.CompareAndSwap(false, true) {
		u.f.m.up.Inc()
		u.f.log.WithField("upstream", u.id).Info("upstream answers again: back in the choice")
		u.signal()
	}
}

// ping is one empty POST /v2/raw.
func (u *upstream) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+"/v2/raw", http.NoBody)
	if err != nil {
		return err
	}
	for k, v := range u.f.opts.CustomHeaders {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", encIdentity)
	req.Header.Set("User-Agent", u.f.userAgent)
	resp, err := u.client.Do(req)
	if err != nil {
		return fmt.Errorf("probe POST %s/v2/raw: %w", u.base, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("probe POST %s/v2/raw: %s", u.base, resp.Status)
	}
	u.lastOK.Store(time.Now().UnixNano())
	return nil
}

// fallBack switches the upstream to v2, once, with one log line.
func (u *upstream) fallBack() {
	if u.v2.CompareAndSwap(false, true) {
		u.f.m.fallbacks.Inc()
		u.f.log.WithField("upstream", u.id).Warn("upstream answered 404 to /v3: speaking v2 (gostatsd's protocol) to it from now on")
	}
}

// logFailure logs a failed attempt, at most once per 10s per upstream.
func (u *upstream) logFailure(err error, b *batch) {
	if err == nil {
		err = errors.New("unknown error")
	}
	u.mu.Lock()
	now := time.Now()
	if now.Sub(u.logLast) < 10*time.Second {
		u.logSupp++
		u.mu.Unlock()
		return
	}
	u.logLast = now
	supp := u.logSupp
	u.logSupp = 0
	u.mu.Unlock()
	u.f.log.WithFields(logrus.Fields{"upstream": u.id, "kind": b.kind.String(), "suppressed": supp}).
		WithError(err).Warn("forwarding request failed")
}
