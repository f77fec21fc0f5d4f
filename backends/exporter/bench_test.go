package exporter

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/garner-metrics/garner/pkg/model"
)

// benchSeries is the series count of the scrape benchmark; 1000000 for the
// issue's target (EXPORTER_BENCH_SERIES=1000000), smaller by default so the
// benchmark fits a loaded machine.
func benchSeries() int {
	if n, err := strconv.Atoi(os.Getenv("EXPORTER_BENCH_SERIES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// filled is an exporter holding n counter series (one mapped family with a
// label per series, as request counters by path would be).
func filled(b *testing.B, n int) *fixture {
	f := newFixture(b, "mappings:\n- match: bench.*.hits\n  name: bench_hits_total\n  labels: {path: \"$1\"}\n")
	s := model.Snapshot{Counters: make([]model.Counter, n)}
	for i := range s.Counters {
		s.Counters[i] = model.Counter{Series: model.Series{Name: fmt.Sprintf("bench.p%d.hits", i), Tags: []string{"env:prod"}}, Value: 1}
	}
	if err := f.e.SendMetrics(b.Context(), &s); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkScrape is one text-format scrape of benchSeries counters, as
// the endpoint serves it (uncompressed). It reports bytes per series
// held by the exporter (heap growth while filling it / series).
func BenchmarkScrape(b *testing.B) { benchScrape(b, "", "") }

// BenchmarkScrapeProtobuf is BenchmarkScrape in the delimited protobuf
// format (what Prometheus asks for with native histograms on).
func BenchmarkScrapeProtobuf(b *testing.B) {
	benchScrape(b, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "")
}

// BenchmarkScrapeGzip is BenchmarkScrape gzipped, as Prometheus asks.
func BenchmarkScrapeGzip(b *testing.B) { benchScrape(b, "", "gzip") }

func benchScrape(b *testing.B, accept, encoding string) {
	n := benchSeries()
	var f *fixture
	perSeries := heapPerSeries(n, func() { f = filled(b, n) })
	w := scrapeLoop(b, f, n, accept, encoding)
	b.ReportMetric(perSeries, "heapB/series")
	b.ReportMetric(float64(w.n)/float64(n), "bodyB/series")
}

// heapPerSeries is the heap growth of fill (after a collection) over n.
func heapPerSeries(n int, fill func()) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fill()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// scrapeLoop is the timed loop of the scrape benchmarks: one scrape of
// f's n series per iteration, into a counting ResponseWriter.
func scrapeLoop(b *testing.B, f *fixture, n int, accept, encoding string) *discardResponse {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	b.ReportAllocs()
	b.ResetTimer()
	w := &discardResponse{h: http.Header{}}
	for b.Loop() {
		w.n = 0
		f.e.scrape.ServeHTTP(w, req)
		if w.n < int64(n) {
			b.Fatalf("scrape wrote %d bytes for %d series", w.n, n)
		}
	}
	return w
}

// discardResponse is a ResponseWriter that counts the body and keeps
// nothing, so that the benchmark measures the exporter, not a recorder.
type discardResponse struct {
	h http.Header
	n int64
}

func (d *discardResponse) Header() http.Header { return d.h }
func (d *discardResponse) WriteHeader(int)     {}
func (d *discardResponse) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// BenchmarkFlush applies one flush of benchSeries already-known counters.
func BenchmarkFlush(b *testing.B) {
	n := benchSeries()
	f := filled(b, n)
	s := model.Snapshot{Counters: make([]model.Counter, n)}
	for i := range s.Counters {
		s.Counters[i] = model.Counter{Series: model.Series{Name: fmt.Sprintf("bench.p%d.hits", i), Tags: []string{"env:prod"}}, Value: 1}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := f.e.SendMetrics(b.Context(), &s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrapeObservers is one text scrape of benchSeries/10 timer
// series, one value observed in each, mapped by testMappings: summaries
// (one quantile; client_golang's state), native histograms (3 buckets and
// native ones; client_golang's) and classic histograms (3 buckets; the
// exporter's own). It reports the bytes held per series.
func BenchmarkScrapeObservers(b *testing.B) {
	for kind, prefix := range map[string]string{"summary": "api.summary", "native": "api.request", "classic": "classic"} {
		b.Run(kind, func(b *testing.B) {
			n := benchSeries() / 10
			var f *fixture
			perSeries := heapPerSeries(n, func() {
				f = newFixture(b, testMappings)
				s := model.Snapshot{Timers: make([]model.Timer, n)}
				for i := range s.Timers {
					s.Timers[i] = model.Timer{Series: model.Series{Name: fmt.Sprintf("%s.r%d", prefix, i)}, Values: []float64{float64(i % 1000)}, SampledCount: 1}
				}
				if err := f.e.SendMetrics(b.Context(), &s); err != nil {
					b.Fatal(err)
				}
			})
			scrapeLoop(b, f, n, "", "")
			b.ReportMetric(perSeries, "heapB/series")
		})
	}
}
