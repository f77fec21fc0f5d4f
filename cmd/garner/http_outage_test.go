package main_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

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
