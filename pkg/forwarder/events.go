package forwarder

import (
	"context"
	"strings"

	"github.com/garner-metrics/garner/pkg/model"
)

// maxPendingEvents bounds the events and service checks waiting for the next
// event batch.
const maxPendingEvents = 10000

// SendEvent queues an event for the next event batch (every flush-interval).
func (f *Forwarder) SendEvent(_ context.Context, e *model.Event) error {
	f.queueEvent(func() { f.events = append(f.events, e) })
	return nil
}

// SendServiceCheck queues a service check for the next event batch. v2
// upstreams have no service checks: those are dropped and counted.
func (f *Forwarder) SendServiceCheck(_ context.Context, c *model.ServiceCheck) error {
	f.queueEvent(func() { f.checks = append(f.checks, c) })
	return nil
}

// queueEvent calls add under evMu, unless maxPendingEvents are waiting:
// then it counts a drop.
func (f *Forwarder) queueEvent(add func()) {
	f.evMu.Lock()
	defer f.evMu.Unlock()
	if len(f.events)+len(f.checks) >= maxPendingEvents {
		f.m.evDropped.Inc()
		return
	}
	add()
}

// flushEvents routes the waiting events and service checks: v3 upstreams
// get one /v3/event batch each, v2 upstreams one /v2/event per event.
func (f *Forwarder) flushEvents() {
	f.evMu.Lock()
	events, checks := f.events, f.checks
	f.events, f.checks = nil, nil
	f.evMu.Unlock()
	if len(events)+len(checks) == 0 {
		return
	}
	ups := f.upstreams()
	if len(ups) == 0 {
		return
	}
	ch := newChoice(ups)
	pick := func(parts ...string) int {
		var h uint64
		f.encMu.Lock()
		h, f.keyBuf = seriesHash(f.keyBuf, &model.Series{Name: strings.Join(parts, "\x00")})
		f.encMu.Unlock()
		return ch.pick(h)
	}
	evBy := map[int][]*model.Event{}
	for _, e := range events {
		i := pick(e.Title, e.Hostname, e.AggregationKey, e.Source)
		evBy[i] = append(evBy[i], e)
	}
	scBy := map[int][]*model.ServiceCheck{}
	for _, c := range checks {
		i := pick(c.Name, c.Hostname, c.Source)
		scBy[i] = append(scBy[i], c)
	}
	for i, u := range ups {
		evs, scs := evBy[i], scBy[i]
		if len(evs)+len(scs) == 0 {
			continue
		}
		if u.v2.Load() {
			for _, e := range evs {
				if b, err := f.newBatch(kindEvent, true, appendEvent(nil, e), 1, 1, nil); err == nil {
					u.enqueue(b)
				}
			}
			if len(scs) > 0 {
				f.m.dropped(&batch{items: len(scs), samples: len(scs)}, reasonRejected, u.id)
			}
			continue
		}
		raw := appendEventBatch(nil, newBatchID(), evs, scs)
		if b, err := f.newBatch(kindEvent, false, raw, len(evs)+len(scs), len(evs)+len(scs), nil); err == nil {
			u.enqueue(b)
		}
	}
}
