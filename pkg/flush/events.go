package flush

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/model"
)

// EventOptions bounds the event dispatcher.
type EventOptions struct {
	QueueLength int           // items waiting for delivery; at least 1
	MaxLength   int           // bytes of an event's title+text or a check's message; 0 = unbounded
	Timeout     time.Duration // bound on one delivery to one backend
}

// Events queues events and service checks (bounded; a full queue drops and
// counts, as does an item over the length bound) and delivers each to every
// backend. Event and ServiceCheck are safe for concurrent use and never block.
type Events struct {
	queue     chan any
	maxLen    int
	bs        []backends.Backend
	timeout   time.Duration
	log       logrus.FieldLogger
	queueFull prometheus.Counter
	tooLong   prometheus.Counter
	failed    *prometheus.CounterVec
}

// NewEvents builds an event dispatcher; Run delivers what it queues.
func NewEvents(opts EventOptions, bs []backends.Backend, log logrus.FieldLogger, reg prometheus.Registerer) *Events {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_events_dropped_total",
		Help: "Events and service checks dropped, by reason: queue_full (max-event-queue-size), too_long (max-event-length).",
	}, []string{"reason"})
	e := &Events{
		queue: make(chan any, max(1, opts.QueueLength)), maxLen: opts.MaxLength, bs: bs, timeout: opts.Timeout, log: log,
		queueFull: dropped.WithLabelValues("queue_full"),
		tooLong:   dropped.WithLabelValues("too_long"),
		failed:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_backend_event_errors_total", Help: "Events a backend failed to take."}, []string{"backend"}),
	}
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "garner_events_queued",
		Help: "Events and service checks waiting for delivery to the backends.",
	}, func() float64 { return float64(len(e.queue)) })
	reg.MustRegister(dropped, e.failed, queued)
	return e
}

// Event queues an event, unless its title and text are over the length bound.
func (e *Events) Event(ev *model.Event) {
	if e.maxLen > 0 && len(ev.Title)+len(ev.Text) > e.maxLen {
		e.tooLong.Inc()
		return
	}
	e.put(ev)
}

// ServiceCheck queues a service check, unless its message is over the
// length bound.
func (e *Events) ServiceCheck(c *model.ServiceCheck) {
	if e.maxLen > 0 && len(c.Message) > e.maxLen {
		e.tooLong.Inc()
		return
	}
	e.put(c)
}

func (e *Events) put(x any) {
	select {
	case e.queue <- x:
	default:
		e.queueFull.Inc()
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
		case *model.Event:
			err = b.SendEvent(sctx, v)
		case *model.ServiceCheck:
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
