package prometheus

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// startNativePrometheus starts a real Prometheus that takes native
// histograms over remote write.
func startNativePrometheus(t *testing.T) *garnertest.Prometheus {
	t.Helper()
	return garnertest.StartPrometheus(t, "--enable-feature=native-histograms")
}

// exactQuantile is the nearest-rank q-quantile of sorted values.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}

// one returns the value of the single sample of a query result.
func one(t *testing.T, p *garnertest.Prometheus, q string, at time.Time) float64 {
	t.Helper()
	got := p.QueryAt(t, q, at)
	if len(got) != 1 {
		t.Fatalf("%s at %d: got %+v, want one sample", q, at.UnixMilli(), got)
	}
	return got[0].Values[0]
}

// checkQuantiles checks that Prometheus' histogram_quantile of sel at time
// at is within 3% of the exact p50, p90 and p99 of sorted (the issue's
// target), and logs how far off each one is.
func checkQuantiles(t *testing.T, p *garnertest.Prometheus, sel string, sorted []float64, at time.Time) {
	t.Helper()
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := exactQuantile(sorted, q)
		got := one(t, p, "histogram_quantile("+ftoa(q)+", "+sel+")", at)
		off := math.Abs(got-want) / want
		if off > 0.03 {
			t.Errorf("histogram_quantile(%v) = %v, exact %v: off by %.2f%%", q, got, want, 100*off)
		} else {
			t.Logf("histogram_quantile(%v) = %v, exact %v: off by %.2f%%", q, got, want, 100*off)
		}
	}
}

// TestNativeHistogramToPrometheus writes two flushes of native histograms
// to a real Prometheus, the second one wide enough to lower the schema,
// and reads them back with PromQL: counts exact and cumulative, the sum,
// quantiles within 3% of the exact ones, no counter reset between the two
// flushes, and a sample-rate timer whose count is the sampled count.
func TestNativeHistogramToPrometheus(t *testing.T) {
	p := startNativePrometheus(t)
	c, _, dropped := newClient(t, Options{RemoteWriteURL: p.URL + "/api/v1/write", Timers: TimersNativeHistogram})
	rnd := rand.New(rand.NewPCG(11, 12))
	v1 := lognormal(rnd, 20000)
	v2 := append(lognormal(rnd, 20000), 1e-4, 9e4) // wider: the running histogram's schema drops
	end := time.Now().Truncate(time.Second)
	first := end.Add(-10 * time.Second)
	snaps := []struct {
		at     time.Time
		values []float64
	}{{first, v1}, {end, v2}}
	for i, s := range snaps {
		snap := testSnapshotAt(s.at,
			histTimer("it.latency", 160, float64(len(s.values)), s.values...),
			exactTimer("it.sampled", 10*float64(len(s.values[:100])), s.values[:100]...)) // @0.1, exact mode
		if err := c.SendMetrics(context.Background(), snap); err != nil {
			t.Fatalf("flush %d: %v", i+1, err)
		}
	}
	all := slices.Concat(v1, v2)
	slices.Sort(all)
	var sum float64
	for _, v := range all {
		sum += v
	}

	sel := `it_latency{host="10.0.0.7"}`
	if n := one(t, p, "histogram_count("+sel+")", first); n != float64(len(v1)) {
		t.Errorf("histogram_count after flush 1 = %v, want %d", n, len(v1))
	}
	if n := one(t, p, "histogram_count("+sel+")", end); n != float64(len(all)) {
		t.Errorf("histogram_count after flush 2 = %v, want %d (cumulative)", n, len(all))
	}
	if s := one(t, p, "histogram_sum("+sel+")", end); math.Abs(s-sum) > 1e-9*sum {
		t.Errorf("histogram_sum = %v, want %v", s, sum)
	}
	checkQuantiles(t, p, sel, all, end)
	// The increase over both samples is the second flush's count: the
	// schema change was not read as a counter reset.
	if inc := one(t, p, "histogram_count(increase("+sel+"[15s]))", end); inc < float64(len(v2)) || inc > float64(len(all)) {
		t.Errorf("histogram_count(increase[15s]) = %v, want the second flush's %d extrapolated, below the total %d", inc, len(v2), len(all))
	}
	if n := one(t, p, `histogram_count(it_sampled{host="10.0.0.7"})`, end); n != 2000 {
		t.Errorf("sampled timer: histogram_count = %v, want 2000 (2 × 100 values at rate 0.1)", n)
	}
	if countOf(dropped) != 0 {
		t.Errorf("dropped %v series", countOf(dropped))
	}
}

func testSnapshotAt(at time.Time, timers ...model.Timer) *model.Snapshot {
	return &model.Snapshot{Time: at, Interval: 10 * time.Second, Timers: timers}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
