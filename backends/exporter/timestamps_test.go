package exporter

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/garner-metrics/garner/pkg/model"
)

// TestPastIntervals: a past interval's counter (timestamps = "honor") adds
// to the exposed total; a past interval's gauge does not replace the
// current value and is counted.
func TestPastIntervals(t *testing.T) {
	f := newFixture(t, "mappings: []\n")
	past := f.t0.Add(-30 * time.Second).UnixNano()
	f.send(t, 0, model.Snapshot{
		Counters: []model.Counter{{Series: ser("c"), Value: 1}, {Series: ser("c"), Value: 5, At: past}},
		Gauges:   []model.Gauge{{Series: ser("g"), Value: 2}, {Series: ser("g"), Value: 9, At: past}},
	})
	fams := f.scrape(t, "")
	if v := one(t, fams, "c", dto.MetricType_COUNTER).GetCounter().GetValue(); v != 6 {
		t.Errorf("counter %v, want 6", v)
	}
	if v := one(t, fams, "g", dto.MetricType_GAUGE).GetGauge().GetValue(); v != 2 {
		t.Errorf("gauge %v, want the current 2", v)
	}
	if n := testutil.ToFloat64(f.e.m.dropped.WithLabelValues(reasonPastGauge)); n != 1 {
		t.Errorf("past gauges dropped %v, want 1", n)
	}
}
