package deploy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// faultPath is a forwarder whose only upstream is an aggregator behind a
// Toxiproxy proxy (this kernel has no netem: faults are injected in the
// TCP path), and the Graphite listener the aggregator flushes to.
type faultPath struct {
	aggAdmin string
	proxy    *toxiclient.Proxy
	graphite *garnertest.Graphite
	fwd      *garnertest.Process
	udp      net.Conn
	sent     int // lines sent to the forwarder so far
}

// startToxiproxy runs a Toxiproxy server in the test process (its HTTP API
// on a free loopback port) and returns a client of that API.
func startToxiproxy(t *testing.T) *toxiclient.Client {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api := garnertest.FreeAddr(t)
	go func() { _ = srv.Listen(api) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	garnertest.WaitFor(t, "toxiproxy's API answers", 10*time.Second, garnertest.HTTPReady("http://"+api+"/version"))
	return toxiclient.NewClient("http://" + api)
}

// newFaultPath starts an aggregator (ingestion on its admin address,
// flushing each interval only what arrived in it), a proxy in front of its
// ingestion, and a forwarder sending through the proxy. forwarderTOML is
// added to the forwarder's [http-transport] section.
func newFaultPath(t *testing.T, tox *toxiclient.Client, name, forwarderTOML string) *faultPath {
	t.Helper()
	fp := &faultPath{graphite: garnertest.NewGraphite(t), aggAdmin: garnertest.FreeAddr(t)}
	aggAdmin := fp.aggAdmin
	garnertest.StartConfig(t, aggregatorTOML(fp.graphite.Addr()), "--admin-addr="+aggAdmin)
	var err error
	fp.proxy, err = tox.CreateProxy(name, garnertest.FreeAddr(t), aggAdmin)
	if err != nil {
		t.Fatalf("create proxy: %v", err)
	}
	t.Cleanup(func() { _ = fp.proxy.Delete() })
	fp.fwd = garnertest.StartConfig(t, fmt.Sprintf(`
server-mode = "forwarder"
metrics-addr = "127.0.0.1:0"
flush-interval = "200ms"
shutdown-grace = "0s"
[http-transport]
api-endpoint = "http://%s"
client-timeout = "2s"
upstream-failures = 2
probe-interval = "500ms"
%s
`, fp.proxy.Listen, forwarderTOML))
	fp.udp, err = net.Dial("udp", fp.fwd.UDPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.udp.Close() })
	return fp
}

// send sends one increment of each of n counters <prefix>.s0 … and waits
// until the forwarder has read every line: ingestion on the agent goes on
// whatever happens upstream.
func (fp *faultPath) send(t *testing.T, prefix string, n int) {
	t.Helper()
	var d strings.Builder
	for j := 0; j < n; j++ {
		fmt.Fprintf(&d, "%s.s%d:1|c\n", prefix, j)
		if (j+1)%linesPerDgram == 0 || j == n-1 {
			if _, err := fp.udp.Write([]byte(d.String())); err != nil {
				t.Fatal(err)
			}
			d.Reset()
		}
	}
	fp.sent += n
	fp.fwd.WaitRead(t, fp.sent)
}

// delivered counts the series of prefix the aggregator flushed; a series
// flushed twice, or with a value other than 1, fails the test (the v3 batch
// ids must make a retried request count once).
func (fp *faultPath) delivered(t *testing.T, prefix string) int {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range fp.graphite.Points() {
		name, _, _ := strings.Cut(p.Name, ";")
		name, ok := strings.CutPrefix(name, "stats.counters."+prefix+".")
		if !ok || !strings.HasSuffix(name, ".count") {
			continue
		}
		if v, err := strconv.ParseFloat(p.Value, 64); err != nil || v != 1 {
			t.Fatalf("%s.%s = %q, want exactly 1", prefix, name, p.Value)
		}
		if seen[name] {
			t.Fatalf("%s.%s flushed twice: a retried request was applied again", prefix, name)
		}
		seen[name] = true
	}
	return len(seen)
}

func (fp *faultPath) forwarderMetric(t *testing.T, name string) float64 {
	t.Helper()
	return garnertest.MustScrape(t, fp.fwd.AdminAddr(t)).Sum(name)
}

// TestForwardingThroughFaults puts a fault-injecting proxy between a
// forwarder and its aggregator: 1s of latency, a bandwidth cap, requests
// cut mid-body, answers reset, a black hole that accepts and never answers.
// While the buffer has room nothing is lost and nothing is counted twice;
// the agent reads every line throughout; delivery resumes soon after the
// fault ends. With a buffer too small for the outage, what is dropped is
// counted, and delivered + dropped is exactly what was sent.
func TestForwardingThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four garner processes and a proxy")
	}
	tox := startToxiproxy(t)
	fp := newFaultPath(t, tox, "tier", "")
	const (
		hold = 3 * time.Second // how long each fault lasts: longer than client-timeout
		// After the fault: a probe (500ms, jittered), a retry backoff and a
		// flush of the aggregator (300ms), with room for a loaded machine.
		recoverWithin = 10 * time.Second
	)
	// blocks: nothing gets through while the fault lasts (the proof that
	// it is in the path); duplicates: the aggregator applied requests whose
	// answer was lost, so it must see their retries, and apply them once.
	faults := []struct {
		name, toxic, stream string
		attrs               toxiclient.Attributes
		series              int
		blocks, duplicates  bool
	}{
		{"latency 1s", "latency", "downstream", toxiclient.Attributes{"latency": 1000}, 500, false, false},
		{"bandwidth 4 KB/s", "bandwidth", "upstream", toxiclient.Attributes{"rate": 4}, 3000, false, false},
		{"request cut mid-body", "limit_data", "upstream", toxiclient.Attributes{"bytes": 400}, 1000, true, false},
		{"answer reset", "reset_peer", "downstream", toxiclient.Attributes{"timeout": 0}, 500, false, true},
		{"black hole", "timeout", "upstream", toxiclient.Attributes{"timeout": 0}, 500, true, false},
	}
	for i, f := range faults {
		prefix := fmt.Sprintf("fault%d", i)
		dup0 := garnertest.MustScrape(t, fp.aggAdmin).Sum("garner_ingest_requests_total", `result="duplicate"`)
		if _, err := fp.proxy.AddToxic(f.toxic, f.toxic, f.stream, 1, f.attrs); err != nil {
			t.Fatalf("%s: add toxic: %v", f.name, err)
		}
		fp.send(t, prefix, f.series)
		time.Sleep(hold) // the fault's duration, not a wait for a condition
		during := fp.delivered(t, prefix)
		if err := fp.proxy.RemoveToxic(f.toxic); err != nil {
			t.Fatalf("%s: remove toxic: %v", f.name, err)
		}
		healed := time.Now()
		garnertest.WaitFor(t, f.name+": every series delivered", recoverWithin, func() bool {
			return fp.delivered(t, prefix) == f.series
		})
		dups := garnertest.MustScrape(t, fp.aggAdmin).Sum("garner_ingest_requests_total", `result="duplicate"`) - dup0
		t.Logf("%s: %d of %d series delivered during the %v fault, all %d within %v after it ended; %v retried requests ignored as duplicates",
			f.name, during, f.series, hold, f.series, time.Since(healed).Round(10*time.Millisecond), dups)
		if f.blocks && during != 0 {
			t.Errorf("%s: %d series got through during the fault: it is not in the path", f.name, during)
		}
		if f.duplicates && dups == 0 {
			t.Errorf("%s: the aggregator saw no retried batch: the fault did not cut answers", f.name)
		}
	}
	if d := fp.forwarderMetric(t, "garner_forwarder_dropped_series_total"); d != 0 {
		t.Errorf("forwarder dropped %v series though its buffer had room", d)
	}
	if d := fp.forwarderMetric(t, "garner_aggregator_queue_dropped_lines_total") + fp.forwarderMetric(t, "garner_receiver_kernel_drops_total") + fp.forwarderMetric(t, "garner_receiver_bad_lines_total"); d != 0 {
		t.Errorf("forwarder lost or refused %v lines on the way in", d)
	}

	// A buffer that holds a few small requests, and an outage longer than
	// it can ride out: the oldest are dropped, and every one is counted.
	small := newFaultPath(t, tox, "tier-small-buffer", "max-buffer-size = \"2KiB\"\nmax-series-per-request = 50\n")
	if _, err := small.proxy.AddToxic("timeout", "timeout", "upstream", 1, toxiclient.Attributes{"timeout": 0}); err != nil {
		t.Fatal(err)
	}
	const rounds, perRound = 4, 500
	for r := range rounds {
		small.send(t, fmt.Sprintf("full%d", r), perRound)
		time.Sleep(300 * time.Millisecond) // one forwarder flush per round, so the buffer holds several
	}
	if err := small.proxy.RemoveToxic("timeout"); err != nil {
		t.Fatal(err)
	}
	var delivered, dropped int
	garnertest.WaitFor(t, "delivered + dropped = sent", 30*time.Second, func() bool {
		delivered = 0
		for r := range rounds {
			delivered += small.delivered(t, fmt.Sprintf("full%d", r))
		}
		dropped = int(small.forwarderMetric(t, "garner_forwarder_dropped_series_total"))
		return delivered+dropped >= rounds*perRound
	})
	if delivered+dropped != rounds*perRound {
		t.Errorf("%d delivered + %d dropped, want %d sent", delivered, dropped, rounds*perRound)
	}
	if dropped == 0 || delivered == 0 {
		t.Errorf("%d delivered, %d dropped: want the buffer to overflow and the rest to arrive", delivered, dropped)
	}
	t.Logf("2 KiB buffer through a black hole: %d series delivered, %d dropped and counted, of %d", delivered, dropped, rounds*perRound)
}
