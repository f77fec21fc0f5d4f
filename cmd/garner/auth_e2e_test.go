package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestIngestionToken: an aggregator with an admin token and a separate
// ingestion token (read from a file). A forwarder sending the ingestion
// token delivers every sample; one sending the admin token is refused
// (401, counted) and delivers nothing; the ingestion token does not open
// the admin endpoints.
func TestIngestionToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "ingestion-token")
	if err := os.WriteFile(tokenFile, []byte("forwarders-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := garnertest.NewGraphite(t)
	agg := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\n", g.Addr()),
		"--metrics-addr", "", "--enable-ingestion", "--flush-interval", "1h", "--shutdown-grace", "0s",
		"--admin-token", "admin-only", "--ingestion-token-file", tokenFile)
	aggAddr := agg.AdminAddr(t)

	forwarder := func(token string) *garnertest.Process {
		return garnertest.StartConfig(t, fmt.Sprintf("server-mode = \"forwarder\"\n[http-transport]\napi-endpoint = %q\nflush-interval = \"200ms\"\nbearer-token = %q\n", "http://"+aggAddr, token),
			"--metrics-addr", "127.0.0.1:0", "--shutdown-grace", "0s", "--shutdown-timeout", "2s")
	}
	good, wrong := forwarder("forwarders-only"), forwarder("admin-only")
	garnertest.SendUDP(t, good.UDPAddr(t), "tok.good:5|c\ntok.good:6|c")
	garnertest.SendUDP(t, wrong.UDPAddr(t), "tok.wrong:1|c")
	good.WaitRead(t, 2)
	wrong.WaitRead(t, 1)
	wrongAdmin := wrong.AdminAddr(t)
	garnertest.WaitFor(t, "the refused requests counted", 20*time.Second, func() bool {
		m := garnertest.MustScrape(t, wrongAdmin)
		return m.Sum("garner_forwarder_dropped_batches_total")+m.Sum("garner_forwarder_retries_total") > 0
	})
	if s := garnertest.MustScrape(t, wrongAdmin).Sum("garner_forwarder_sent_series_total"); s != 0 {
		t.Errorf("the forwarder with the admin token delivered %v series", s)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+aggAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer forwarders-only")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics with the ingestion token: %s, want 401", resp.Status)
	}
	req.Header.Set("Authorization", "Bearer admin-only")
	m, err := scrapeWith(req)
	if err != nil {
		t.Fatal(err)
	}
	// The forwarder's refused requests and the /metrics above.
	var refused float64
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, `garner_http_refused_requests_total{reason="unauthorized",server="admin"} `) {
			refused, _ = strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		}
	}
	if refused < 2 {
		t.Errorf("garner_http_refused_requests_total{reason=\"unauthorized\"} = %v on the aggregator, want at least 2", refused)
	}

	wrong.Stop(20 * time.Second)
	good.StopOK(t)
	agg.StopOK(t)
	g.WaitSent(10 * time.Second) // the final flush read to its end
	var total float64
	for _, p := range g.Points() {
		if strings.HasPrefix(p.Name, "stats.counters.tok.good.count") {
			v, _ := strconv.ParseFloat(p.Value, 64)
			total += v
		}
		if strings.Contains(p.Name, "tok.wrong") {
			t.Errorf("the refused forwarder's series reached the backend: %s", p.Name)
		}
	}
	if total != 11 {
		t.Fatalf("tok.good total %v, want 11: %v", total, g.Lines())
	}
}

func scrapeWith(req *http.Request) (string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics answered %s", resp.Status)
	}
	return b.String(), nil
}

// TestTokenFilesSIGHUP: the token files are re-read on SIGHUP. After the
// aggregator's admin and ingestion token files are rewritten and it gets a
// SIGHUP, the old tokens open nothing and the new ones everything they
// did; the forwarder, refused meanwhile, sends the new ingestion token once
// its bearer-token-file is rewritten and it gets a SIGHUP, and delivers
// exactly again.
func TestTokenFilesSIGHUP(t *testing.T) {
	dir := t.TempDir()
	write := func(name, token string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".tmp", []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	adminFile, ingestFile, bearerFile := write("admin", "admin-1"), write("ingest", "ingest-1"), write("bearer", "ingest-1")
	g := garnertest.NewGraphite(t)
	agg := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\n", g.Addr()),
		"--metrics-addr", "", "--enable-ingestion", "--flush-interval", "1h", "--shutdown-grace", "0s",
		"--admin-token-file", adminFile, "--ingestion-token-file", ingestFile)
	aggAddr := agg.AdminAddr(t)
	fwd := garnertest.StartConfig(t, fmt.Sprintf("server-mode = \"forwarder\"\n[http-transport]\napi-endpoint = %q\nflush-interval = \"100ms\"\nbearer-token-file = %q\n", "http://"+aggAddr, bearerFile),
		"--metrics-addr", "127.0.0.1:0", "--shutdown-grace", "0s", "--shutdown-timeout", "2s")
	udp, fwdAdmin := fwd.UDPAddr(t), fwd.AdminAddr(t)
	metrics := func(token string) (string, int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+aggAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		m, err := scrapeWith(req)
		if err != nil && !strings.Contains(err.Error(), "401") {
			t.Fatal(err)
		}
		if err != nil {
			return "", http.StatusUnauthorized
		}
		return m, http.StatusOK
	}
	sent := func() float64 { return garnertest.MustScrape(t, fwdAdmin).Sum("garner_forwarder_sent_series_total") }
	const rotated = "SIGHUP: new tokens in force"

	garnertest.SendUDP(t, udp, strings.TrimSuffix(strings.Repeat("tok.before:1|c\n", 10), "\n"))
	fwd.WaitRead(t, 10)
	garnertest.WaitFor(t, "the forwarder to deliver", 20*time.Second, func() bool { return sent() == 1 })
	if _, code := metrics("admin-1"); code != http.StatusOK {
		t.Fatalf("/metrics with the admin token: %d", code)
	}

	write("admin", "admin-2")
	write("ingest", "ingest-2")
	agg.Signal(syscall.SIGHUP)
	garnertest.WaitFor(t, "the aggregator's new tokens", 10*time.Second, func() bool { return strings.Contains(agg.Stderr(), rotated) })
	if _, code := metrics("admin-1"); code != http.StatusUnauthorized {
		t.Errorf("/metrics with the old admin token: %d, want 401", code)
	}
	refused := func() float64 {
		m, _ := metrics("admin-2")
		const line = `garner_http_refused_requests_total{reason="unauthorized",server="admin"} `
		i := strings.Index(m, line)
		if i < 0 {
			return 0
		}
		rest, _, _ := strings.Cut(m[i+len(line):], "\n")
		v, _ := strconv.ParseFloat(rest, 64)
		return v
	}
	base := refused() // the /metrics refused above
	garnertest.SendUDP(t, udp, "tok.refused:1|c")
	fwd.WaitRead(t, 11)
	garnertest.WaitFor(t, "the old ingestion token refused", 20*time.Second, func() bool { return refused() > base })

	write("bearer", "ingest-2")
	fwd.Signal(syscall.SIGHUP)
	garnertest.WaitFor(t, "the forwarder's new token", 10*time.Second, func() bool { return strings.Contains(fwd.Stderr(), rotated) })
	before := sent()
	garnertest.SendUDP(t, udp, strings.TrimSuffix(strings.Repeat("tok.after:3|c\n", 10), "\n"))
	fwd.WaitRead(t, 21)
	garnertest.WaitFor(t, "the forwarder to deliver with the new token", 20*time.Second, func() bool { return sent() > before })
	fwd.StopOK(t)
	agg.StopOK(t)
	g.WaitSent(10 * time.Second) // the final flush read to its end
	if b, a := counterTotal(g, "tok.before"), counterTotal(g, "tok.after"); b != 10 || a != 30 {
		t.Fatalf("tok.before %v, tok.after %v at the aggregator's backend, want 10 and 30: %v", b, a, g.Lines())
	}
}
