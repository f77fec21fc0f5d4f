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
	t.Run("exact", func(t *testing.T) { checkUnscaled(t, TimerExact) })
	t.Run("histogram", func(t *testing.T) { checkUnscaled(t, TimerHistogram) })
}

func checkUnscaled(t *testing.T, mode TimerAggregation) {
	h := newHarness(t, Options{TimerAggregation: mode})
	add := map[string]func(v float64){
		"h.t":  func(v float64) { h.b.UnscaledTimer(v, 1) },
		"ms.t": func(v float64) { h.b.Sample(statsd.Timer, v, 1, false) },
	}
	for name, sample := range add {
		h.key = AppendSeriesKey(h.key[:0], []byte(name), nil, []byte(src))
		h.b.Series(h.key)
		sample(0.25)
		sample(0.5)
	}
	h.b.Send(context.Background())
	ts := timers(h.flush(time.Second))
	if u, ms := ts["h.t||"+src], ts["ms.t||"+src]; !u.Unscaled || ms.Unscaled || u.SampledCount != 2 || ms.SampledCount != 2 {
		t.Errorf("h timer %+v, ms timer %+v", u, ms)
	}
}
