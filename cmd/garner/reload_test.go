package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestSighupReload: SIGHUP applies new filters and the log level, names
// what needs a restart, and a broken file changes nothing.
func TestSighupReload(t *testing.T) {
	g := garnertest.NewGraphite(t)
	cfg := filepath.Join(t.TempDir(), "g.toml")
	write := func(extra string) {
		body := fmt.Sprintf("backends = \"graphite\"\nflush-interval = \"200ms\"\n%s\n[graphite]\naddress = %q\n", extra, g.Addr())
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("filters = \"nonoise\"\n[filter.nonoise]\nmatch-metrics = \"noisy.*\"\ndrop-metric = true\n")
	p := garnertest.StartReady(t, "--config-path", cfg, "--metrics-addr", "127.0.0.1:0", "--shutdown-grace", "0s")
	udp := p.UDPAddr(t)
	garnertest.SendUDP(t, udp, "noisy.a:1|c\nquiet:1|c")
	if !g.WaitFor(3*time.Second, func(l []string) bool { return strings.Contains(strings.Join(l, "\n"), "stats.counters.quiet.count") }) {
		t.Fatal("quiet never arrived")
	}

	// The same file: no key is named.
	p.Signal(syscall.SIGHUP)
	if !p.WaitStderr("SIGHUP: configuration unchanged", 5*time.Second) {
		t.Fatalf("an unchanged reload not reported as such:\n%s", p.Stderr())
	}

	// A broken file: nothing changes, the error is logged.
	if err := os.WriteFile(cfg, []byte("flush-interval = \"soon\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	if !p.WaitStderr("the configuration does not load; nothing changed", 5*time.Second) {
		t.Fatalf("bad reload not reported:\n%s", p.Stderr())
	}

	write("log-level = \"debug\"\nflush-aligned = true\n")
	p.Signal(syscall.SIGHUP)
	if !p.WaitStderr("needs_restart", 5*time.Second) {
		t.Fatalf("reload not reported:\n%s", p.Stderr())
	}
	logs := p.Stderr()
	// Config key names, not Go field names; only what changed.
	// The filter section removed is named once, not key by key.
	if !strings.Contains(logs, `applied="[filter.nonoise filters log-level]" needs_restart="[flush-aligned]"`) {
		t.Errorf("reload log does not name what was applied and what needs a restart:\n%s", logs)
	}
	// The readers pick the new filters up on their next datagram: send until
	// noisy.b comes through.
	deadline := time.Now().Add(10 * time.Second)
	for !g.WaitFor(200*time.Millisecond, func(l []string) bool { return strings.Contains(strings.Join(l, "\n"), "stats.counters.noisy.b.count") }) {
		if time.Now().After(deadline) {
			t.Fatal("the filter removed by SIGHUP still drops noisy.b")
		}
		garnertest.SendUDP(t, udp, "noisy.b:1|c")
	}
	for _, l := range g.Lines() {
		if strings.HasPrefix(l, "stats.counters.noisy.a") {
			t.Fatalf("noisy.a passed the filter before the reload: %s", l)
		}
	}
	p.StopOK(t)
}
