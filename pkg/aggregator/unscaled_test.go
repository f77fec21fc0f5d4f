package aggregator

import (
	"context"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/statsd"
)

// TestUnscaledTimers: a timer whose values came as h or d (UnscaledTimer)
// flushes with Unscaled set, in both timer modes; an ms timer without.
func TestUnscaledTimers(t *testing.T) {
	for _, mode := range []TimerAggregation{TimerExact, TimerHistogram} {
		h := newHarness(t, Options{TimerAggregation: mode})
		for _, name := range []string{"h.t", "ms.t"} {
			h.key = AppendSeriesKey(h.key[:0], []byte(name), nil, []byte(src))
			h.b.Series(h.key)
			for _, v := range []float64{0.25, 0.5} {
				if name == "h.t" {
					h.b.UnscaledTimer(v, 1)
				} else {
					h.b.Sample(statsd.Timer, v, 1, false)
				}
			}
		}
		h.b.Send(context.Background())
		ts := timers(h.flush(time.Second))
		if u, ms := ts["h.t||"+src], ts["ms.t||"+src]; !u.Unscaled || ms.Unscaled || u.SampledCount != 2 || ms.SampledCount != 2 {
			t.Errorf("mode %v: h timer %+v, ms timer %+v", mode, u, ms)
		}
	}
}
