package main_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// tlsFiles are the certificates of a TLS test, made at test time: a CA, a
// server and a client pair from it, and a client pair from another CA.
type tlsFiles struct {
	dir, caFile           string
	server, client, outCA garnertest.Pair
}

func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := garnertest.NewCA(t, "garner e2e CA")
	day := time.Now().Add(24 * time.Hour)
	return tlsFiles{
		dir:    dir,
		caFile: ca.WriteCA(t, dir, "ca.pem"),
		server: ca.WritePair(t, dir, "aggregator", day),
		client: ca.WritePair(t, dir, "forwarder", day),
		outCA:  garnertest.NewCA(t, "another CA").WritePair(t, dir, "stranger", day),
	}
}

// httpsClient is an HTTP client trusting f's CA that presents pair (none
// when pair is zero).
func (f tlsFiles) httpsClient(t *testing.T, pair garnertest.Pair) *http.Client {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: f.caFile, CertFile: pair.CertFile, KeyFile: pair.KeyFile}, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// TestAdminHTTPS: admin-addr over mutual TLS. A client with a certificate
// from the client CA is served; one without, or from another CA, is refused
// at the handshake; plain HTTP gets 400 and no data.
func TestAdminHTTPS(t *testing.T) {
	f := newTLSFiles(t)
	p := garnertest.StartConfig(t, "backends = \"null\"\nmetrics-addr = \"\"\n",
		"--admin-tls-cert-file", f.server.CertFile, "--admin-tls-key-file", f.server.KeyFile,
		"--admin-tls-client-ca-file", f.caFile)
	addr := p.AdminAddr(t)
	base := "https://" + addr

	m, err := garnertest.Scrape(f.httpsClient(t, f.client), base)
	if err != nil {
		t.Fatalf("scrape over mutual TLS: %v", err)
	}
	if m.Sum("garner_build_info") != 1 {
		t.Fatalf("garner_build_info not served over TLS")
	}
	for name, c := range map[string]*http.Client{
		"no client certificate":  f.httpsClient(t, garnertest.Pair{}),
		"client from another CA": f.httpsClient(t, f.outCA),
	} {
		if resp, err := c.Get(base + "/health/live"); err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %s, want a refused handshake", name, resp.Status)
		}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v (want net/http's 400)", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "garner_build_info") {
		t.Fatalf("plain HTTP to the TLS port: %s %q; want 400 and no metrics", resp.Status, body)
	}
	p.StopOK(t)
}
