package forwarder

import (
	"context"
	"errors"
	"time"
)

// Dependency is one api-endpoint for the health registry.
type Dependency struct {
	Name  string // the api-endpoint
	Check func(ctx context.Context) error
}

// Dependencies returns one check per api-endpoint: it passes when one of
// the endpoint's upstreams accepted a request recently (within three
// flush intervals plus the client timeout), else when one answers a probe
// now.
func (f *Forwarder) Dependencies() []Dependency {
	var out []Dependency
	for _, ep := range f.endpoints {
		out = append(out, Dependency{Name: ep.raw, Check: func(ctx context.Context) error { return f.checkEndpoint(ctx, ep) }})
	}
	return out
}

func (f *Forwarder) checkEndpoint(ctx context.Context, ep *endpoint) error {
	f.mu.Lock()
	ups := append([]*upstream(nil), ep.ups...)
	f.mu.Unlock()
	recent := time.Now().Add(-(3*f.opts.FlushInterval + f.opts.ClientTimeout)).UnixNano()
	for _, u := range ups {
		if u.lastOK.Load() >= recent {
			return nil
		}
	}
	var errs []error
	for _, u := range ups {
		err := u.ping(ctx)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
