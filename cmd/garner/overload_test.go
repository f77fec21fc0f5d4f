package main_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestOverloadFlatOut: garner-load sends as fast as it can for 4 s, far more
// than garner can read (the kernel drops the rest, and counts it). garner
// must keep aggregating at its own maximum rate to the end (the accepted
// lines/s of the last second is not a fraction of the first), keep flushing,
// keep its memory bounded, and its admin server must answer /health/live and
// /metrics within 1s (p99 of the polls made during the run): before a
// Kubernetes probe's default timeout. (It answers within 100 ms on an idle
// 2-core machine; the bound must hold while other processes share the CPU.)
func TestOverloadFlatOut(t *testing.T) {
	skipLoadUnderShort(t)
	const (
		run        = 4 * time.Second
		maxLatency = time.Second
		maxRSS     = 256 << 20
	)
	p := startPlain(t, "--metrics-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--backends", "null",
		"--flush-interval", "1s", "--shutdown-grace", "0s")
	udp, admin := p.UDPAddr(t), p.AdminAddr(t)

	load := startLoad(t, udp, "--rate", "max", "--duration", run.String(), "--series", "10000")
	start := time.Now()
	type sample struct {
		at    time.Duration // since the load started
		lines float64       // garner_receiver_lines_total
	}
	var (
		samples        []sample
		live, mtr      []time.Duration
		firstFlushes   = -1.0
		lastFlushes    float64
		pollErrs       int
		lastPollErr    error
		client         = &http.Client{Timeout: 5 * time.Second}
		pollEvery      = 20 * time.Millisecond
		pollUntil      = run - 100*time.Millisecond
		liveURL        = "http://" + admin + "/health/live"
		scrapeDuration time.Duration
	)
	for i := 0; time.Since(start) < pollUntil && i < 10000; i++ {
		if i%2 == 0 {
			d, err := timedGet(client, liveURL)
			if err != nil {
				pollErrs, lastPollErr = pollErrs+1, err
			} else {
				live = append(live, d)
			}
		} else {
			t0 := time.Now()
			m, err := garnertest.Scrape(client, admin)
			scrapeDuration = time.Since(t0)
			if err != nil {
				pollErrs, lastPollErr = pollErrs+1, err
			} else {
				mtr = append(mtr, scrapeDuration)
				samples = append(samples, sample{at: time.Since(start), lines: m.Sum("garner_receiver_lines_total")})
				if firstFlushes < 0 {
					firstFlushes = m.Sum("garner_flush_total")
				}
				lastFlushes = m.Sum("garner_flush_total")
			}
		}
		time.Sleep(pollEvery)
	}
	res := loadDone(t, load, run+30*time.Second)
	m, err := garnertest.Scrape(client, admin)
	if err != nil {
		t.Fatal(err)
	}
	_, peak := p.RSS()

	if pollErrs > 0 {
		t.Errorf("%d admin polls failed during the run; last: %v", pollErrs, lastPollErr)
	}
	all := append(append([]time.Duration(nil), live...), mtr...)
	p99 := percentile(all, 99)
	t.Logf("admin polls: %d /health/live (p99 %s, max %s), %d /metrics (p99 %s, max %s); p99 of all %s",
		len(live), percentile(live, 99), percentile(live, 100), len(mtr), percentile(mtr, 99), percentile(mtr, 100), p99)
	if p99 > maxLatency {
		t.Errorf("admin server p99 latency %s under overload, want <= %s", p99, maxLatency)
	}

	// Accepted lines/s over the first and the last second of the load.
	rate := func(from, to time.Duration) float64 {
		var a, b *sample
		for i := range samples {
			s := &samples[i]
			if a == nil && s.at >= from {
				a = s
			}
			if s.at <= to {
				b = s
			}
		}
		if a == nil || b == nil || b.at-a.at < 500*time.Millisecond {
			t.Fatalf("too few samples between %s and %s (%d in all): the admin server did not answer often enough", from, to, len(samples))
		}
		return (b.lines - a.lines) / (b.at - a.at).Seconds()
	}
	first := rate(200*time.Millisecond, 1200*time.Millisecond)
	last := rate(pollUntil-time.Second, pollUntil)
	drops := m.Sum("garner_receiver_kernel_drops_total")
	t.Logf("sent %d lines (%.0f lines/s, %d datagrams); garner read %.0f lines: %.0f lines/s in the first second, %.0f in the last; kernel dropped %.0f datagrams; queue drops %.0f; flushes %.0f; peak RSS %d MiB",
		res.Lines, res.Rate, res.Datagrams, m.Sum("garner_receiver_lines_total"), first, last, drops,
		m.Sum("garner_aggregator_queue_dropped_lines_total"), lastFlushes-firstFlushes, peak>>20)
	if first < 50000 {
		t.Errorf("garner accepted only %.0f lines/s in the first second", first)
	}
	if last < first/2 {
		t.Errorf("ingest collapsed under overload: %.0f lines/s in the last second, %.0f in the first", last, first)
	}
	if drops == 0 && float64(res.Lines) > m.Sum("garner_receiver_lines_total") {
		t.Errorf("sent %d lines, read %.0f, yet no kernel drops counted", res.Lines, m.Sum("garner_receiver_lines_total"))
	}
	if lastFlushes-firstFlushes < 2 {
		t.Errorf("only %.0f flushes in %s with flush-interval 1s: flushing starved under overload", lastFlushes-firstFlushes, pollUntil)
	}
	if peak > maxRSS {
		t.Errorf("peak RSS %d MiB under overload, want <= %d MiB", peak>>20, maxRSS>>20)
	}
	p.StopOK(t)
}
