package datadog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

func vmConfig(vm *garnertest.VictoriaMetrics, compression string) Options {
	return Options{
		APIKey: "test-key", APIEndpoint: vm.URL + "/datadog", Compression: compression, MetricsPerBatch: 2,
		MaxRequests: 2, MaxRequestElapsedTime: 2 * time.Second, ClientTimeout: 2 * time.Second, UserAgent: "garner-test",
	}
}

// TestVictoriaMetrics posts to a real VictoriaMetrics' Datadog API
// (/datadog/api/v1/series) and reads the series back with /api/v1/export.
// VictoriaMetrics 1.79 keeps Datadog names as sent (dots included), makes
// "k:v" tags labels k="v", a bare tag t the label t="no_label_value", and
// host a label.
func TestVictoriaMetrics(t *testing.T) {
	vm := garnertest.StartVictoriaMetrics(t, false)
	for _, comp := range []string{"deflate", "gzip", ""} {
		t.Run("compression="+comp, func(t *testing.T) {
			c, dropped := garnertest.NewBackend(t, New, vmConfig(vm, comp))
			if err := c.CheckHealth(context.Background()); err != nil {
				t.Fatalf("health check: %v", err)
			}
			now := time.Now().Truncate(time.Second)
			prefix := "dd_" + map[string]string{"deflate": "z", "gzip": "g", "": "n"}[comp]
			snap := &model.Snapshot{
				Time: now, Interval: 10 * time.Second,
				Counters: []model.Counter{
					{Series: model.Series{Name: prefix + ".req", Tags: []string{"bare", "env:prod"}, Source: "10.0.0.7"}, Value: 42, PerSecond: 4.2},
					{Series: model.Series{Name: prefix + ".req", Tags: []string{"env:dev"}, Source: "10.0.0.8"}, Value: 0.5, PerSecond: 0.05},
				},
				Gauges: []model.Gauge{{Series: model.Series{Name: prefix + ".temp", Tags: []string{"path:a:b"}}, Value: -3}},
				Sets:   []model.Set{{Series: model.Series{Name: prefix + ".users"}, Members: map[string]struct{}{"x": {}}}},
				Timers: []model.Timer{{Series: model.Series{Name: prefix + ".lat"}, Count: 2, PerSecond: 0.2, Lower: 1, Upper: 3, Mean: 2, Median: 2, Std: 1, Sum: 4, SumSquares: 10,
					Percentiles: []model.Percentile{{Name: "upper_90", Value: 3}}}},
			}
			if err := c.SendMetrics(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
			if err := c.SendServiceCheck(context.Background(), &model.ServiceCheck{Name: "db.up", Status: model.CheckOK, Timestamp: now.Unix(), Hostname: "h"}); err != nil {
				t.Errorf("service check: %v", err)
			}
			if v := testutil.ToFloat64(dropped); v != 0 {
				t.Errorf("dropped = %v", v)
			}
			want := map[string]float64{
				prefix + `.req{bare="no_label_value",env="prod",host="10.0.0.7"}`:       4.2,
				prefix + `.req.count{bare="no_label_value",env="prod",host="10.0.0.7"}`: 42,
				prefix + `.req{env="dev",host="10.0.0.8"}`:                              0.05,
				prefix + `.req.count{env="dev",host="10.0.0.8"}`:                        0.5,
				prefix + `.temp{path="a:b"}`:                                            -3,
				prefix + `.users{}`:                                                     1,
				prefix + `.lat.count{}`:                                                 2,
				prefix + `.lat.count_ps{}`:                                              0.2,
				prefix + `.lat.upper_90{}`:                                              3,
				prefix + `.lat.sum_squares{}`:                                           10,
			}
			got := vm.WaitExport(t, `{__name__=~"`+prefix+`\\..*"}`, func(s []garnertest.Series) bool { return len(s) >= 16 })
			if len(got) != 16 {
				t.Errorf("%d series, want 16 (4 counter, 1 gauge, 1 set, 10 timer): %v", len(got), garnertest.Keys(got))
			}
			garnertest.CheckSamples(t, got, want, now)
		})
	}
}

// TestEventsRefusedByVictoriaMetricsAreCounted: VictoriaMetrics has no
// /api/v1/events; its 400 must fail the event without retries.
func TestEventsRefusedByVictoriaMetricsAreCounted(t *testing.T) {
	vm := garnertest.StartVictoriaMetrics(t, false)
	deps, reg, dropped := garnertest.BackendDeps()
	c, err := New(vmConfig(vm, "deflate"), deps)
	if err != nil {
		t.Fatal(err)
	}
	err = c.SendEvent(context.Background(), &model.Event{Title: "t", Text: "x", DateHappened: time.Now().Unix()})
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("error = %v, want VictoriaMetrics' 400", err)
	}
	if n := garnertest.Gathered(t, reg, "garner_datadog_retries_total"); n != 0 {
		t.Errorf("%v retries: a 400 must not be retried", n)
	}
	if v := testutil.ToFloat64(dropped); v != 1 {
		t.Errorf("dropped = %v, want 1", v)
	}
}

func TestDownIsBoundedAndCounted(t *testing.T) {
	addr := garnertest.FreeAddr(t) // nobody listens there
	cfg := Options{APIKey: "k", APIEndpoint: "http://" + addr, Compression: "deflate", MetricsPerBatch: 1,
		MaxRequests: 2, MaxRequestElapsedTime: 400 * time.Millisecond, ClientTimeout: time.Second}
	c, dropped := garnertest.NewBackend(t, New, cfg)
	snap := &model.Snapshot{Time: time.Now(), Gauges: []model.Gauge{{Series: model.Series{Name: "a"}}, {Series: model.Series{Name: "b"}}, {Series: model.Series{Name: "c"}}}}
	garnertest.CheckDeadDestination(t, c, dropped, snap, 3*time.Second) // a 400ms budget
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Options
	}{
		{"no key", Options{APIEndpoint: "http://x"}},
		{"no endpoint", Options{APIKey: "k"}},
		{"bad compression", Options{APIKey: "k", APIEndpoint: "http://x", Compression: "lz4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := logtest.NewNullLogger()
			if _, err := New(tc.cfg, backends.Deps{Log: log, Registerer: prometheus.NewRegistry()}); err == nil {
				t.Error("want an error")
			}
		})
	}
}
