package prometheus

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// sendHits sends n datagrams of counter increments to udp, pausing now and
// then so that they span several flushes, and returns the totals sent for
// e2e.hits{env:test} and e2e.other.
func sendHits(t *testing.T, udp string, n int) (hits, other float64) {
	for i := range n {
		// 1 + 3/0.5 on one series, 0..2 on another
		garnertest.SendUDP(t, udp, fmt.Sprintf("e2e.hits:1|c|#env:test\ne2e.hits:3|c|@0.5|#env:test\ne2e.other:%d|c", i%3))
		hits += 1 + 6
		other += float64(i % 3)
		if i%20 == 19 {
			time.Sleep(150 * time.Millisecond)
		}
	}
	return hits, other
}

// TestE2EFourPathsToVictoriaMetrics is the acceptance check: one
// real garner with backends graphite, influxdb, datadog and prometheus, all
// writing to one real VictoriaMetrics, must deliver every counter increment
// through each path, read back with /api/v1/export. The graphite, influxdb
// and datadog paths carry per-interval counts (their samples add up to the
// total); the prometheus path carries the running total (its last sample is
// the total). It also stands for the datadog backend's end-to-end test
// (every series sums back through /datadog/api/v1/series, in batches of 3).
func TestE2EFourPathsToVictoriaMetrics(t *testing.T) {
	vm := garnertest.StartVictoriaMetrics(t, true)
	p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "graphite influxdb datadog prometheus"
metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
[graphite]
address = %q
[influxdb]
api-endpoint = %q
api-version = 2
org = "o"
bucket = "b"
[datadog]
api_key = "e2e"
api_endpoint = "%s/datadog"
metrics_per_batch = 3
[prometheus]
remote-write-url = "%s/api/v1/write"
metrics-per-batch = 2
`, vm.GraphiteAddr, vm.URL, vm.URL, vm.URL))
	udp := p.UDPAddr(t)
	hits, other := sendHits(t, udp, 60)
	p.WaitRead(t, 3*60)
	p.StopOK(t)

	sum := func(ss []garnertest.Series) float64 {
		var s float64
		for _, x := range ss {
			s += x.Sum()
		}
		return s
	}
	last := func(ss []garnertest.Series) float64 {
		if len(ss) != 1 || len(ss[0].Values) == 0 {
			return -1
		}
		return ss[0].Values[len(ss[0].Values)-1]
	}
	paths := []struct {
		name     string
		selector string
		read     func([]garnertest.Series) float64
		want     float64
	}{
		{"prometheus", `{__name__="e2e_hits_total",env="test"}`, last, hits},
		{"prometheus other", `{__name__="e2e_other_total"}`, last, other},
		{"graphite", `{__name__="stats.counters.e2e.hits.count",env="test"}`, sum, hits},
		{"influxdb", `{__name__="e2e.hits_count",env="test"}`, sum, hits},
		{"datadog", `{__name__="e2e.hits.count",env="test"}`, sum, hits},
		{"graphite other", `{__name__="stats.counters.e2e.other.count"}`, sum, other},
		{"influxdb other", `{__name__="e2e.other_count"}`, sum, other},
		{"datadog other", `{__name__="e2e.other.count"}`, sum, other},
	}
	for _, pa := range paths {
		t.Run(pa.name, func(t *testing.T) {
			got := vm.WaitExport(t, pa.selector, func(ss []garnertest.Series) bool { return pa.read(ss) >= pa.want })
			if v := pa.read(got); v != pa.want {
				t.Errorf("%s read %v, want %v (series %+v)", pa.selector, v, pa.want, got)
			}
			for _, x := range got {
				if x.Metric["host"] != "127.0.0.1" {
					t.Errorf("%s: host label %q, want the sender 127.0.0.1", pa.selector, x.Metric["host"])
				}
			}
		})
	}
	// The running total never decreases within one garner run.
	for _, s := range vm.Export(t, `{__name__="e2e_hits_total"}`) {
		for i := 1; i < len(s.Values); i++ {
			if s.Values[i] < s.Values[i-1] {
				t.Errorf("e2e_hits_total decreased: %v", s.Values)
				break
			}
		}
	}
}

// TestE2EToPrometheus runs the real garner with the prometheus backend
// against a real Prometheus and reads the counter total, a gauge and a
// timer summary back with PromQL.
func TestE2EToPrometheus(t *testing.T) {
	prom := garnertest.StartPrometheus(t)
	p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "prometheus"
metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
percent-threshold = "90 99"
[prometheus]
remote-write-url = "%s/api/v1/write"
`, prom.URL))
	udp := p.UDPAddr(t)
	hits, _ := sendHits(t, udp, 40)
	garnertest.SendUDP(t, udp, "e2e.temp:21.5|g|#room:lab", "e2e.rt:10|ms\ne2e.rt:20|ms\ne2e.rt:30|ms")
	p.WaitRead(t, 3*40+4)
	p.StopOK(t)
	now := time.Now()
	cases := []struct {
		query string
		want  float64
	}{
		{`e2e_hits_total{env="test",host="127.0.0.1"}`, hits},
		{`e2e_temp{room="lab",host="127.0.0.1"}`, 21.5},
		{`e2e_rt_count{host="127.0.0.1"}`, 3},
		{`e2e_rt_sum{host="127.0.0.1"}`, 60},
		{`e2e_rt{quantile="0.99",host="127.0.0.1"}`, 30},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			got := prom.QueryAt(t, tc.query, now)
			if len(got) != 1 || got[0].Values[0] != tc.want {
				t.Errorf("got %+v, want one sample %v", got, tc.want)
			}
		})
	}
}

// TestE2ENativeHistogramToPrometheus is issue 12's Prometheus check: 100k
// lognormal latency samples (about 1 ms to 2.3 s) through the real garner
// binary into a real Prometheus with native histograms, in two halves that
// reach it in different flushes. histogram_count() must be exact after
// each half (the histogram is cumulative) and histogram_quantile(0.99)
// within 3% of the exact p99 — with timer-aggregation = "histogram" and,
// built from the raw values, "exact".
func TestE2ENativeHistogramToPrometheus(t *testing.T) {
	prom := startNativePrometheus(t)
	rnd := rand.New(rand.NewPCG(21, 22))
	for _, mode := range []string{"histogram", "exact"} {
		t.Run(mode, func(t *testing.T) {
			values := lognormal(rnd, 100000)
			p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "prometheus"
metrics-addr = "127.0.0.1:0"
tcp-metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
shutdown-grace = "0s"
timer-aggregation = %q
[prometheus]
remote-write-url = "%s/api/v1/write"
timers = "native-histogram"
`, mode, prom.URL))
			tcp := p.TCPAddr(t)
			name := "e2e.native." + mode
			sel := `e2e_native_` + mode + `{host="127.0.0.1"}`
			count := func() float64 {
				got := prom.QueryAt(t, "histogram_count("+sel+")", time.Now())
				if len(got) != 1 {
					return -1
				}
				return got[0].Values[0]
			}

			half := len(values) / 2
			garnertest.SendTimersTCP(t, tcp, name, "", values[:half])
			garnertest.WaitFor(t, "Prometheus to hold the first half", 30*time.Second, func() bool { return count() >= float64(half) })
			if n := count(); n != float64(half) {
				t.Fatalf("histogram_count after the first half = %v, want %d", n, half)
			}
			firstSeen := time.Now()
			garnertest.SendTimersTCP(t, tcp, name, "", values[half:])
			p.WaitRead(t, len(values))
			p.StopOK(t) // the final flush
			var last float64
			deadline := time.Now().Add(30 * time.Second)
			for last = count(); last < float64(len(values)); last = count() {
				if time.Now().After(deadline) {
					t.Fatalf("histogram_count stayed %v (first half seen at %d ms), want %d; the series' samples: %s\n%s",
						last, firstSeen.UnixMilli(), len(values), rawQuery(prom, sel+"[1m]"), p.Stderr())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n := count(); n != float64(len(values)) {
				t.Errorf("histogram_count = %v, want %d", n, len(values))
			}
			// Cumulative: the sample of the first half is still there, below.
			if got := prom.QueryAt(t, "histogram_count("+sel+")", firstSeen); len(got) != 1 || got[0].Values[0] != float64(half) {
				t.Errorf("histogram_count when the first half was in = %+v, want %d", got, half)
			}
			sorted := slices.Sorted(slices.Values(values))
			checkQuantiles(t, prom, sel, sorted, time.Now())
		})
	}
}

// TestE2ETierNativeHistogram is the tier into Prometheus: 4 real
// forwarders (histogram mode, 25k lognormal samples each over TCP) ship
// their histograms over /v3 to one real aggregator, which merges them and
// remote-writes one native histogram to a real Prometheus: histogram_count
// exact, histogram_quantile within 3% of the exact values.
func TestE2ETierNativeHistogram(t *testing.T) {
	prom := startNativePrometheus(t)
	agg := garnertest.StartConfig(t, fmt.Sprintf("[prometheus]\nremote-write-url = \"%s/api/v1/write\"\ntimers = \"native-histogram\"\n", prom.URL),
		"--backends", "prometheus", "--timer-aggregation", "histogram", "--flush-interval", "300ms", "--shutdown-grace", "0s",
		"--metrics-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--enable-ingestion", "--ignore-host")
	admin := agg.AdminAddr(t)
	rnd := rand.New(rand.NewPCG(41, 42))
	var all []float64
	var fwds []*garnertest.Process
	for range 4 {
		f := garnertest.StartConfig(t, fmt.Sprintf("server-mode = \"forwarder\"\n[http-transport]\napi-endpoint = \"http://%s\"\nflush-interval = \"200ms\"\n", admin),
			"--timer-aggregation", "histogram", "--shutdown-grace", "0s", "--metrics-addr", "127.0.0.1:0", "--tcp-metrics-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
		values := lognormal(rnd, 25000)
		garnertest.SendTimersTCP(t, f.TCPAddr(t), "e2e.tier", "|#host:fleet", values)
		all = append(all, values...)
		fwds = append(fwds, f)
	}
	for _, f := range fwds {
		f.WaitRead(t, 25000)
		f.StopOK(t) // its final flush forwards what is left
	}
	sel := `e2e_tier{host="fleet"}`
	garnertest.WaitFor(t, "Prometheus to hold every sample", 30*time.Second, func() bool {
		got := prom.QueryAt(t, "histogram_count("+sel+")", time.Now())
		return len(got) == 1 && got[0].Values[0] >= float64(len(all))
	})
	agg.StopOK(t)
	if n := one(t, prom, "histogram_count("+sel+")", time.Now()); n != float64(len(all)) {
		t.Errorf("histogram_count = %v, want %d", n, len(all))
	}
	slices.Sort(all)
	checkQuantiles(t, prom, sel, all, time.Now())
}

// rawQuery is the body of Prometheus' answer to an instant query, for a
// failure message.
func rawQuery(p *garnertest.Prometheus, q string) string {
	resp, err := http.Get(p.URL + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b)
}
