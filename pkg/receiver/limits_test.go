//go:build linux

package receiver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/statsd"
)

// TestRouterLineLimits: the bounds given in Options reach every LineHandler's
// parser; a line over one is counted by reason and the good lines around it
// are kept.
func TestRouterLineLimits(t *testing.T) {
	h := newHarness(t, Options{Limits: statsd.Limits{Tags: 2, TagLength: 6, Values: 3}})
	h.send(
		"ok:1|c|#a:1,b:2",
		"many:1|c|#a:1,b:2,c:3",
		"long:1|c|#env:prod",
		"packed:1:2:3|ms",
		"packed.over:1:2:3:4|ms",
		"ok:1|c|#b:2,a:1",
	)
	snap := h.flush()
	if got := counters(snap)["ok|a:1,b:2|10.0.0.7"].Value; got != 2 {
		t.Errorf("ok = %v, want 2", got)
	}
	if _, ok := counters(snap)["many|a:1,b:2,c:3|10.0.0.7"]; ok {
		t.Error("a line over max-tags-per-line was aggregated")
	}
	if got := timers(snap)["packed||10.0.0.7"].Count; got != 3 {
		t.Errorf("packed count = %v, want 3", got)
	}
	if _, ok := timers(snap)["packed.over||10.0.0.7"]; ok {
		t.Error("a line over max-packed-values was aggregated")
	}
	for reason, want := range map[string]float64{"too_many_tags": 1, "tag_too_long": 1, "too_many_values": 1} {
		if n := testutil.ToFloat64(h.r.cBad[reason]); n != want {
			t.Errorf("bad lines %s = %v, want %v", reason, n, want)
		}
	}
}
