package statsdaemon

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/model"
)

// TestPastIntervals: a past interval's counter (timestamps = "honor") is
// sent as an increment; a past interval's gauge is left out and counted.
func TestPastIntervals(t *testing.T) {
	sink := newUDPSink(t)
	c, dropped := newClient(t, Options{Address: sink.conn.LocalAddr().String()})
	past := time.Now().Add(-30 * time.Second).UnixNano()
	snap := &model.Snapshot{Time: time.Now(), Interval: time.Second,
		Counters: []model.Counter{{Series: model.Series{Name: "c"}, Value: 1}, {Series: model.Series{Name: "c"}, Value: 5, At: past}},
		Gauges:   []model.Gauge{{Series: model.Series{Name: "g"}, Value: 2}, {Series: model.Series{Name: "g"}, Value: 9, At: past}},
	}
	if err := c.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range sink.wait(t, 3) {
		got = append(got, strings.Split(string(d), "\n")...)
	}
	sort.Strings(got)
	if want := "c:1|c c:5|c g:2|g"; strings.Join(got, " ") != want {
		t.Errorf("lines %q, want %q", got, want)
	}
	if v := testutil.ToFloat64(dropped); v != 1 {
		t.Errorf("dropped %v, want 1 (the past gauge)", v)
	}
}
