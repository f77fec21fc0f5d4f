package otlp

import (
	"context"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
)

// otelIndex is the OpenTelemetry bucket index of v > 0 at scale, straight
// from the definition: the i with base^i < v ≤ base^(i+1).
func otelIndex(v float64, scale int32) int32 {
	return int32(math.Ceil(math.Log2(v)*math.Exp2(float64(scale)))) - 1
}

// expand maps bucket index → count of one range of a decoded point.
func expand(b *metricsv1.ExponentialHistogramDataPoint_Buckets) map[int32]uint64 {
	out := map[int32]uint64{}
	for j, c := range b.GetBucketCounts() {
		if c != 0 {
			out[b.GetOffset()+int32(j)] = c
		}
	}
	return out
}

// checkExp checks a decoded point against the values it stands for, each
// weighing weight, at the point's scale.
func checkExp(t *testing.T, dp *metricsv1.ExponentialHistogramDataPoint, values []float64, weight uint64) {
	t.Helper()
	pos, neg := map[int32]uint64{}, map[int32]uint64{}
	var zero uint64
	var sum float64
	for _, v := range values {
		sum += v
		switch {
		case v > 0:
			pos[otelIndex(v, dp.Scale)] += weight
		case v < 0:
			neg[otelIndex(-v, dp.Scale)] += weight
		default:
			zero += weight
		}
	}
	if dp.Count != uint64(len(values))*weight || dp.ZeroCount != zero || dp.ZeroThreshold != 0 {
		t.Errorf("count %d zero count %d threshold %g, want %d %d 0", dp.Count, dp.ZeroCount, dp.ZeroThreshold, uint64(len(values))*weight, zero)
	}
	if got := expand(dp.Positive); !maps.Equal(got, pos) {
		t.Errorf("positive buckets at scale %d\n got %v\nwant %v", dp.Scale, got, pos)
	}
	if got := expand(dp.Negative); !maps.Equal(got, neg) {
		t.Errorf("negative buckets at scale %d\n got %v\nwant %v", dp.Scale, got, neg)
	}
	lo, hi := slices.Min(values), slices.Max(values)
	if dp.Sum == nil || math.Abs(*dp.Sum-sum) > 1e-9*math.Abs(sum) || dp.GetMin() != lo || dp.GetMax() != hi {
		t.Errorf("sum/min/max %v %v %v, want %v %v %v", dp.GetSum(), dp.GetMin(), dp.GetMax(), sum, lo, hi)
	}
}

func TestMetricsAsExponentialHistogram(t *testing.T) {
	r := newReceiver(t)
	cfg := testConfig(r)
	cfg.Conversion = AsExponentialHistogram
	c, dropped := garnertest.NewBackend(t, New, cfg)

	rnd := rand.New(rand.NewPCG(5, 6))
	lat := make([]float64, 5000)
	for i := range lat {
		lat[i] = math.Exp(math.Log(50) + rnd.NormFloat64())
	}
	lat = append(lat, 0, 0, -3, -0.25)
	h := histogram.FromValues(lat, 160)
	s := testSnapshot()
	s.Timers = append(s.Timers,
		model.Timer{Series: model.Series{Name: "hist.mode", Source: "10.0.0.7"}, Exp: h, SampledCount: float64(len(lat)),
			Count: float64(len(lat)), Lower: h.Min(), Upper: h.Max(), Sum: h.Sum()},
		model.Timer{Series: model.Series{Name: "sampled"}, Values: []float64{1, 2, 2, 300}, SampledCount: 40, Count: 40}, // @0.1, exact mode
		model.Timer{Series: model.Series{Name: "idle"}},
	)
	if err := c.SendMetrics(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := map[string]point{}
	for _, p := range r.points() {
		got[p.key()] = p
	}
	exp := func(key string) *metricsv1.ExponentialHistogramDataPoint {
		t.Helper()
		p, ok := got[key]
		if !ok || p.exp == nil {
			t.Fatalf("no exponential histogram %s in %v", key, slices.Sorted(maps.Keys(got)))
		}
		if p.start != uint64(t0.Add(-s.Interval).UnixNano()) || p.time != uint64(t0.UnixNano()) {
			t.Errorf("%s: start %d time %d, want the interval %d..%d", key, p.start, p.time, t0.Add(-s.Interval).UnixNano(), t0.UnixNano())
		}
		return p.exp
	}

	t.Run("histogram mode", func(t *testing.T) {
		dp := exp("hist.mode{host=10.0.0.7}")
		if dp.Scale != h.Scale() || dp.Scale >= histogram.MaxScale {
			t.Errorf("scale %d, want the histogram's %d (below the start scale: 160 buckets)", dp.Scale, h.Scale())
		}
		checkExp(t, dp, lat, 1)
	})
	t.Run("exact mode built from the values", func(t *testing.T) {
		checkExp(t, exp("api.latency{host=10.0.0.7}"), []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1)
	})
	t.Run("sample rate", func(t *testing.T) {
		checkExp(t, exp("sampled{}"), []float64{1, 2, 2, 300}, 10)
	})
	t.Run("idle", func(t *testing.T) {
		dp := exp("idle{}")
		if dp.Count != 0 || dp.Sum != nil || dp.Min != nil || dp.Positive != nil {
			t.Errorf("idle timer: %v, want count 0 and nothing else", dp)
		}
	})
	t.Run("gsd_histogram stays explicit", func(t *testing.T) {
		p, ok := got["resp.size{gsd_histogram=10_100,host=10.0.0.7}"]
		if !ok || p.hist == nil || !slices.Equal(p.hist.BucketCounts, []uint64{2, 1, 1}) {
			t.Errorf("gsd_histogram timer: %+v, want an explicit histogram with buckets 2 1 1", p)
		}
	})
	if _, ok := got["api.latency.lower{host=10.0.0.7}"]; ok {
		t.Error("AsExponentialHistogram must not send the timer gauges")
	}
	if n := testutil.ToFloat64(dropped); n != 1 {
		t.Errorf("dropped %v series, want 1 (the NaN gauge)", n)
	}
}

func TestConversionRefused(t *testing.T) {
	deps, _, _ := garnertest.BackendDeps()
	_, err := New(Options{MetricsEndpoint: "http://127.0.0.1:1/v1/metrics", Conversion: "AsSummary"}, deps)
	if err == nil || !strings.Contains(err.Error(), "otlp.conversion") || !strings.Contains(err.Error(), AsExponentialHistogram) {
		t.Errorf("New with conversion AsSummary: %v, want an error naming otlp.conversion and the values", err)
	}
}
