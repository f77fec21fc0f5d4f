package forwarder

import (
	"context"
	"time"
)

// Run sends until ctx ends, then keeps sending what it holds for
// DrainTimeout (retrying even upstreams that are out), counts what is left
// as dropped, and returns nil once every goroutine it started has exited.
func (f *Forwarder) Run(ctx context.Context) error {
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	f.mu.Lock()
	f.runCtx = sendCtx
	for u := range f.all {
		f.startLocked(u)
	}
	f.mu.Unlock()

	events := time.NewTicker(f.opts.FlushInterval)
	defer events.Stop()
	probes := time.NewTicker(f.opts.ProbeInterval)
	defer probes.Stop()
	var dns <-chan time.Time
	if f.opts.DNSRefresh > 0 {
		t := time.NewTicker(f.opts.DNSRefresh)
		defer t.Stop()
		dns = t.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-events.C:
			f.flushEvents()
		case <-probes.C:
			f.probeDown(sendCtx)
		case <-dns:
			f.refreshDNS(sendCtx)
		}
	}

	// Drain: send what is held, every upstream allowed, until empty or the
	// timeout. Events may still arrive from the event dispatcher meanwhile.
	f.pool.draining.Store(true)
	f.wakeAll()
	start := time.Now()
	deadline := start.Add(f.opts.DrainTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		f.flushEvents()
		if f.empty() && time.Since(start) >= 200*time.Millisecond {
			break
		}
		<-tick.C
	}
	cancelSend()
	f.pool.wg.Wait()
	for _, u := range f.allUpstreams() {
		u.mu.Lock()
		for _, b := range u.queue {
			f.m.dropped(b, reasonShutdown, u.id)
		}
		u.queue, u.bytes = nil, 0
		u.mu.Unlock()
	}
	f.m.drops.flush(true)
	return nil
}

// empty reports whether nothing is queued, in flight or waiting to be
// batched.
func (f *Forwarder) empty() bool {
	f.evMu.Lock()
	n := len(f.events) + len(f.checks)
	f.evMu.Unlock()
	if n > 0 {
		return false
	}
	for _, u := range f.allUpstreams() {
		if q, in, _ := u.pending(); q+in > 0 {
			return false
		}
	}
	return true
}
