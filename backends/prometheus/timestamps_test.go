package prometheus

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/model"
)

// TestPastIntervals: a past interval's counter (timestamps = "honor") adds
// to its series' running total, sent once per series at the flush's time;
// a past interval's gauge is left out and counted.
func TestPastIntervals(t *testing.T) {
	r := newReceiver(t)
	c, _, dropped := newClient(t, Options{RemoteWriteURL: r.srv.URL + "/api/v1/write"})
	past := t0.Add(-30 * time.Second).UnixNano()
	snap := &model.Snapshot{Time: t0, Interval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "both"}, Value: 5, At: past},
			{Series: model.Series{Name: "both"}, Value: 1},
			{Series: model.Series{Name: "late"}, Value: 2, At: past},
			{Series: model.Series{Name: "late"}, Value: 3, At: past + int64(10*time.Second)},
		},
		Gauges: []model.Gauge{{Series: model.Series{Name: "g"}, Value: 2}, {Series: model.Series{Name: "g"}, Value: 9, At: past}},
	}
	if err := c.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	n := len(r.series)
	r.mu.Unlock()
	got := r.take()
	want := map[string]float64{"both_total{}": 6, "late_total{}": 5, "g{}": 2}
	if n != len(want) || len(got) != len(want) {
		t.Fatalf("%d samples %v, want one per series: %v", n, got, want)
	}
	for k, v := range want {
		if s, ok := got[k]; !ok || s.value != v || s.millis != t0.UnixMilli() {
			t.Errorf("%s = %+v, want %v at the flush's time", k, s, v)
		}
	}
	if d := testutil.ToFloat64(dropped); d != 1 {
		t.Errorf("dropped %v, want 1 (the past gauge)", d)
	}
}
