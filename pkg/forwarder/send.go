package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/garner-metrics/garner/backends/httpsend"
)

// run starts requests for queued batches while the upstream is in the
// choice (or the forwarder is draining) and a request slot is free. It
// returns when ctx ends, or when the upstream was retired and is empty.
func (u *upstream) run(ctx context.Context) {
	p := u.cfg.pool
	defer p.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		u.retryV3(time.Now())
		u.mu.Lock()
		u.expireLocked(time.Now())
		if u.retired && len(u.queue) == 0 && len(u.inflight) == 0 {
			u.gone = true
			u.mu.Unlock()
			u.cfg.retired(u)
			return
		}
		var b *batch
		if len(u.queue) > 0 && (u.up.Load() || p.draining.Load()) {
			select {
			case p.sem <- struct{}{}:
				b = u.queue[0]
				u.queue[0] = nil
				u.queue = u.queue[1:]
				// Each delivery gets its retry budget from now (a batch kept
				// while the upstream was out has used none), never past
				// max-buffer-age.
				b.deadline = time.Now().Add(b.budget)
				if b.deadline.After(b.expires) {
					b.deadline = b.expires
				}
				u.inflight = append(u.inflight, b)
				var bctx context.Context
				bctx, b.cancel = context.WithCancel(ctx)
				p.wg.Add(1)
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
			u.cfg.m.drops.flush(false)
		case <-ctx.Done():
			return
		}
	}
}

// post delivers b, retrying within its deadline (httpsend's policy). It
// parks b while the upstream is out of the choice, and re-encodes it for
// v2 when the upstream falls back.
func (u *upstream) post(ctx context.Context, b *batch) {
	p := u.cfg.pool
	defer p.wg.Done()
	defer func() {
		<-p.sem
		p.wakeAll()
	}()
	defer b.cancel()
	for {
		if !b.v2 && u.v2.Load() && !u.convert(b) {
			return
		}
		err := u.client.Do(ctx, u.request(ctx, b))
		var se *httpsend.StatusError
		switch {
		case err == nil:
			u.fails.Store(0)
			u.lastOK.Store(time.Now().UnixNano())
			u.cfg.m.delivered(b)
			u.finish(b)
			return
		case ctx.Err() != nil:
			u.finishDropped(b, reasonShutdown) // or already counted by enqueue
			return
		case errors.Is(err, httpsend.ErrStopped):
			if !b.v2 && u.v2.Load() {
				continue // another batch found the upstream speaks v2: convert b
			}
			u.park(b)
			return
		case errors.Is(err, httpsend.ErrGaveUp):
			u.finishDropped(b, reasonRetries)
			return
		case errors.As(err, &se) && se.Code == http.StatusNotFound && !b.v2:
			u.fallBack() // the next turn converts b
		default: // refused for good (fast-fail)
			u.finishDropped(b, reasonRejected)
			return
		}
	}
}

// request is b as an httpsend.Post, with the upstream's retry rules: 408,
// 429, 5xx and network errors are retried, other 4xx too unless fast-fail,
// but a 404 to /v3 is a fallback to v2; a retry waits while the upstream is
// out of the choice (unless draining).
func (u *upstream) request(ctx context.Context, b *batch) httpsend.Post {
	path := "/v3/raw"
	switch {
	case b.kind == kindRaw && b.v2:
		path = "/v2/raw"
	case b.kind == kindEvent && b.v2:
		path = "/v2/event"
	case b.kind == kindEvent:
		path = "/v3/event"
	}
	h := *u.cfg.header.Load()
	if len(b.header) > 0 {
		h = h.Clone()
		for k, vs := range b.header {
			if _, static := h[k]; !static {
				h[k] = vs
			}
		}
	}
	deadline := b.deadline
	fallback := func(code int) bool { return code == http.StatusNotFound && !b.v2 }
	return httpsend.Post{
		URL: u.base + path, Header: h, Body: b.body, Encoding: contentEncoding(b.enc), Deadline: deadline,
		Retryable: func(code int) bool {
			switch {
			case fallback(code):
				return false
			case httpsend.RetryableStatus(code) || code < 400:
				return true
			}
			return !u.cfg.fastFail
		},
		Observe: func(n int, took time.Duration, err error) {
			u.cfg.m.duration.Observe(took.Seconds())
			if n > 0 {
				u.cfg.m.retries.Inc()
			}
			var se *httpsend.StatusError
			isStatus := errors.As(err, &se)
			if err == nil || ctx.Err() != nil || (isStatus && fallback(se.Code)) {
				return
			}
			u.setErr(err)
			if !isStatus || se.Code >= 500 {
				u.failed()
			}
			u.logFailure(err, b)
		},
		Continue: func() bool {
			return (u.up.Load() || u.cfg.pool.draining.Load()) && (b.v2 || !u.v2.Load())
		},
	}
}

// probe sends an empty /v2/raw (every gostatsd and garner aggregator takes
// it) and brings the upstream back into the choice when it is accepted.
func (u *upstream) probe(ctx context.Context, after time.Duration) {
	defer u.cfg.pool.wg.Done()
	defer u.probing.Store(false)
	wait := time.NewTimer(after)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return
	case <-wait.C:
	}
	err := u.ping(ctx)
	if err != nil {
		u.cfg.m.probeDown.Inc()
		u.setErr(err)
		return
	}
	u.cfg.m.probeUp.Inc()
	u.fails.Store(0)
	if u.up.CompareAndSwap(false, true) {
		u.cfg.m.up.Inc()
		u.log.Info("upstream answers again: back in the choice")
		u.signal()
	}
}

// ping is one empty POST /v2/raw.
func (u *upstream) ping(ctx context.Context) error {
	h := u.cfg.header.Load().Clone()
	h.Set("Content-Encoding", contentEncoding(httpsend.None))
	code, err := u.client.Probe(ctx, http.MethodPost, u.base+"/v2/raw", h)
	if err != nil {
		return fmt.Errorf("probe POST %s/v2/raw: %w", u.base, err)
	}
	if code < 200 || code >= 300 {
		return fmt.Errorf("probe POST %s/v2/raw: %d %s", u.base, code, http.StatusText(code))
	}
	u.lastOK.Store(time.Now().UnixNano())
	return nil
}

// fallBack switches the upstream to v2, once, with one log line.
func (u *upstream) fallBack() {
	if u.v2.CompareAndSwap(false, true) {
		u.v2since.Store(time.Now().UnixNano())
		u.cfg.m.fallbacks.Inc()
		u.log.WithField("v3_reprobe_interval", u.cfg.reprobe.String()).
			Warn("upstream answered 404 to /v3: speaking v2 (gostatsd's protocol) to it until v3 is tried again")
	}
}

// retryV3 switches an upstream that fell back to v2 back to v3 once
// v3-reprobe-interval has passed: the next batch is encoded in v3, and a
// 404 to it falls back again (one request's cost). A 404 from an ingress
// in the middle of a deploy no longer costs float counters and
// de-duplication until the forwarder restarts.
func (u *upstream) retryV3(now time.Time) {
	if u.cfg.v2 || !u.v2.Load() || now.Sub(time.Unix(0, u.v2since.Load())) < u.cfg.reprobe {
		return
	}
	if u.v2.CompareAndSwap(true, false) {
		u.log.Info("trying v3 again with this upstream (v3-reprobe-interval passed since its 404)")
	}
}

// logFailure logs a failed attempt, at most once per 10s per upstream.
func (u *upstream) logFailure(err error, b *batch) {
	if e := u.logLim.Entry(u.log); e != nil {
		e.WithField("kind", b.kind.String()).WithError(err).Warn("forwarding request failed")
	}
}
