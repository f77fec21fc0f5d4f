// Package backends defines the interface every output of garner implements.
// Each backend is its own package under backends/; cmd/garner picks them by
// name from the registry in backends/all.
package backends

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/model"
)

// Backend receives every flush and every event.
//
// The flusher calls SendMetrics for one snapshot at a time per backend, with a
// context that carries the backend's deadline; a call that has not returned
// when the next flush is due makes that flush be dropped for this backend (and
// counted), never queued without bound. SendEvent may be called concurrently
// with SendMetrics. Backends must not modify the snapshot or the event.
type Backend interface {
	// Name is the backend's name as written in the backends config key.
	Name() string
	// SendMetrics delivers one flush. It returns when the data was handed to
	// the destination (or queued in the backend's own bounded buffer).
	SendMetrics(ctx context.Context, s *model.Snapshot) error
	// SendEvent delivers one event. Backends without events return nil.
	SendEvent(ctx context.Context, e *model.Event) error
}

// NoEvents is embedded by backends whose destination has no events: its
// SendEvent discards the event and returns nil, as Backend asks of them.
type NoEvents struct{}

// SendEvent implements Backend by discarding the event.
func (NoEvents) SendEvent(context.Context, *model.Event) error { return nil }

// ServiceCheckSender is implemented by backends that accept DogStatsD
// service checks. The others never see them.
type ServiceCheckSender interface {
	SendServiceCheck(ctx context.Context, c *model.ServiceCheck) error
}

// Runner is implemented by backends with background work (a connection, a
// send queue). Run returns only after that work has stopped; it returns when
// ctx is cancelled, after a best-effort delivery of what is still queued.
type Runner interface {
	Run(ctx context.Context) error
}

// HealthChecker is implemented by backends that can tell whether their
// destination is reachable (a cheap connect or ping, bounded by ctx). garner
// registers it as a soft dependency in the admin server's dependency
// registry; it is called by a background prober, never on the ingest path.
type HealthChecker interface {
	CheckHealth(ctx context.Context) error
}

// Deps is what every backend constructor gets besides its config section.
type Deps struct {
	Log logrus.FieldLogger
	// Registerer is for the backend's own self-metrics; names must be unique
	// to the backend (garner_<backend>_...).
	Registerer prometheus.Registerer
	// DroppedSeries is the backend's child of
	// garner_backend_dropped_series_total{backend=<name>}: add every series
	// the backend gives up on (buffer full, retries exhausted, rejected).
	DroppedSeries prometheus.Counter
}

// Register registers the self-metrics of owner (a backend's name, for the
// error) with d.Registerer; a clash names owner and the metric's error.
func (d Deps) Register(owner string, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := d.Registerer.Register(c); err != nil {
			return fmt.Errorf("cannot register %s self-metrics: %w", owner, err)
		}
	}
	return nil
}

// NonFinite creates and registers garner_<backend>_nonfinite_values_total,
// the values backend's wire has no form for (NaN, ±Inf); help says what
// became of them.
func (d Deps) NonFinite(backend, help string) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_" + backend + "_nonfinite_values_total", Help: help})
	return c, d.Register(backend, c)
}

// DialCheck is a HealthChecker body for backends that speak plain TCP or
// UDP: it dials address (bounded by ctx and timeout) and hangs up. Over UDP
// it only proves that the address resolves.
func DialCheck(ctx context.Context, network, address string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	return conn.Close()
}
