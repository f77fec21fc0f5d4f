package stdout

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/model"
)

// TestPointTimes: a counter or gauge of a past interval says when it is for.
func TestPointTimes(t *testing.T) {
	var out bytes.Buffer
	b := New(Options{Out: &out})
	past := time.Unix(1699999970, 0).UnixNano()
	snap := &model.Snapshot{Time: time.Unix(1700000000, 0),
		Counters: []model.Counter{{Series: model.Series{Name: "c"}, Value: 1, PerSecond: 0.1}, {Series: model.Series{Name: "c"}, Value: 5, PerSecond: 0.5, At: past}},
		Gauges:   []model.Gauge{{Series: model.Series{Name: "g", Source: "h"}, Value: 7, At: past}},
	}
	if err := b.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	want := "counter c value=1 per_second=0.1\ncounter c value=5 per_second=0.5 time=1699999970\ngauge g;host=h value=7 time=1699999970\n"
	if got := out.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
