package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
