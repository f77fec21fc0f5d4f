package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// metricValue reads one sample from garner's /metrics (sum over label sets
// matching the prefix).
func metricValue(t *testing.T, admin, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// TestGraphiteHangsThenRecovers: carbon accepts connections and never reads.
// Ingestion goes on, memory stays bounded (max_buffer_size), the loss is
// counted, the admin server answers fast, and once carbon reads again the
// data flows within a couple of flushes.
func TestGraphiteHangsThenRecovers(t *testing.T) {
	hang, err := net.Listen("tcp", "127.0.0.1:0")
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

	udp := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "g.toml")
	_ = os.WriteFile(cfg, []byte(fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\nwrite_timeout = \"300ms\"\nmax_buffer_size = \"256KiB\"\n", addr)), 0o644)
	p := garnertest.Start(t, "--config-path", cfg, "--metrics-addr", udp, "--admin-addr", admin,
		"--flush-interval", "200ms", "--shutdown-grace", "0s")
	if !p.WaitStderr("garner started", 10*time.Second) {
		t.Fatal(p.Stderr())
	}
	// 3s of traffic with many series, so every flush is large.
	c, _ := net.Dial("udp", udp)
	defer c.Close()
	deadline := time.Now().Add(3 * time.Second)
	var slowest time.Duration
	for i := 0; time.Now().Before(deadline); i++ {
		var b strings.Builder
		for j := 0; j < 40; j++ {
			fmt.Fprintf(&b, "hang.series.%d:1|c\n", (i*40+j)%5000)
		}
		_, _ = c.Write([]byte(b.String()))
		if i%100 == 0 {
			start := time.Now()
			resp, err := http.Get("http://" + admin + "/health/ready")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			slowest = max(slowest, time.Since(start))
		}
		time.Sleep(time.Millisecond)
	}
	if slowest > 100*time.Millisecond {
		t.Errorf("admin server took %s to answer while the backend hung", slowest)
	}
	if lines := metricValue(t, admin, "garner_receiver_lines_total"); lines < 10000 {
		t.Errorf("ingestion stalled while the backend hung: %v lines", lines)
	}
	if d := metricValue(t, admin, "garner_graphite_dropped_flushes_total") + metricValue(t, admin, "garner_backend_dropped_flushes_total"); d == 0 {
		t.Errorf("nothing counted as dropped while carbon hung")
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
	for i := 0; i < 50; i++ {
		if g, err = garnertest.ListenGraphite(addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	garnertest.SendUDP(t, udp, "after.recovery:7|c")
	if !g.WaitFor(3*time.Second, func(lines []string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, "stats.counters.after.recovery.count;host=127.0.0.1 7 ") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no delivery after carbon recovered; got %d lines", len(g.Lines()))
	}
	if code := p.Stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
