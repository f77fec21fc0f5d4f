package flush

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/metrics"
)

// Events queues events and service checks (bounded; a full queue drops and
// counts) and delivers each to every backend. Event and ServiceCheck are safe
// for concurrent use and never block.
type Events struct {
	queue   chan any
	bs      []backends.Backend
	timeout time.Duration
	log     logrus.FieldLogger
	dropped prometheus.Counter
	failed  *prometheus.CounterVec
}

// NewEvents builds an event dispatcher with room for queueLen pending items.
func NewEvents(queueLen int, timeout time.Duration, bs []backends.Backend, log logrus.FieldLogger, reg prometheus.Registerer) *Events {
	e := &Events{
		queue: make(chan any, queueLen), bs: bs, timeout: timeout, log: log,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_events_dropped_total", Help: "Events and service checks dropped because the event queue was full."}),
		failed:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_backend_event_errors_total", Help: "Events a backend failed to take."}, []string{"backend"}),
	}
	reg.MustRegister(e.dropped, e.failed)
	return e
}

// Event queues an event.
func (e *Events) Event(ev *metrics.Event) { e.put(ev) }

// ServiceCheck queues a service check.
func (e *Events) ServiceCheck(c *metrics.ServiceCheck) { e.put(c) }

func (e *Events) put(x any) {
	select {
	case e.queue <- x:
	default:
		e.dropped.Inc()
	}
}

// Run delivers queued items until ctx is cancelled, then delivers what is
// still queued (each send bounded by the timeout) and returns nil.
func (e *Events) Run(ctx context.Context) error {
	for {
		select {
		case x := <-e.queue:
			e.deliver(context.Background(), x)
		case <-ctx.Done():
			for {
				select {
				case x := <-e.queue:
					e.deliver(context.Background(), x)
				default:
					return nil
				}
			}
		}
	}
}

func (e *Events) deliver(ctx context.Context, x any) {
	for _, b := range e.bs {
		sctx, cancel := context.WithTimeout(ctx, e.timeout)
		var err error
		switch v := x.(type) {
		case *metrics.Event:
			err = b.SendEvent(sctx, v)
		case *metrics.ServiceCheck:
			if sc, ok := b.(backends.ServiceCheckSender); ok {
				err = sc.SendServiceCheck(sctx, v)
			}
		}
		cancel()
		if err != nil {
			e.failed.WithLabelValues(b.Name()).Inc()
			e.log.WithError(err).WithField("backend", b.Name()).Warn("event delivery failed")
		}
	}
}
