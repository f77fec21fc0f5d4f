package forwarder_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestOutageLongerThanRetryBudget (issue 15): the only aggregator is down
// for four times the retry budget (max-request-elapsed-time 1s stands in for
// the default 30s: the test lowers the limits instead of waiting). Every
// counter increment sent meanwhile is kept in the buffer (max-buffer-age
// not reached, buffer far from full) and arrives once the aggregator is
// up: exact totals, nothing counted as dropped.
func TestOutageLongerThanRetryBudget(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	down := &node{http: fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))}
	fwd := startForwarder(t, "200ms", "max-request-elapsed-time = \"1s\"\nmax-buffer-age = \"1m\"\n", down)
	const rounds, perRound = 20, 50
	start := time.Now()
	for i := 0; i < rounds; i++ { // spread over several flushes, each a batch of its own
		send(t, fwd.udp, []string{strings.TrimSuffix(strings.Repeat("outage.req:1|c\n", perRound), "\n")})
		time.Sleep(100 * time.Millisecond)
	}
	garnertest.WaitFor(t, "the upstream to be out", 10*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_upstream_down_total", "") >= 1
	})
	// The outage lasts 4 retry budgets: the old code dropped everything
	// after one.
	time.Sleep(4*time.Second - time.Since(start))
	if d := fwd.metric(t, "garner_forwarder_dropped_series_total", ""); d != 0 {
		t.Fatalf("%v series dropped during the outage, want 0\n%s", d, fwd.p.Stderr())
	}
	agg := startAggregator(t, carb, down.http, "")
	garnertest.WaitFor(t, "the buffer to be delivered", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_buffered_bytes", "") == 0 && fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) > 0
	})
	for _, m := range []string{"garner_forwarder_dropped_series_total", "garner_forwarder_dropped_samples_total"} {
		if d := fwd.metric(t, m, ""); d != 0 {
			t.Errorf("%s = %v, want 0", m, d)
		}
	}
	fwd.stop(t)
	agg.stop(t) // its final flush holds everything
	got, _ := sumPrefix(points(carb), "stats.counters.outage.req.count", "")
	if got != rounds*perRound {
		t.Errorf("aggregator flushed %v increments, want %d", got, rounds*perRound)
	}
}

// TestFullBufferCountsSeriesAndSamples (issue 15): with the aggregator down
// and a small max-buffer-size, the oldest batches are dropped; the drops are
// counted in series and in samples (3 values per timer series here) and
// logged with the upstream; what was kept arrives once the aggregator is up,
// so sent + dropped series = series forwarded, exactly.
func TestFullBufferCountsSeriesAndSamples(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	down := &node{http: fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))}
	fwd := startForwarder(t, "100ms", "max-buffer-size = \"2KiB\"\nmax-buffer-age = \"1m\"\n", down)
	const rounds, perRound = 30, 20
	for i := 0; i < rounds; i++ {
		var lines []string
		for j := 0; j < perRound; j++ { // series of their own each round: timers are not re-sent idle
			lines = append(lines, fmt.Sprintf("full.r%02d.t%02d:1:2:3|ms", i, j))
		}
		send(t, fwd.udp, []string{strings.Join(lines, "\n")})
		time.Sleep(120 * time.Millisecond)
	}
	garnertest.WaitFor(t, "buffer_full drops", 10*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_dropped_series_total", `reason="buffer_full"`) > 0
	})
	agg := startAggregator(t, carb, down.http, "")
	const total = rounds * perRound
	garnertest.WaitFor(t, "every series sent or dropped", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`)+fwd.metric(t, "garner_forwarder_dropped_series_total", "") == total
	})
	series := fwd.metric(t, "garner_forwarder_dropped_series_total", `reason="buffer_full"`)
	samples := fwd.metric(t, "garner_forwarder_dropped_samples_total", `reason="buffer_full"`)
	sent := fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`)
	t.Logf("%d series forwarded: %v sent, %v dropped (%v samples)", total, sent, series, samples)
	if samples != 3*series {
		t.Errorf("dropped %v series and %v samples, want 3 samples per series", series, samples)
	}
	fwd.stop(t)
	agg.stop(t)
	if _, n := sumPrefix(points(carb), "stats.timers.full.", ".count"); float64(n) != sent {
		t.Errorf("aggregator flushed %d timer series, the forwarder counted %v sent", n, sent)
	}
	log := fwd.p.Stderr()
	if !strings.Contains(log, "forwarder dropped data") || !strings.Contains(log, "reason=buffer_full") ||
		!strings.Contains(log, "upstream=\"http://"+down.http) || !strings.Contains(log, "samples=") {
		t.Errorf("no drop logged with upstream, reason, series and samples:\n%s", log)
	}
}
