package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// Settings shared by the restart tests. Every line is a counter :1|c in a
// datagram of its own (datagram-size fits one line of a short prefix and
// not two; loadOneLinePerDatagram checks), so lines,
// datagrams and kernel drops are in the same unit and totals are exact.
const (
	restartPrefix = "restart"
	restartRate   = "40k"
	// holdFinal keeps garner's final flush (its influxdb write) open so the
	// test can read garner's counters after its receivers stopped and
	// before it exits.
	holdFinal = 1500 * time.Millisecond
)

func restartLoadArgs(prefix string, d time.Duration) []string {
	return []string{"--rate", restartRate, "--duration", d.String(), "--types", "c", "--series", "500",
		"--prefix", prefix, "--datagram-size", "24"}
}

func loadOneLinePerDatagram(t *testing.T, res loadResult) {
	t.Helper()
	if res.MinLinesPerDgm != 1 || res.MaxLinesPerDgm != 1 {
		t.Fatalf("want one line per datagram, garner-load sent %d..%d", res.MinLinesPerDgm, res.MaxLinesPerDgm)
	}
}

// startRestartGarner runs a plain garner flushing to the Graphite listener
// (the count) and to the influx server (which holds the final flush open).
func startRestartGarner(t *testing.T, cfg, udp string) *garnertest.Process {
	t.Helper()
	return startPlain(t, "--config-path", cfg, "--metrics-addr", udp, "--admin-addr", "127.0.0.1:0",
		"--flush-interval", "500ms", "--shutdown-grace", "300ms", "--shutdown-timeout", "10s", "--handover")
}

// waitCounterTotal waits until the Graphite listener's counter total under
// prefix reaches want (and stays there a moment), and returns what it got.
func waitCounterTotal(g *garnertest.Graphite, prefix string, want float64) float64 {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if counterTotal(g, prefix) >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything beyond want would show now
	return counterTotal(g, prefix)
}

// TestSigtermUnderLoadLosesNothingRead: SIGTERM while garner-load sends at a
// steady rate. garner turns unready, keeps ingesting for shutdown-grace,
// drains its sockets, flushes and exits 0; every line it read (lines read
// minus bad lines minus queue drops, from its own counters read during the
// final flush) is in what the Graphite listener received, exactly.
func TestSigtermUnderLoadLosesNothingRead(t *testing.T) {
	skipLoadUnderShort(t)
	g := garnertest.NewGraphite(t)
	influx := newInfluxServer(t)
	cfg := influxConfig(t, influx, g.Addr(), "")
	p := startRestartGarner(t, cfg, "127.0.0.1:0")
	udp, admin := p.UDPAddr(t), p.AdminAddr(t)

	load := startLoad(t, udp, restartLoadArgs(restartPrefix, 3*time.Second)...)
	p.WaitRead(t, 20000) // mid-run: the load sends 120k lines in 3s
	influx.hold(holdFinal)
	p.Signal(sigterm)
	m := finalScrape(t, p, admin)
	if code := p.Wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	res := loadDone(t, load, 30*time.Second)
	loadOneLinePerDatagram(t, res)

	want := ingested(m)
	got := waitCounterTotal(g, restartPrefix, want)
	t.Logf("sent %d lines; garner read %.0f (bad %.0f, queue drops %.0f, kernel drops %.0f); graphite got %.0f",
		res.Lines, m.Sum("garner_receiver_lines_total"), m.Sum("garner_receiver_bad_lines_total"),
		m.Sum("garner_aggregator_queue_dropped_lines_total"), m.Sum("garner_receiver_kernel_drops_total"), got)
	if want < 20000 {
		t.Fatalf("garner read only %.0f lines: the load was not under way at SIGTERM", want)
	}
	if got != want {
		t.Fatalf("graphite received %.0f increments, garner kept %.0f lines it read: %.0f lost", got, want, want-got)
	}
	if !strings.Contains(p.Stderr(), "still ingesting for the grace period") {
		t.Errorf("no grace period logged:\n%s", p.Stderr())
	}
}

// TestZeroDowntimeHandover is README's "Zero-downtime restart on the same
// port": a second garner binds the same statsd port (SO_REUSEPORT) with its
// own admin address, turns ready, then the old one gets SIGTERM under load.
// The sum of both processes' flushed counters equals the lines both read,
// exactly. What neither read is either counted as a kernel drop or was in
// the old socket's queue when it closed: that loss window is reported.
func TestZeroDowntimeHandover(t *testing.T) {
	skipLoadUnderShort(t)
	const prefix = "handover"
	g := garnertest.NewGraphite(t)
	influx := newInfluxServer(t)
	cfg := influxConfig(t, influx, g.Addr(), "")
	old := startRestartGarner(t, cfg, "127.0.0.1:0")
	udp, adminOld := old.UDPAddr(t), old.AdminAddr(t)
	// Several senders: SO_REUSEPORT steers each flow (source port) to one
	// socket of the group, so one sender would feed one process only.
	load := startLoad(t, udp, append(restartLoadArgs(prefix, 4*time.Second), "--senders", "8")...)
	old.WaitRead(t, 20000)                  // the load sends 160k lines in 4s
	next := startRestartGarner(t, cfg, udp) // the same port: SO_REUSEPORT
	adminNew := next.AdminAddr(t)
	waitReady(t, adminNew, 10*time.Second)
	next.WaitRead(t, 12000) // both receive for a while

	influx.hold(holdFinal)
	old.Signal(sigterm)
	mOld := finalScrape(t, old, adminOld)
	if code := old.Wait(20 * time.Second); code != 0 {
		t.Fatalf("old garner: exit %d after SIGTERM", code)
	}
	influx.hold(0)
	// The final flush leaves idle counters out; after the load only this
	// gauge (one line read, no counter; the old garner is gone, so the new
	// one reads it) makes the new garner's final flush write to influx,
	// which holds it open for finalScrape.
	garnertest.SendUDP(t, udp, prefix+"_keep:1|g")
	res := loadDone(t, load, 30*time.Second)
	loadOneLinePerDatagram(t, res)

	influx.hold(holdFinal)
	next.Signal(sigterm)
	mNew := finalScrape(t, next, adminNew)
	if code := next.Wait(20 * time.Second); code != 0 {
		t.Fatalf("new garner: exit %d after SIGTERM", code)
	}

	want := ingested(mOld) + ingested(mNew) - 1 // the gauge
	got := waitCounterTotal(g, prefix, want)
	readOld, readNew := mOld.Sum("garner_receiver_lines_total"), mNew.Sum("garner_receiver_lines_total")
	drops := mOld.Sum("garner_receiver_kernel_drops_total") + mNew.Sum("garner_receiver_kernel_drops_total")
	window := float64(res.Lines+1) - readOld - readNew - drops // +1: the gauge
	t.Logf("sent %d lines (one per datagram, %.0f/s, %d send errors); old garner read %.0f, new read %.0f; kernel drops counted %.0f; "+
		"loss window (in neither process nor counted: queued on the old socket when it closed) %.0f datagrams = %.3f%% of sent; graphite got %.0f",
		res.Lines, res.Rate, res.SendErrors, readOld, readNew, drops, window, 100*window/float64(res.Lines), got)
	if readOld < 10000 || readNew < 10000 {
		t.Fatalf("both processes should have read a share of the load: old %.0f, new %.0f", readOld, readNew)
	}
	if got != want {
		t.Fatalf("graphite received %.0f increments, the two garners kept %.0f lines they read: %.0f lost", got, want, want-got)
	}
	if window < 0 || window > float64(res.Lines)/100 {
		t.Errorf("loss window %.0f of %d datagrams: want between 0 and 1%%", window, res.Lines)
	}
}
