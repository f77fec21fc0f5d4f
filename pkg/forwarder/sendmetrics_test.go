package forwarder

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// idleForwarder is a forwarder whose one upstream is never contacted (Run
// is not called): SendMetrics routes, encodes, compresses and queues, and
// the queue drops its oldest batches beyond max-buffer-size.
func idleForwarder(tb testing.TB, protocol string, level int) *Forwarder {
	tb.Helper()
	f, err := New(Options{APIEndpoints: []string{"http://127.0.0.1:1"}, Protocol: protocol,
		CompressionType: "zlib", CompressionLevel: level, MaxSeriesPerRequest: 1 << 20}, garnertest.QuietLog(), prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// TestSendMetricsAllocs: once its buffers have grown, a forwarder's flush
// (route, encode, deflate, queue) allocates the same whatever the number of
// series: a few allocations per request, none per series.
func TestSendMetricsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector: allocation counts vary")
	}
	for _, protocol := range []string{"v3", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			f := idleForwarder(t, protocol, 1)
			allocs := map[int]float64{}
			for _, n := range []int{400, 20000} {
				snap := bigSnapshot(n)
				send := func() {
					if err := f.SendMetrics(context.Background(), snap); err != nil {
						t.Fatal(err)
					}
				}
				send()
				allocs[n] = testing.AllocsPerRun(10, send)
			}
			if allocs[20000] > allocs[400] || allocs[400] > 4 {
				t.Errorf("allocations per flush: %v by series; want the same for 400 and 20000, and at most 4", allocs)
			}
		})
	}
}

// BenchmarkSendMetrics is one forwarder flush of N series (a quarter of
// each type, 3 tags each; bigSnapshot) into one request: routing, encoding
// (v3, or v2 with its map layout), zlib at gostatsd's level 9 (the default)
// or level 1, and queueing. allocs/op is per flush: divide by N for per
// series.
func BenchmarkSendMetrics(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		snap := bigSnapshot(n)
		for _, protocol := range []string{"v3", "v2"} {
			for _, level := range []int{1, 9} {
				b.Run(fmt.Sprintf("%s/zlib-%d/series=%d", protocol, level, n), func(b *testing.B) {
					f := idleForwarder(b, protocol, level)
					send := func(s *model.Snapshot) {
						if err := f.SendMetrics(context.Background(), s); err != nil {
							b.Fatal(err)
						}
					}
					send(snap)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						send(snap)
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
				})
			}
		}
	}
}
