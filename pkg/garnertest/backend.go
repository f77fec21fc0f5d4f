package garnertest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/model"
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

// CheckDeadDestination checks a backend whose destination nobody listens
// on: its health check fails, and a send of snap fails within bound with
// every series of snap counted in dropped.
func CheckDeadDestination[B interface {
	backends.Backend
	backends.HealthChecker
}](t testing.TB, b B, dropped prometheus.Counter, snap *model.Snapshot, bound time.Duration) {
	t.Helper()
	if err := b.CheckHealth(context.Background()); err == nil {
		t.Error("health check of a closed port succeeded")
	}
	start := time.Now()
	if err := b.SendMetrics(context.Background(), snap); err == nil {
		t.Fatal("want an error")
	}
	if d := time.Since(start); d > bound {
		t.Errorf("send to a dead destination took %s, want at most %s", d, bound)
	}
	if got := testutil.ToFloat64(dropped); got != float64(snap.Len()) {
		t.Errorf("dropped = %v, want %d", got, snap.Len())
	}
}

// Gathered is the sum over every series of the counter or gauge name in g;
// it fails the test if g has no such metric.
func Gathered(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	sum, found := gathered(t, g, name, nil)
	if !found {
		t.Fatalf("metric %s not registered", name)
	}
	return sum
}

// GatheredSeries is the sum over the series of the counter or gauge name in
// g that carry every label pair in labels, given as name, value, name,
// value...; with no labels, over every series. It is 0 when no series
// matches: a vector has none until one of its label values is used.
func GatheredSeries(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("GatheredSeries(%s): labels %q are not name, value pairs", name, labels)
	}
	sum, _ := gathered(t, g, name, labels)
	return sum
}

// gathered sums the series of name in g that carry every label pair in
// labels, and says whether g has the metric at all.
func gathered(t testing.TB, g prometheus.Gatherer, name string, labels []string) (float64, bool) {
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
			if hasLabels(m, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return sum, true
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// CheckReachableProbe checks the health check of an HTTP backend that
// counts any answer but an auth refusal (401, 403) or a server error (5xx)
// as reachable (httpsend's Sender.CheckReachable): against a loopback server
// answering 405 (a write endpoint's answer to a GET), 401, 403, 502 and 503
// in turn, and against a port nobody listens on. newChecker builds the
// backend with its endpoint under base (a URL without a path); probe, when
// not nil, is called with each probe request (to check its headers, say).
func CheckReachableProbe[B backends.HealthChecker](t *testing.T, newChecker func(t *testing.T, base string) B, probe func(t *testing.T, r *http.Request)) {
	t.Helper()
	// 405 is how a write endpoint answers a GET: reachable.
	for _, code := range []int{http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusForbidden, http.StatusBadGateway, http.StatusServiceUnavailable} {
		wantErr := code != http.StatusMethodNotAllowed
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if probe != nil {
					probe(t, r)
				}
				w.WriteHeader(code)
			}))
			defer srv.Close()
			if err := newChecker(t, srv.URL).CheckHealth(context.Background()); (err != nil) != wantErr {
				t.Fatalf("CheckHealth against a %d = %v, want error %v", code, err, wantErr)
			}
		})
	}
	if err := newChecker(t, "http://127.0.0.1:1").CheckHealth(context.Background()); err == nil {
		t.Fatal("nothing listens on port 1: want an error")
	}
}
