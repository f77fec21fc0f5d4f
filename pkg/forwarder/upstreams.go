package forwarder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
)

// endpoint is one api-endpoint with the upstreams it stands for now.
type endpoint struct {
	raw  string
	url  *url.URL
	host string // to resolve ("" when the host is an address or resolution is off)
	port string
	ups  []*upstream
}

// parseEndpoint checks an api-endpoint; with resolve, a host name (not an
// address) is resolved into one upstream per address.
func parseEndpoint(raw string, resolve bool) (*endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api-endpoint %q: want an http:// or https:// base URL", raw)
	}
	ep := &endpoint{raw: raw, url: u, port: u.Port()}
	if ep.port == "" {
		ep.port = "80"
		if u.Scheme == "https" {
			ep.port = "443"
		}
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil && resolve {
		ep.host = u.Hostname()
	}
	return ep, nil
}

// upstreams are the upstreams in the routing choice now.
func (f *Forwarder) upstreams() []*upstream {
	if p := f.active.Load(); p != nil {
		return *p
	}
	return nil
}

// allUpstreams are the active and the retired ones not yet drained.
func (f *Forwarder) allUpstreams() []*upstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*upstream, 0, len(f.all))
	for u := range f.all {
		out = append(out, u)
	}
	return out
}

// resolveLocked sets ep.ups from the endpoint's current addresses. On a
// failed resolution the previous upstreams stay; without any, the endpoint
// is one upstream that the HTTP client resolves itself.
func (f *Forwarder) resolveLocked(ctx context.Context, ep *endpoint) {
	type want struct {
		id  string
		pin netip.AddrPort
	}
	var wants []want
	if ep.host != "" {
		addrs, err := f.opts.Resolver.LookupNetIP(ctx, "ip", ep.host)
		if err != nil || len(addrs) == 0 {
			f.m.dnsFailure.Inc()
			if err == nil {
				err = errors.New("no addresses")
			}
			f.log.WithError(err).WithField("api_endpoint", ep.raw).Warn("cannot resolve api-endpoint; keeping its previous addresses")
			if len(ep.ups) > 0 {
				return
			}
		}
		for _, a := range addrs {
			p, perr := parsePort(ep.port)
			if perr != nil {
				continue
			}
			ap := netip.AddrPortFrom(a.Unmap(), p)
			id := ep.url.Scheme + "://" + ap.String() + ep.url.EscapedPath()
			wants = append(wants, want{id: id, pin: ap})
		}
		slices.SortFunc(wants, func(a, b want) int { return strings.Compare(a.id, b.id) })
	}
	if len(wants) == 0 {
		wants = []want{{id: ep.raw}}
	}
	old := map[string]*upstream{}
	for _, u := range ep.ups {
		old[u.id] = u
	}
	var ups []*upstream
	for _, w := range wants {
		if u, ok := old[w.id]; ok {
			ups = append(ups, u)
			delete(old, w.id)
			continue
		}
		if u := f.reviveLocked(w.id); u != nil {
			ups = append(ups, u)
			f.log.WithFields(logrus.Fields{"api_endpoint": ep.raw, "upstream": u.id}).Info("upstream address back: sending what it still holds")
			continue
		}
		cfg := f.upBase
		cfg.id, cfg.base, cfg.pin = w.id, ep.url, w.pin
		u := newUpstream(cfg)
		ups = append(ups, u)
		f.all[u] = struct{}{}
		f.startLocked(u)
		if ep.ups != nil {
			f.log.WithFields(logrus.Fields{"api_endpoint": ep.raw, "upstream": u.id}).Info("new upstream address")
		}
	}
	for _, u := range old {
		u.mu.Lock()
		u.retired = true
		u.mu.Unlock()
		u.signal()
		f.log.WithFields(logrus.Fields{"api_endpoint": ep.raw, "upstream": u.id}).Info("upstream address gone: sending what it holds, then forgetting it")
	}
	ep.ups = ups
}

func parsePort(s string) (uint16, error) {
	var p uint16
	_, err := fmt.Sscan(s, &p)
	return p, err
}

// publishLocked makes the current upstreams the routing choice.
func (f *Forwarder) publishLocked() {
	var ups []*upstream
	for _, ep := range f.endpoints {
		ups = append(ups, ep.ups...)
	}
	slices.SortFunc(ups, func(a, b *upstream) int { return strings.Compare(a.id, b.id) })
	ups = slices.CompactFunc(ups, func(a, b *upstream) bool { return a.id == b.id })
	f.active.Store(&ups)
}

// startLocked starts u's loop when Run is running (else Run starts it).
func (f *Forwarder) startLocked(u *upstream) {
	if f.runCtx == nil || u.started.Swap(true) {
		return
	}
	f.pool.wg.Add(1)
	go u.run(f.runCtx)
}

// reviveLocked takes back a retired upstream whose address returned (an
// aggregator out of the DNS answer while it restarted): what it still holds
// is delivered there instead of waiting, unprobed, for max-buffer-age.
func (f *Forwarder) reviveLocked(id string) *upstream {
	for u := range f.all {
		if u.id != id {
			continue
		}
		u.mu.Lock()
		ok := u.retired && !u.gone
		if ok {
			u.retired = false
		}
		u.mu.Unlock()
		if ok {
			return u
		}
	}
	return nil
}

// forget removes a retired upstream that has nothing left to send.
func (f *Forwarder) forget(u *upstream) {
	f.mu.Lock()
	delete(f.all, u)
	f.mu.Unlock()
}

func (f *Forwarder) wakeAll() {
	for _, u := range f.allUpstreams() {
		u.signal()
	}
}

// probeDown probes every upstream that is out (one probe each at a time),
// each after a random wait of up to half the probe interval: forwarders
// whose tickers run in step (a fleet started or cut off together) do not
// all probe, and then all send what they held, at the same instant when
// the tier comes back.
func (f *Forwarder) probeDown(ctx context.Context) {
	for _, u := range f.upstreams() {
		if !u.up.Load() && u.probing.CompareAndSwap(false, true) {
			f.pool.wg.Add(1)
			go u.probe(ctx, rand.N(f.opts.ProbeInterval/2+1))
		}
	}
}

// refreshDNS re-resolves the endpoints that are names.
func (f *Forwarder) refreshDNS(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, f.opts.ClientTimeout)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ep := range f.endpoints {
		if ep.host != "" {
			f.resolveLocked(rctx, ep)
		}
	}
	f.publishLocked()
}
