package forwarder

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/model"
)

// TestNoRetryStormAfterOutage: a fleet of forwarders that flush at the same
// instant into an aggregator that is down, all fail in step and take it out
// of their choice together. When it comes back, their probes and the sends
// of what they held must arrive spread out, not in one burst (the retry
// storm gostatsd users meet when thousands of agents reconnect at once).
// Every increment arrives exactly once.
func TestNoRetryStormAfterOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few hundred forwarders")
	}
	const (
		fleet         = 300
		probeInterval = 2 * time.Second
		window        = 100 * time.Millisecond
		// Without jitter every forwarder probes in the same window; with
		// probes spread over half the interval a window holds about
		// window/(probeInterval/2) = 10% of them, and up to a third when
		// the machine stalls the test process (race detector, a loaded
		// CI runner) and releases a batch of waits at once.
		maxShare = 0.5
	)
	a := newAggServer(t, true, nil)
	var (
		down      atomic.Bool
		mu        sync.Mutex
		recovered time.Time
		firstBack = map[string]time.Duration{} // forwarder → its first request after recovery
		refused   atomic.Int64
	)
	down.Store(true)
	a.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		id := r.Header.Get("X-Fleet-Member")
		if down.Load() {
			refused.Add(1)
			http.Error(w, "aggregator restarting", http.StatusServiceUnavailable)
			return true
		}
		mu.Lock()
		if _, ok := firstBack[id]; !ok {
			firstBack[id] = time.Since(recovered)
		}
		mu.Unlock()
		return false
	})

	fwds := make([]*fwdFixture, fleet)
	for i := range fwds {
		fwds[i] = startForwarder(t, Options{
			APIEndpoints:  []string{a.srv.URL},
			ProbeInterval: probeInterval,
			CustomHeaders: map[string]string{"X-Fleet-Member": strconv.Itoa(i)},
		})
	}
	// Stop them all at once at the end (one by one, each drain takes 200ms).
	t.Cleanup(func() {
		for _, fx := range fwds {
			fx.cancel()
		}
		for _, fx := range fwds {
			<-fx.done
		}
	})
	// Every member flushes one increment at the same instant, into the outage.
	var wg sync.WaitGroup
	for i, fx := range fwds {
		wg.Go(func() {
			s := &model.Snapshot{Counters: []model.Counter{{Series: model.Series{Name: "storm.c", Source: fmt.Sprintf("10.1.%d.%d", i/256, i%256)}, Value: 1}}}
			_ = fx.f.SendMetrics(context.Background(), s)
		})
	}
	wg.Wait()
	// Hold the outage until every member has taken the aggregator out of
	// its choice (its batches parked, waiting for a probe).
	waitFor(t, "every member takes the aggregator out", 30*time.Second, func() bool {
		for _, fx := range fwds {
			if testutil.ToFloat64(fx.f.m.down) == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	recovered = time.Now()
	down.Store(false)
	mu.Unlock()

	var got float64
	waitFor(t, "every increment delivered", 30*time.Second, func() bool {
		got += sum(a.flush()).counters
		return got >= fleet
	})
	if got != fleet {
		t.Fatalf("aggregator counted %v increments, want %d exactly", got, fleet)
	}
	mu.Lock()
	defer mu.Unlock()
	times := make([]time.Duration, 0, len(firstBack))
	for _, d := range firstBack {
		times = append(times, d)
	}
	slices.Sort(times)
	if len(times) != fleet {
		t.Fatalf("%d members came back, want %d", len(times), fleet)
	}
	peak, hist := 0, map[int]int{}
	for i, d := range times {
		hist[int(d/window)]++
		j := i
		for j < len(times) && times[j]-d < window {
			j++
		}
		peak = max(peak, j-i)
	}
	var b strings.Builder
	for k := 0; k <= int(times[len(times)-1]/window); k++ {
		fmt.Fprintf(&b, " %d", hist[k])
	}
	t.Logf("%d members, %d refused attempts during the outage; first request after recovery: p10 %v, p50 %v, p90 %v, max %v; busiest %v window holds %d; per %v from recovery:%s",
		fleet, refused.Load(), times[fleet/10], times[fleet/2], times[fleet*9/10], times[fleet-1], window, peak, window, b.String())
	if share := float64(peak) / fleet; share > maxShare {
		t.Errorf("%d of %d members (%.0f%%) came back within one %v window: reconnects are not spread", peak, fleet, 100*share, window)
	}
	if spread := times[fleet*9/10] - times[fleet/10]; spread < probeInterval/5 {
		t.Errorf("p10–p90 of the reconnects is %v, want at least %v", spread, probeInterval/5)
	}
}
