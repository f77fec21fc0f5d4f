package otlp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/histogram"
)

// TestE2E runs the real garner binary with the otlp backend posting to the
// test receiver (official protos), sends statsd datagrams and an event over
// UDP, and checks what the receiver decoded: every counter increment in the
// <name>.count delta sums, the timer as an OTLP histogram, the resource
// split, and the event as a log record.
func TestE2E(t *testing.T) {
	r := newReceiver(t)
	p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "otlp"
metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
[otlp]
metrics_endpoint = "%s/v1/metrics"
logs_endpoint = "%s/v1/logs"
metrics_per_batch = 3
resource_keys = "service"
conversion = "AsHistogram"
max_request_elapsed_time = 5
`, r.srv.URL, r.srv.URL))
	udp := p.UDPAddr(t)
	const n = 50
	var hits float64
	for i := range n {
		garnertest.SendUDP(t, udp, "e2e.hits:1|c|#service:api,env:test\ne2e.hits:2|c|@0.5|#service:api,env:test\ne2e.rt:"+fmt.Sprint(i)+"|ms")
		hits += 1 + 4
		if i%10 == 9 {
			time.Sleep(120 * time.Millisecond)
		}
	}
	garnertest.SendUDP(t, udp, "_e{6,4}:deploy|done|t:warning|#service:api")
	p.WaitRead(t, 3*n+1)
	p.StopOK(t)

	var sum, rtCount float64
	var rtSum float64
	for _, pt := range r.points() {
		switch {
		case pt.metric == "e2e.hits.count":
			if pt.resource != "service=api" || pt.attrs != "env=test,host=127.0.0.1" || pt.kind != "sum" {
				t.Errorf("e2e.hits.count resource %q attrs %q kind %s", pt.resource, pt.attrs, pt.kind)
			}
			sum += pt.value
		case pt.metric == "e2e.rt" && pt.hist != nil:
			rtCount += float64(pt.hist.Count)
			rtSum += pt.hist.GetSum()
		}
	}
	if sum != hits {
		t.Errorf("Σ e2e.hits.count = %v, want %v", sum, hits)
	}
	if rtCount != n || rtSum != n*(n-1)/2 {
		t.Errorf("e2e.rt histograms: Σcount %v Σsum %v, want %d and %d", rtCount, rtSum, n, n*(n-1)/2)
	}
	recs, res := r.logRecords()
	if len(recs) != 1 {
		t.Fatalf("got %d log records, want the event", len(recs))
	}
	if got := formatAttrs(recs[0].Attributes); res[0] != "service=api" ||
		got != "aggregation_key=,alert_type=warning,priority=normal,source=127.0.0.1,source_type_name=,tags={},text=done,title=deploy" {
		t.Errorf("event log record: resource %q attributes %s", res[0], got)
	}
}

// TestE2EExponentialHistogram runs the real garner binary with conversion
// AsExponentialHistogram, in both timer modes, sends 20k lognormal latency
// samples (about 1 ms to 2.3 s) over TCP in two halves that reach the
// receiver in different flushes, plus 1000 samples at rate 0.1, and merges
// the delta points it decodes (official protos) back into one histogram:
// the count is exact, min and max are exact, and the median, p90 and p99
// estimated from the merged buckets are within 2% of the exact ones.
func TestE2EExponentialHistogram(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	for _, mode := range []string{"histogram", "exact"} {
		t.Run(mode, func(t *testing.T) {
			r := newReceiver(t)
			p := garnertest.StartConfig(t, fmt.Sprintf("[otlp]\nmetrics_endpoint = \"%s/v1/metrics\"\nconversion = \"AsExponentialHistogram\"\n", r.srv.URL),
				"--backends", "otlp", "--timer-aggregation", mode, "--flush-interval", "300ms", "--shutdown-grace", "0s",
				"--metrics-addr", "127.0.0.1:0", "--tcp-metrics-addr", "127.0.0.1:0")
			tcp := p.TCPAddr(t)
			values := make([]float64, 20000)
			for i := range values {
				values[i] = math.Exp(math.Log(50) + rnd.NormFloat64())
			}
			points := func(name string) []*metricsv1.ExponentialHistogramDataPoint {
				var out []*metricsv1.ExponentialHistogramDataPoint
				for _, pt := range r.points() {
					if pt.metric == name && pt.exp != nil && pt.exp.Count > 0 {
						out = append(out, pt.exp)
					}
				}
				return out
			}
			half := len(values) / 2
			garnertest.SendTimersTCP(t, tcp, "e2e.lat", "", values[:half])
			garnertest.WaitFor(t, "a flush with the first half", 20*time.Second, func() bool { return len(points("e2e.lat")) > 0 })
			garnertest.SendTimersTCP(t, tcp, "e2e.lat", "", values[half:])
			garnertest.SendTimersTCP(t, tcp, "e2e.sampled", "|@0.1", values[:1000])
			p.WaitRead(t, len(values)+1000)
			p.StopOK(t)

			merged := histogram.New(histogram.DefaultMaxBuckets)
			lat := points("e2e.lat")
			for _, dp := range lat {
				h, err := histogram.FromData(&histogram.Data{
					Scale: dp.Scale, Count: dp.Count, ZeroCount: dp.ZeroCount, Sum: dp.GetSum(), Min: dp.GetMin(), Max: dp.GetMax(),
					PositiveOffset: dp.GetPositive().GetOffset(), Positive: dp.GetPositive().GetBucketCounts(),
					NegativeOffset: dp.GetNegative().GetOffset(), Negative: dp.GetNegative().GetBucketCounts(),
				}, histogram.DefaultMaxBuckets)
				if err != nil {
					t.Fatalf("point does not hold together: %v (%v)", err, dp)
				}
				merged.Merge(h)
			}
			if len(lat) < 2 {
				t.Errorf("%d points with values, want the two halves in different flushes", len(lat))
			}
			sorted := slices.Sorted(slices.Values(values))
			if merged.Count() != uint64(len(values)) || merged.Min() != sorted[0] || merged.Max() != sorted[len(sorted)-1] {
				t.Errorf("merged count %d min %v max %v, want %d %v %v", merged.Count(), merged.Min(), merged.Max(), len(values), sorted[0], sorted[len(sorted)-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99} {
				want := sorted[int(math.Ceil(q*float64(len(sorted))))-1]
				if got := merged.Quantile(q); math.Abs(got-want)/want > 0.02 {
					t.Errorf("p%v from the merged buckets = %v, exact %v", 100*q, got, want)
				}
			}
			var sampled uint64
			for _, dp := range points("e2e.sampled") {
				sampled += dp.Count
			}
			if sampled != 10000 {
				t.Errorf("e2e.sampled: Σcount %d, want 10000 (1000 samples at rate 0.1)", sampled)
			}
		})
	}
}
