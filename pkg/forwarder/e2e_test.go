package forwarder_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/proto/pb"
)

// End-to-end: real garner processes on loopback — forwarders (server-mode
// forwarder) → aggregators (HTTP ingestion) → Graphite listeners — fed real
// statsd datagrams.

// node is one running garner.
type node struct {
	p     *garnertest.Process
	udp   string // statsd address
	http  string // admin address (ingestion on aggregators)
	carb  *garnertest.Graphite
	args  []string
	start time.Time
}

// startAggregator runs an aggregator that ingests on its admin address and
// flushes to carb once a minute (and at SIGTERM: the final flush holds
// everything). httpAddr "" picks a free port.
func startAggregator(t *testing.T, carb *garnertest.Graphite, httpAddr, extra string) *node {
	t.Helper()
	if httpAddr == "" {
		httpAddr = fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))
	}
	n := &node{udp: fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)), http: httpAddr, carb: carb}
	cfg := garnertest.WriteConfig(t, fmt.Sprintf("[graphite]\naddress = %q\n%s", carb.Addr(), extra))
	n.args = []string{
		"--config-path", cfg, "--metrics-addr", n.udp, "--admin-addr", n.http, "--enable-ingestion",
		"--backends", "graphite", "--flush-interval", "60s", "--shutdown-grace", "0s", "--max-workers", "2", "--max-readers", "1",
	}
	n.run(t)
	return n
}

// startForwarder runs a forwarder in front of the given aggregators.
func startForwarder(t *testing.T, flushInterval string, extra string, aggs ...*node) *node {
	t.Helper()
	var eps []string
	for _, a := range aggs {
		eps = append(eps, "http://"+a.http)
	}
	n := &node{udp: fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)), http: fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))}
	cfg := garnertest.WriteConfig(t, fmt.Sprintf("server-mode = \"forwarder\"\n[http-transport]\napi-endpoint = %q\nflush-interval = %q\nprobe-interval = \"200ms\"\n%s",
		strings.Join(eps, " "), flushInterval, extra))
	n.args = []string{
		"--config-path", cfg, "--metrics-addr", n.udp, "--admin-addr", n.http,
		"--shutdown-grace", "0s", "--max-workers", "2", "--max-readers", "1",
		"--dependency-check-interval", "200ms", "--dependency-check-timeout", "200ms", "--shutdown-timeout", "3s",
	}
	n.run(t)
	return n
}

func (n *node) run(t *testing.T) {
	t.Helper()
	n.p = garnertest.Start(t, n.args...)
	n.start = time.Now()
	if !n.p.WaitStderr("serving http", 30*time.Second) || !n.p.WaitStderr("garner started", 30*time.Second) {
		t.Fatalf("garner did not start:\n%s", n.p.Stderr())
	}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	if code := n.p.Stop(30 * time.Second); code != 0 {
		t.Fatalf("garner exited with %d:\n%s", code, n.p.Stderr())
	}
}

// metric reads one self-metric (the sum over its label sets matching
// labels) from the node's /metrics.
func (n *node) metric(t *testing.T, name, labels string) float64 {
	t.Helper()
	return garnertest.MustScrape(t, n.http).Sum(name, labels)
}

// wantPoints checks that each named carbon point is there with its value.
func wantPoints(t *testing.T, pts, want map[string]float64) {
	t.Helper()
	for name, w := range want {
		if got, ok := pts[name]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, w)
		}
	}
}

// wantFinal stops the aggregator agg, whose final flush holds everything it
// aggregated, and checks the points its carbon got (wantPoints).
func wantFinal(t *testing.T, agg *node, want map[string]float64) {
	t.Helper()
	agg.stop(t)
	wantPoints(t, points(agg.carb), want)
}

// send sends lines in datagrams of at most 20 lines, paced so that loopback
// UDP does not drop any.
func send(t *testing.T, addr string, lines []string) {
	t.Helper()
	for len(lines) > 0 {
		k := min(20, len(lines))
		garnertest.SendUDP(t, addr, strings.Join(lines[:k], "\n"))
		lines = lines[k:]
		time.Sleep(2 * time.Millisecond)
	}
}

// points maps Graphite names (tags included) to the sum of their values
// over every line received. Callers read it after the aggregator stopped:
// it first waits for the connection of the final flush to be read to its
// end (the listener may still be reading it when the process has exited).
func points(g *garnertest.Graphite) map[string]float64 {
	g.WaitSent(10 * time.Second)
	return g.Sums()
}

// sumPrefix sums the points whose name starts with prefix and, cut at ';',
// ends with suffix.
func sumPrefix(pts map[string]float64, prefix, suffix string) (float64, int) {
	var s float64
	n := 0
	for name, v := range pts {
		base, _, _ := strings.Cut(name, ";")
		if strings.HasPrefix(base, prefix) && strings.HasSuffix(base, suffix) {
			s += v
			n++
		}
	}
	return s, n
}

// TestTierExactTotals: two forwarders → two aggregators. Every series is on
// exactly one aggregator, counts and sets add up exactly, and timer
// percentiles are computed over the values of both forwarders.
func TestTierExactTotals(t *testing.T) {
	c1, c2 := garnertest.NewGraphite(t), garnertest.NewGraphite(t)
	a1 := startAggregator(t, c1, "", "")
	a2 := startAggregator(t, c2, "", "")
	f1 := startForwarder(t, "200ms", "", a1, a2)
	f2 := startForwarder(t, "200ms", "", a1, a2)
	for fi, f := range []*node{f1, f2} {
		var lines []string
		for rep := 0; rep < 3; rep++ {
			for r := 0; r < 50; r++ {
				lines = append(lines, fmt.Sprintf("e2e.req:1|c|#route:r%d", r))
			}
		}
		lines = append(lines, "e2e.frac:0.5|c|@0.5")
		for k := 0; k < 50; k++ {
			lines = append(lines, fmt.Sprintf("e2e.lat:%d|ms", fi*100+k))
		}
		for k := 0; k < 30; k++ {
			lines = append(lines, fmt.Sprintf("e2e.users:u%d|s", fi*15+k))
		}
		lines = append(lines, fmt.Sprintf("e2e.g%d:7|g", fi))
		send(t, f.udp, lines)
	}
	// 50 + 1 + 1 + 1 + 1 series per forwarder.
	garnertest.WaitFor(t, "forwarders to deliver", 30*time.Second, func() bool {
		return f1.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 54 &&
			f2.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 54
	})
	f1.stop(t)
	f2.stop(t)
	a1.stop(t)
	a2.stop(t)
	p1, p2 := points(c1), points(c2)

	// Every e2e.req series on exactly one aggregator, both used.
	in1, in2 := 0, 0
	for r := 0; r < 50; r++ {
		name := fmt.Sprintf("stats.counters.e2e.req.count;route=r%d;host=127.0.0.1", r)
		v1, ok1 := p1[name]
		v2, ok2 := p2[name]
		if ok1 == ok2 {
			t.Fatalf("%s: on aggregator 1: %v, on 2: %v; want exactly one", name, ok1, ok2)
		}
		if v1+v2 != 6 {
			t.Fatalf("%s = %v, want 6 (3 from each forwarder)", name, v1+v2)
		}
		if ok1 {
			in1++
		} else {
			in2++
		}
	}
	if in1 == 0 || in2 == 0 {
		t.Fatalf("series split %d/%d: want both aggregators used", in1, in2)
	}
	all := map[string]float64{}
	for _, p := range []map[string]float64{p1, p2} {
		for k, v := range p {
			all[k] += v
		}
	}
	wantPoints(t, all, map[string]float64{
		"stats.counters.e2e.frac.count;host=127.0.0.1": 2,
		"stats.sets.e2e.users;host=127.0.0.1":          45,
		"stats.gauges.e2e.g0;host=127.0.0.1":           7,
		"stats.gauges.e2e.g1;host=127.0.0.1":           7,
		"stats.timers.e2e.lat.count;host=127.0.0.1":    100,
		"stats.timers.e2e.lat.lower;host=127.0.0.1":    0,
		"stats.timers.e2e.lat.upper;host=127.0.0.1":    149,
		"stats.timers.e2e.lat.upper_90;host=127.0.0.1": 139,
		"stats.timers.e2e.lat.count_90;host=127.0.0.1": 90,
	})
	if total, _ := sumPrefix(all, "stats.counters.e2e.req", ".count"); total != 300 {
		t.Errorf("e2e.req total %v, want 300", total)
	}
}

// TestAggregatorRestart: the aggregator is stopped while the forwarder runs
// and started again on the same address; what was sent meanwhile is
// retried and delivered, nothing twice.
func TestAggregatorRestart(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	agg := startAggregator(t, carb, "", "")
	fwd := startForwarder(t, "200ms", "", agg)
	sendBatch := func(tag string, n int) {
		var lines []string
		for i := 0; i < n; i++ {
			lines = append(lines, fmt.Sprintf("restart.c:1|c|#batch:%s", tag), fmt.Sprintf("restart.t:%d|ms", i))
		}
		send(t, fwd.udp, lines)
	}
	sendBatch("a", 40)
	garnertest.WaitFor(t, "batch a delivered", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 2
	})
	agg.stop(t) // final flush: batch a
	sendBatch("b", 30)
	garnertest.WaitFor(t, "the forwarder to notice", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_upstream_down_total", "") >= 1
	})
	agg.run(t) // same ports
	garnertest.WaitFor(t, "the upstream back", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_upstream_up_total", "") >= 1
	})
	sendBatch("c", 20)
	garnertest.WaitFor(t, "everything delivered", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 6
	})
	if d := fwd.metric(t, "garner_forwarder_dropped_series_total", ""); d != 0 {
		t.Errorf("%v series dropped", d)
	}
	fwd.stop(t)
	wantFinal(t, agg, map[string]float64{
		"stats.counters.restart.c.count;batch=a;host=127.0.0.1": 40,
		"stats.counters.restart.c.count;batch=b;host=127.0.0.1": 30,
		"stats.counters.restart.c.count;batch=c;host=127.0.0.1": 20,
		"stats.timers.restart.t.count;host=127.0.0.1":           90,
	})
}

// TestFallbackToV2: an aggregator that serves only v2 (ingestion.v3=false,
// as gostatsd) gets v2 from a v3 forwarder after one 404.
func TestFallbackToV2(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	agg := startAggregator(t, carb, "", "[ingestion]\nv3 = false\n")
	fwd := startForwarder(t, "200ms", "compression-type = \"zstd\"\n", agg)
	send(t, fwd.udp, []string{"fb.c:2.5|c", "fb.t:1|ms", "fb.t:2|ms"})
	garnertest.WaitFor(t, "delivery", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 2
	})
	send(t, fwd.udp, []string{"fb.c:1|c"})
	garnertest.WaitFor(t, "delivery", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`) >= 3
	})
	if n := fwd.metric(t, "garner_forwarder_protocol_fallbacks_total", ""); n != 1 {
		t.Fatalf("fallbacks %v, want 1", n)
	}
	if v3, v2 := agg.metric(t, "garner_ingest_requests_total", `endpoint="/v3/raw"`), agg.metric(t, "garner_ingest_requests_total", `endpoint="/v2/raw",result="accepted"`); v3 != 0 || v2 < 2 {
		t.Fatalf("aggregator counted %v v3 and %v v2 requests", v3, v2)
	}
	if !strings.Contains(fwd.p.Stderr(), "speaking v2") {
		t.Fatal("no log line about the fallback")
	}
	fwd.stop(t)
	wantFinal(t, agg, map[string]float64{
		"stats.counters.fb.c.count;host=127.0.0.1": 4, // v2 counters are integers: 2.5 is sent as 3 (rounded), then 1
		"stats.timers.fb.t.count;host=127.0.0.1":   2,
	})
}

// TestSigtermDelivers: a forwarder that has not flushed yet sends what it
// holds when it gets SIGTERM.
func TestSigtermDelivers(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	agg := startAggregator(t, carb, "", "")
	fwd := startForwarder(t, "1h", "", agg)
	send(t, fwd.udp, []string{"term.c:5|c", "term.s:a|s", "term.s:b|s", "_e{4,2}:boom|hi"})
	time.Sleep(300 * time.Millisecond) // let the readers hand the lines to the shards
	fwd.stop(t)
	agg.stop(t)
	pts := points(carb)
	if pts["stats.counters.term.c.count;host=127.0.0.1"] != 5 || pts["stats.sets.term.s;host=127.0.0.1"] != 2 {
		t.Fatalf("after SIGTERM: %v", pts)
	}
}

// TestGostatsdV2BodyAccepted: a /v2/raw body as a gostatsd forwarder sends
// it (built from the v2 protos, deflate) is aggregated.
func TestGostatsdV2BodyAccepted(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	agg := startAggregator(t, carb, "", "")
	msg := &pb.RawMessageV2{
		Counters: map[string]*pb.CounterTagV2{"gs.req": {TagMap: map[string]*pb.RawCounterV2{
			"env:prod,s:10.1.1.1": {Tags: []string{"env:prod"}, Hostname: "10.1.1.1", Value: 42},
		}}},
		Timers: map[string]*pb.TimerTagV2{"gs.lat": {TagMap: map[string]*pb.RawTimerV2{
			"": {SampleCount: 4, Values: []float64{10, 20}},
		}}},
		Gauges: map[string]*pb.GaugeTagV2{"gs.temp": {TagMap: map[string]*pb.RawGaugeV2{"": {Value: 21.5}}}},
		Sets:   map[string]*pb.SetTagV2{"gs.users": {TagMap: map[string]*pb.RawSetV2{"": {Values: []string{"x", "y", "z"}}}}},
	}
	raw, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+agg.http+"/v2/raw", bytes.NewReader(garnertest.Deflate(t, raw)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "deflate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
	wantFinal(t, agg, map[string]float64{
		"stats.counters.gs.req.count;env=prod;host=10.1.1.1": 42,
		"stats.timers.gs.lat.count":                          4,
		"stats.timers.gs.lat.upper":                          20,
		"stats.gauges.gs.temp":                               21.5,
		"stats.sets.gs.users":                                3,
	})
}

// TestUndeliverableCounted: with the only aggregator gone for longer than
// max-buffer-age, what could not be delivered is counted as dropped (in
// series and samples) and logged, and the upstream shows as a hard
// dependency that is down.
func TestUndeliverableCounted(t *testing.T) {
	dead := &node{http: fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))}
	fwd := startForwarder(t, "200ms", "max-request-elapsed-time = \"1s\"\nmax-buffer-age = \"2s\"\n", dead)
	send(t, fwd.udp, []string{"lost.a:1|c", "lost.b:1|c", "lost.t:1:2|ms"})
	garnertest.WaitFor(t, "the drop to be counted", 20*time.Second, func() bool {
		return fwd.metric(t, "garner_forwarder_dropped_series_total", `reason="expired"`) == 3 &&
			fwd.metric(t, "garner_forwarder_dropped_samples_total", `reason="expired"`) == 4
	})
	garnertest.WaitFor(t, "the drop to be logged", 20*time.Second, func() bool {
		return strings.Contains(fwd.p.Stderr(), "forwarder dropped data") && strings.Contains(fwd.p.Stderr(), "reason=expired")
	})
	if s := fwd.metric(t, "garner_forwarder_sent_series_total", `kind="raw"`); s != 0 {
		t.Fatalf("%v series counted as sent", s)
	}
	garnertest.WaitFor(t, "the dependency to be down", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + fwd.http + "/health/dependencies")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		s := b.String()
		return strings.Contains(s, "forward http://"+dead.http) && strings.Contains(s, `"hard"`) && strings.Contains(s, `"down"`)
	})
	fwd.stop(t)
}
