package otlp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// TestPastIntervalPoints: a past interval's counter and gauge (timestamps =
// "honor") are points at that interval's end; its counter's delta sum
// starts at that interval's start. The live ones keep the flush's times.
func TestPastIntervalPoints(t *testing.T) {
	r := newReceiver(t)
	c, _ := garnertest.NewBackend(t, New, testConfig(r))
	past := t0.Add(-30 * time.Second)
	snap := &model.Snapshot{Time: t0, Interval: 10*time.Second + 7*time.Millisecond, PastInterval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "c"}, Value: 5, PerSecond: 0.5, At: past.UnixNano()},
			{Series: model.Series{Name: "live"}, Value: 1, PerSecond: 0.1},
		},
		Gauges: []model.Gauge{{Series: model.Series{Name: "g"}, Value: 7, At: past.UnixNano()}},
	}
	if err := c.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]time.Time{ // metric → start (zero: none checked), time
		"c":          {{}, past},
		"c.count":    {past.Add(-10 * time.Second), past},
		"g":          {{}, past},
		"live":       {{}, t0},
		"live.count": {t0.Add(-snap.Interval), t0},
	}
	got := map[string]bool{}
	for _, p := range r.points() {
		w, ok := want[p.metric]
		if !ok {
			t.Errorf("unexpected %s", p.metric)
			continue
		}
		got[p.metric] = true
		if p.time != uint64(w[1].UnixNano()) {
			t.Errorf("%s at %v, want %v", p.metric, time.Unix(0, int64(p.time)).UTC(), w[1])
		}
		if !w[0].IsZero() && p.start != uint64(w[0].UnixNano()) {
			t.Errorf("%s starts at %v, want %v", p.metric, time.Unix(0, int64(p.start)).UTC(), w[0])
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %s", got, fmt.Sprint(want))
	}
}
