package garnertest

import (
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
)

// BackendDeps returns what a backend's constructor takes, for a unit test:
// a logger at debug level that writes nowhere (so every log call runs), a
// fresh registry for its self-metrics, and its dropped-series counter. The
// registry and the counter are returned for the test to read.
func BackendDeps() (backends.Deps, *prometheus.Registry, prometheus.Counter) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	reg := prometheus.NewRegistry()
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_test_dropped_series_total", Help: "Series the backend under test dropped."})
	return backends.Deps{Log: log, Registerer: reg, DroppedSeries: dropped}, reg, dropped
}

// NewBackend builds a backend with its constructor and BackendDeps, failing
// the test on an error; it returns the backend and its dropped-series
// counter.
func NewBackend[B, O any](t testing.TB, newBackend func(O, backends.Deps) (B, error), opts O) (B, prometheus.Counter) {
	t.Helper()
	deps, _, dropped := BackendDeps()
	b, err := newBackend(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	return b, dropped
}

// Gathered is the sum over every series of the counter or gauge name in g;
// it fails the test if g has no such metric.
func Gathered(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
