package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestGraphiteHangsThenRecovers: carbon accepts connections and never reads.
// Ingestion goes on, memory stays bounded (max_buffer_size), the loss is
// counted, the admin server answers fast, and once carbon reads again the
// data flows within a couple of flushes.
func TestGraphiteHangsThenRecovers(t *testing.T) {
	// The fake carbon's receive buffer is pinned small (accepted sockets
	// inherit it from the listener): the kernel would otherwise autotune it
	// up to net.ipv4.tcp_rmem's maximum (32 MiB on some hosts), absorbing
	// every flush, and nothing would ever have to be dropped.
	hang, err := garnertest.ListenTCP("127.0.0.1:0", 4096)
	if err != nil {
		t.Fatal(err)
	}
	addr := hang.Addr().String()
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()

	p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\nwrite_timeout = \"300ms\"\nmax_buffer_size = \"256KiB\"\n", addr),
		"--metrics-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--flush-interval", "500ms", "--shutdown-grace", "0s",
		"--expiry-interval-counter", "-1s") // a flush has only the counters of its interval
	udp, admin := p.UDPAddr(t), p.AdminAddr(t)
	// Traffic for at least 3s and until garner counts a drop. garner dials
	// carbon again after a failed write, and a fresh connection takes up to
	// its whole send buffer (autotuned up to net.ipv4.tcp_wmem's maximum) before
	// a write blocks: for a drop to be certain, one flush must be larger than
	// that plus max_buffer_size. So besides short lines for the ingestion
	// load, every flush interval the traffic touches long-named counters,
	// enough of them that the flush (a count and a rate line for each) is
	// larger than the largest send buffer this kernel gives, by 2 MiB.
	long, names := longSeries(garnertest.MaxSendBuffer() + 2<<20)
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	dropped := func() float64 {
		m, err := garnertest.Scrape(client, admin)
		if err != nil {
			t.Fatal(err)
		}
		return m.Sum("garner_graphite_dropped_flushes_total") + m.Sum("garner_backend_dropped_flushes_total")
	}
	began := time.Now()
	minEnd, deadline := began.Add(3*time.Second), began.Add(90*time.Second)
	var ready []time.Duration // how long /health/ready took to answer
	for i := 0; ; i++ {
		var b strings.Builder
		for j := 0; j < 40; j++ {
			fmt.Fprintf(&b, "hang.series.%d:1|c\n", (i*40+j)%5000)
		}
		_, _ = c.Write([]byte(b.String()))
		if perDgram := 60000 / len(long); i%4 == 0 {
			b.Reset()
			for j := 0; j < perDgram; j++ {
				fmt.Fprintf(&b, "%s.%d:1|c\n", long, (i/4*perDgram+j)%names)
			}
			_, _ = c.Write([]byte(b.String()))
		}
		if i%100 == 0 {
			start := time.Now()
			resp, err := client.Get("http://" + admin + "/health/ready")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ready = append(ready, time.Since(start))
			if now := time.Now(); now.After(minEnd) && dropped() > 0 || now.After(deadline) {
				break
			}
		}
		time.Sleep(time.Millisecond) // pacing, so that loopback UDP keeps up
	}
	t.Logf("sent traffic for %s, until garner counted a drop", time.Since(began).Round(time.Millisecond))
	// An admin server blocked behind the hung backend would be slow in most
	// answers; a loaded CPU makes a few of them slow: the median tells them apart.
	t.Logf("/health/ready answered in %s (median), %s (slowest) of %d", percentile(ready, 50), percentile(ready, 100), len(ready))
	if med := percentile(ready, 50); med > 100*time.Millisecond {
		t.Errorf("admin server took %s (median) to answer while the backend hung", med)
	}
	if lines := garnertest.MustScrape(t, admin).Sum("garner_receiver_lines_total"); lines < 10000 {
		t.Errorf("ingestion stalled while the backend hung: %v lines", lines)
	}
	if dropped() == 0 {
		t.Errorf("nothing counted as dropped within 90s while carbon hung")
	}
	if _, peak := p.RSS(); peak > 300<<20 {
		t.Errorf("peak RSS %d MiB while the backend hung", peak>>20)
	}

	// Recovery: carbon reads again, on the same address.
	_ = hang.Close()
	mu.Lock()
	for _, c := range held {
		_ = c.Close()
	}
	mu.Unlock()
	var g *garnertest.Graphite
	garnertest.WaitFor(t, "the carbon address to be free again", 10*time.Second, func() bool {
		g, err = garnertest.ListenGraphite(addr)
		return err == nil
	})
	defer g.Close()
	// garner's socket may still be full of the flood, and the kernel drop a
	// datagram sent now: send a new series each second until one arrives.
	delivered := func(lines []string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, "stats.counters.after.recovery.") && strings.Contains(l, ".count;host=127.0.0.1 7 ") {
				return true
			}
		}
		return false
	}
	recovery := time.Now().Add(30 * time.Second)
	for i := 0; !delivered(g.Lines()); i++ {
		if time.Now().After(recovery) {
			t.Fatalf("no delivery within 30s after carbon recovered; got %d lines", len(g.Lines()))
		}
		garnertest.SendUDP(t, udp, fmt.Sprintf("after.recovery.%d:7|c", i))
		g.WaitFor(time.Second, delivered)
	}
	p.StopOK(t)
}

// longSeries returns a series name prefix and a number of series such that
// their Graphite lines (two per counter, each longer than the prefix) add up
// to at least bytes, with names far below carbon's line limit.
func longSeries(bytes int) (prefix string, series int) {
	series = 5000
	n := min(bytes/(2*series)+1, 8000)
	if 2*series*n < bytes {
		series = bytes/(2*n) + 1
	}
	return "hang.long." + strings.Repeat("x", n), series
}

// TestHTTPBackendOutage: the influxdb backend's endpoint answers 500 for a
// while, then hangs (accepts the request and never answers), then
// recovers, while garner-load sends at a steady rate. Ingest goes on at full
// speed with nothing dropped on the way in, memory stays bounded, the series
// garner could not deliver are counted in
// garner_backend_dropped_series_total, and the first flush after the
// recovery is delivered.
//
// The backend's time budget (backend-timeout 400ms < flush-interval 500ms,
// influxdb.max-request-elapsed-time 350ms) makes a failing flush give up
// before the next one starts, so the backend is idle when the endpoint
// recovers; with the defaults a flush keeps retrying for up to 15 s and the
// flushes that find it busy are dropped (garner_backend_dropped_flushes_total).
func TestHTTPBackendOutage(t *testing.T) {
	skipLoadUnderShort(t)
	const (
		interval = 500 * time.Millisecond
		maxRSS   = 200 << 20
	)
	influx := newInfluxServer(t)
	cfg := influxConfig(t, influx, "", "timeout = \"150ms\"\nmax-request-elapsed-time = \"350ms\"\n")
	p := startPlain(t, "--config-path", cfg, "--metrics-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--flush-interval", interval.String(), "--backend-timeout", "400ms", "--shutdown-grace", "0s")
	udp, admin := p.UDPAddr(t), p.AdminAddr(t)

	load := startLoad(t, udp, "--rate", "50k", "--duration", "5500ms", "--series", "2000")
	start := time.Now()
	client := &http.Client{Timeout: 2 * time.Second}
	type sample struct {
		at      time.Duration
		lines   float64 // garner_receiver_lines_total
		dropped float64 // garner_backend_dropped_series_total{backend="influxdb"}
	}
	var samples []sample
	// until samples every 100ms until d after the load started.
	until := func(d time.Duration) sample {
		t.Helper()
		for i := 0; i < 1000; i++ {
			m, err := garnertest.Scrape(client, admin)
			if err != nil {
				t.Fatalf("scrape: %v", err)
			}
			s := sample{at: time.Since(start), lines: m.Sum("garner_receiver_lines_total"),
				dropped: m.Sum("garner_backend_dropped_series_total", `backend="influxdb"`)}
			samples = append(samples, s)
			if s.at >= d {
				return s
			}
			time.Sleep(min(100*time.Millisecond, d-s.at))
		}
		t.Fatal("sampling did not end")
		return sample{}
	}

	okStart := until(200 * time.Millisecond)
	okEnd := until(time.Second)
	if len(influx.accepted()) == 0 {
		t.Fatal("nothing delivered before the outage")
	}
	influx.setMode(influxFail)
	failing := until(2500 * time.Millisecond)
	failures500 := influx.failures()
	influx.setMode(influxHang)
	hanging := until(4 * time.Second)
	hangs := influx.failures() - failures500
	recovered := time.Now()
	influx.setMode(influxOK)
	end := until(5 * time.Second)
	res := loadDone(t, load, 30*time.Second)
	m, err := garnertest.Scrape(client, admin)
	if err != nil {
		t.Fatal(err)
	}
	_, peak := p.RSS()

	rate := func(a, b sample) float64 { return (b.lines - a.lines) / (b.at - a.at).Seconds() }
	before, during, after := rate(okStart, okEnd), rate(okEnd, hanging), rate(hanging, end)
	t.Logf("sent %d lines at %.0f/s; garner read %.0f lines/s before, %.0f during, %.0f after the outage; "+
		"%d requests answered 500, %d left hanging; dropped series: %.0f after the 500s, %.0f after the hang; "+
		"dropped flushes %.0f; kernel drops %.0f; queue drops %.0f; peak RSS %d MiB",
		res.Lines, res.Rate, before, during, after, failures500, hangs, failing.dropped, hanging.dropped,
		m.Sum("garner_backend_dropped_flushes_total"), m.Sum("garner_receiver_kernel_drops_total"),
		m.Sum("garner_aggregator_queue_dropped_lines_total"), peak>>20)

	if during < 0.8*before || during < 0.8*res.Rate {
		t.Errorf("ingest slowed during the outage: %.0f lines/s, %.0f before, %.0f offered", during, before, res.Rate)
	}
	if lost := m.Sum("garner_receiver_kernel_drops_total") + m.Sum("garner_aggregator_queue_dropped_lines_total"); lost > 0 {
		t.Errorf("%.0f lines lost on the way in during a backend outage", lost)
	}
	if failures500 == 0 || hangs == 0 {
		t.Fatalf("the outage was not exercised: %d requests answered 500, %d hung", failures500, hangs)
	}
	if failing.dropped <= okEnd.dropped {
		t.Errorf("no series counted as dropped while the endpoint answered 500 (%.0f -> %.0f)", okEnd.dropped, failing.dropped)
	}
	if hanging.dropped <= failing.dropped {
		t.Errorf("no series counted as dropped while the endpoint hung (%.0f -> %.0f)", failing.dropped, hanging.dropped)
	}
	if peak > maxRSS {
		t.Errorf("peak RSS %d MiB during the outage, want <= %d MiB", peak>>20, maxRSS>>20)
	}

	// Delivery resumes with the first flush collected after the recovery:
	// a write whose points are stamped at or after it, received within one
	// flush interval (plus scheduling slack).
	var resumed time.Time
	for _, w := range influx.accepted() {
		if w.at.Before(recovered) || len(w.lines) == 0 {
			continue
		}
		f := strings.Fields(w.lines[0])
		ts, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("line without a timestamp: %q", w.lines[0])
		}
		if ts >= recovered.UnixMilli() {
			resumed = w.at
			break
		}
	}
	if resumed.IsZero() {
		t.Fatalf("nothing flushed after the recovery was delivered")
	}
	if d := resumed.Sub(recovered); d > interval+300*time.Millisecond {
		t.Errorf("delivery resumed %s after the recovery, want within one flush (%s)", d, interval)
	} else {
		t.Logf("delivery resumed %s after the recovery", d.Round(time.Millisecond))
	}
	p.StopOK(t)
}
