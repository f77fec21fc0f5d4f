// Package all builds backends by name. Adding a backend is a new package
// under backends/ plus one case here (and its name in config.KnownBackends).
package all

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/datadog"
	"github.com/garner-metrics/garner/backends/exporter"
	"github.com/garner-metrics/garner/backends/graphite"
	"github.com/garner-metrics/garner/backends/influxdb"
	"github.com/garner-metrics/garner/backends/null"
	"github.com/garner-metrics/garner/backends/otlp"
	promrw "github.com/garner-metrics/garner/backends/prometheus"
	"github.com/garner-metrics/garner/backends/statsdaemon"
	"github.com/garner-metrics/garner/backends/stdout"
	"github.com/garner-metrics/garner/config"
)

// New builds every backend named in cfg.Backends.
func New(cfg *config.Config, log logrus.FieldLogger, reg prometheus.Registerer) ([]backends.Backend, error) {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_backend_dropped_series_total",
		Help: "Series a backend gave up on: buffer full, retries exhausted or rejected by the destination.",
	}, []string{"backend"})
	reg.MustRegister(dropped)
	var out []backends.Backend
	for _, name := range cfg.Backends {
		deps := backends.Deps{Log: log.WithField("backend", name), Registerer: reg, DroppedSeries: dropped.WithLabelValues(name)}
		b, err := newOne(name, cfg, deps)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", name, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func newOne(name string, cfg *config.Config, deps backends.Deps) (backends.Backend, error) {
	switch name {
	case stdout.Name:
		return stdout.New(stdout.DefaultOptions()), nil
	case null.Name:
		return null.Backend{}, nil
	case graphite.Name:
		return graphite.New(cfg.Graphite, deps)
	case influxdb.Name:
		return influxdb.New(cfg.InfluxDB, deps)
	case datadog.Name:
		return datadog.New(cfg.Datadog, deps)
	case statsdaemon.Name:
		return statsdaemon.New(cfg.Statsdaemon, deps)
	case promrw.Name:
		return promrw.New(cfg.Prometheus, cfg.PercentThreshold, deps)
	case otlp.Name:
		return otlp.New(cfg.OTLP, deps)
	case exporter.Name:
		return exporter.New(cfg.Exporter, deps)
	}
	return nil, fmt.Errorf("unknown backend (known: %v)", config.KnownBackends)
}
