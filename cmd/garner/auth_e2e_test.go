package main_test

import (
	"fmt"
	"net/http"
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
	tokenFile := writeToken(t, t.TempDir(), "ingestion-token", "forwarders-only")
	g := garnertest.NewGraphite(t)
	agg := startIngestAggregator(t, g, "--admin-token", "admin-only", "--ingestion-token-file", tokenFile)
	aggAddr := agg.AdminAddr(t)

	forwarder := func(token string) *garnertest.Process {
		return startForwarder(t, "http://"+aggAddr, fmt.Sprintf("flush-interval = \"200ms\"\nbearer-token = %q\n", token), "--shutdown-timeout", "2s")
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

	resp, err := bearerClient("forwarders-only").Get("http://" + aggAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics with the ingestion token: %s, want 401", resp.Status)
	}
	m, err := garnertest.Scrape(bearerClient("admin-only"), aggAddr)
	if err != nil {
		t.Fatal(err)
	}
	// The forwarder's refused requests and the /metrics above.
	if refused := refusedUnauthorized(m); refused < 2 {
		t.Errorf("garner_http_refused_requests_total{reason=\"unauthorized\"} = %v on the aggregator, want at least 2", refused)
	}

	wrong.Stop(20 * time.Second)
	good.StopOK(t)
	agg.StopOK(t)
	g.WaitSent(10 * time.Second) // the final flush read to its end
	for _, p := range g.Points() {
		if strings.Contains(p.Name, "tok.wrong") {
			t.Errorf("the refused forwarder's series reached the backend: %s", p.Name)
		}
	}
	if total := counterTotal(g, "tok.good"); total != 11 {
		t.Fatalf("tok.good total %v, want 11: %v", total, g.Lines())
	}
}

// bearerClient is an HTTP client (10s bound) that sends token as its
// bearer token on every request.
func bearerClient(token string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: bearerTransport(token)}
}

type bearerTransport string

func (token bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(token))
	return http.DefaultTransport.RoundTrip(r)
}

// refusedUnauthorized is how many requests the admin server of the scrape m
// refused for a missing or wrong token.
func refusedUnauthorized(m garnertest.Metrics) float64 {
	return m.Sum("garner_http_refused_requests_total", `reason="unauthorized"`, `server="admin"`)
}

// TestTokenFilesSIGHUP: the token files are re-read on SIGHUP. After the
// aggregator's admin and ingestion token files are rewritten and it gets a
// SIGHUP, the old tokens open nothing and the new ones everything they
// did; the forwarder, refused meanwhile, sends the new ingestion token once
// its bearer-token-file is rewritten and it gets a SIGHUP, and delivers
// exactly again.
func TestTokenFilesSIGHUP(t *testing.T) {
	dir := t.TempDir()
	write := func(name, token string) string { return writeToken(t, dir, name, token) }
	adminFile, ingestFile, bearerFile := write("admin", "admin-1"), write("ingest", "ingest-1"), write("bearer", "ingest-1")
	g := garnertest.NewGraphite(t)
	agg := startIngestAggregator(t, g, "--admin-token-file", adminFile, "--ingestion-token-file", ingestFile)
	aggAddr := agg.AdminAddr(t)
	fwd := startForwarder(t, "http://"+aggAddr, fmt.Sprintf("flush-interval = \"100ms\"\nbearer-token-file = %q\n", bearerFile), "--shutdown-timeout", "2s")
	udp, fwdAdmin := fwd.UDPAddr(t), fwd.AdminAddr(t)
	metrics := func(token string) (garnertest.Metrics, int) {
		t.Helper()
		m, err := garnertest.Scrape(bearerClient(token), aggAddr)
		if err != nil && !strings.Contains(err.Error(), "401") {
			t.Fatal(err)
		}
		if err != nil {
			return nil, http.StatusUnauthorized
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
		return refusedUnauthorized(m)
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
