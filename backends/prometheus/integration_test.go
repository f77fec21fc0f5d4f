package prometheus

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// Integration tests: the backend writes to a REAL VictoriaMetrics and a REAL
// Prometheus (Debian packages victoria-metrics and prometheus), each
// started by the test on a loopback port with a temporary data folder, and
// the values are read back through their query APIs.

// testSnapshots are two flushes, 10s apart, ending at end.
func testSnapshots(end time.Time) []*model.Snapshot {
	src := "10.1.2.3"
	hist := func(vals ...float64) model.Timer {
		t := model.Timer{Series: model.Series{Name: "it.resp-size", Tags: []string{"gsd_histogram:10_100"}, Source: src}, Values: vals}
		var b10, b100 uint64
		for _, v := range vals {
			if v <= 10 {
				b10++
			}
			if v <= 100 {
				b100++
			}
		}
		t.Histogram = []model.Bucket{{Le: 10, Count: b10}, {Le: 100, Count: b100}, {Le: math.Inf(1), Count: uint64(len(vals))}}
		return t
	}
	timer := func(vals ...float64) model.Timer {
		t := model.Timer{Series: model.Series{Name: "it.latency", Tags: []string{"route:/api"}, Source: src}, Values: vals,
			SampledCount: float64(len(vals)), Median: vals[len(vals)/2]}
		for _, v := range vals {
			t.Sum += v
		}
		return t
	}
	mk := func(at time.Time, hits float64, gauge float64, tv []float64, hv []float64) *model.Snapshot {
		return &model.Snapshot{
			Time: at, Interval: 10 * time.Second,
			Counters: []model.Counter{{Series: model.Series{Name: "it.hits", Tags: []string{"env:test", "canary"}, Source: src}, Value: hits}},
			Gauges:   []model.Gauge{{Series: model.Series{Name: "it.queue", Source: src}, Value: gauge}},
			Sets:     []model.Set{{Series: model.Series{Name: "it.users", Source: src}, Members: map[string]struct{}{"a": {}, "b": {}, "c": {}}}},
			Timers:   []model.Timer{timer(tv...), hist(hv...)},
		}
	}
	return []*model.Snapshot{
		mk(end.Add(-10*time.Second), 4, 1.5, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []float64{5, 50, 500}),
		mk(end, 2.5, -3, []float64{20, 30}, []float64{1, 2}),
	}
}

// wantAfter are the values of the second flush.
var wantAfter = []struct {
	name   string
	labels map[string]string
	value  float64
}{
	{"it_hits_total", map[string]string{"env": "test", "unnamed": "canary", "host": "10.1.2.3"}, 6.5},
	{"it_queue", map[string]string{"host": "10.1.2.3"}, -3},
	{"it_users", map[string]string{"host": "10.1.2.3"}, 3},
	{"it_latency", map[string]string{"route": "/api", "host": "10.1.2.3", "quantile": "0.5"}, 30},
	{"it_latency", map[string]string{"route": "/api", "host": "10.1.2.3", "quantile": "0.9"}, 30},
	{"it_latency_sum", map[string]string{"route": "/api", "host": "10.1.2.3"}, 105},
	{"it_latency_count", map[string]string{"route": "/api", "host": "10.1.2.3"}, 12},
	{"it_resp_size_bucket", map[string]string{"gsd_histogram": "10_100", "host": "10.1.2.3", "le": "10"}, 3},
	{"it_resp_size_bucket", map[string]string{"gsd_histogram": "10_100", "host": "10.1.2.3", "le": "100"}, 4},
	{"it_resp_size_bucket", map[string]string{"gsd_histogram": "10_100", "host": "10.1.2.3", "le": "+Inf"}, 5},
	{"it_resp_size_sum", map[string]string{"gsd_histogram": "10_100", "host": "10.1.2.3"}, 558},
	{"it_resp_size_count", map[string]string{"gsd_histogram": "10_100", "host": "10.1.2.3"}, 5},
}

func selector(name string, labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// sendTestSnapshots sends testSnapshots through a client remote-writing to
// url in batches of batch series (percentile 90), and checks its health
// check. It returns the snapshots' end and the client's dropped counter.
func sendTestSnapshots(t *testing.T, url string, batch int) (time.Time, prom.Counter) {
	t.Helper()
	c, _, dropped := newClient(t, Options{RemoteWriteURL: url, MetricsPerBatch: batch}, 90)
	end := time.Now().Truncate(time.Second)
	for _, s := range testSnapshots(end) {
		if err := c.SendMetrics(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CheckHealth(context.Background()); err != nil {
		t.Errorf("CheckHealth: %v", err)
	}
	return end, dropped
}

func TestRemoteWriteToVictoriaMetrics(t *testing.T) {
	vm := garnertest.StartVictoriaMetrics(t, false)
	end, dropped := sendTestSnapshots(t, vm.URL+"/api/v1/write", 4)
	for _, w := range wantAfter {
		sel := selector(w.name, w.labels)
		t.Run(sel, func(t *testing.T) {
			got := vm.WaitExport(t, sel, func(ss []garnertest.Series) bool {
				return len(ss) == 1 && len(ss[0].Timestamps) > 0 && ss[0].Timestamps[len(ss[0].Timestamps)-1] == end.UnixMilli()
			})
			if len(got) != 1 {
				t.Fatalf("want 1 series, got %+v", got)
			}
			s := got[0]
			if len(s.Metric) != len(w.labels)+1 {
				t.Errorf("labels %v, want exactly %v and __name__", s.Metric, w.labels)
			}
			if last := s.Values[len(s.Values)-1]; last != w.value || s.Timestamps[len(s.Timestamps)-1] != end.UnixMilli() {
				t.Errorf("last sample %v at %d, want %v at %d (all: %v %v)", last, s.Timestamps[len(s.Timestamps)-1], w.value, end.UnixMilli(), s.Values, s.Timestamps)
			}
		})
	}
	if countOf(dropped) != 0 {
		t.Errorf("dropped %v series", countOf(dropped))
	}
}

func TestRemoteWriteToPrometheus(t *testing.T) {
	p := garnertest.StartPrometheus(t)
	end, dropped := sendTestSnapshots(t, p.URL+"/api/v1/write", 5)
	for _, w := range wantAfter {
		sel := selector(w.name, w.labels)
		t.Run(sel, func(t *testing.T) {
			got := p.QueryAt(t, sel, end)
			if len(got) != 1 {
				t.Fatalf("want 1 sample, got %+v", got)
			}
			if got[0].Values[0] != w.value || got[0].Timestamps[0] != end.UnixMilli() {
				t.Errorf("got %v at %d, want %v at %d", got[0].Values[0], got[0].Timestamps[0], w.value, end.UnixMilli())
			}
			if len(got[0].Metric) != len(w.labels)+1 {
				t.Errorf("labels %v, want exactly %v and __name__", got[0].Metric, w.labels)
			}
		})
	}
	// PromQL reads the series as the types they imitate.
	inc := p.QueryAt(t, `increase(it_hits_total[1m])`, end)
	if len(inc) != 1 || inc[0].Values[0] <= 0 {
		t.Errorf("increase(it_hits_total[1m]) = %+v, want one positive value", inc)
	}
	q := p.QueryAt(t, `histogram_quantile(0.5, it_resp_size_bucket)`, end)
	if len(q) != 1 || q[0].Values[0] <= 0 || q[0].Values[0] > 10 {
		t.Errorf("histogram_quantile(0.5) = %+v, want one value in (0, 10] (3 of 5 values are <= 10)", q)
	}
	if countOf(dropped) != 0 {
		t.Errorf("dropped %v series", countOf(dropped))
	}
}

func countOf(c prom.Counter) float64 { return testutil.ToFloat64(c) }
