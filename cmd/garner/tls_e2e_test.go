package main_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// tlsFiles are the certificates of a TLS test, made at test time: a CA, a
// server and a client pair from it, and a client pair from another CA.
type tlsFiles struct {
	ca                    *garnertest.CA
	dir, caFile           string
	server, client, outCA garnertest.Pair
}

func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := garnertest.NewCA(t, "garner e2e CA")
	day := time.Now().Add(24 * time.Hour)
	return tlsFiles{
		ca:     ca,
		dir:    dir,
		caFile: ca.WriteCA(t, dir, "ca.pem"),
		server: ca.WritePair(t, dir, "aggregator", day),
		client: ca.WritePair(t, dir, "forwarder", day),
		outCA:  garnertest.NewCA(t, "another CA").WritePair(t, dir, "stranger", day),
	}
}

// startAggregator runs an aggregator that writes to g and takes ingestion
// on its admin server over HTTPS with server's pair, from clients that
// present a pair of f's CA only; it flushes at shutdown only.
func (f tlsFiles) startAggregator(t *testing.T, g *garnertest.Graphite, server garnertest.Pair) *garnertest.Process {
	t.Helper()
	return startIngestAggregator(t, g, "--admin-tls-cert-file", server.CertFile, "--admin-tls-key-file", server.KeyFile,
		"--admin-tls-client-ca-file", f.caFile)
}

// httpsClient is an HTTP client trusting f's CA that presents pair (none
// when pair is zero).
func (f tlsFiles) httpsClient(t *testing.T, pair garnertest.Pair) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: f.clientConfig(t, pair)}}
}

// clientConfig is the TLS client side trusting f's CA that presents pair
// (none when pair is zero).
func (f tlsFiles) clientConfig(t *testing.T, pair garnertest.Pair) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: f.caFile, CertFile: pair.CertFile, KeyFile: pair.KeyFile}, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// servedSerial makes a new connection to base (a new handshake) as f's
// client and returns the serial of the certificate the server presented.
func (f tlsFiles) servedSerial(t *testing.T, base string) string {
	t.Helper()
	resp, err := f.httpsClient(t, f.client).Get(base + "/health/live")
	if err != nil {
		t.Fatalf("new handshake with %s: %v", base, err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
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
	m, err = garnertest.Scrape(f.httpsClient(t, f.client), base)
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{tlsconf.ReasonNoClientCert, tlsconf.ReasonBadCert, tlsconf.ReasonNotTLS} {
		if n := m.Sum("garner_tls_handshake_errors_total", `listener="admin"`, `reason="`+reason+`"`); n != 1 {
			t.Errorf("garner_tls_handshake_errors_total{reason=%q} = %v, want 1", reason, n)
		}
	}
	p.StopOK(t)
}

// TestForwardMutualTLS: forwarders → aggregator over mutual TLS with real
// binaries. The forwarder with a client certificate from the aggregator's
// client CA delivers every sample (exact totals at the aggregator's
// backend); one without a certificate, one with a certificate from another
// CA and one with an expired certificate deliver nothing: their requests
// fail at the handshake, each counts why in
// garner_tls_client_handshake_errors_total and logs it, and the aggregator
// counts and logs the refused handshakes.
func TestForwardMutualTLS(t *testing.T) {
	f := newTLSFiles(t)
	g := garnertest.NewGraphite(t)
	agg := f.startAggregator(t, g, f.server)
	aggAddr := agg.AdminAddr(t)

	forwarder := func(pair garnertest.Pair) *garnertest.Process {
		t.Helper()
		toml := fmt.Sprintf("flush-interval = \"200ms\"\nprobe-interval = \"200ms\"\ntls-ca-file = %q\n", f.caFile)
		if pair.CertFile != "" {
			toml += fmt.Sprintf("tls-cert-file = %q\ntls-key-file = %q\n", pair.CertFile, pair.KeyFile)
		}
		return startForwarder(t, "https://"+aggAddr, toml, "--shutdown-timeout", "2s")
	}
	good := forwarder(f.client)
	noCert := forwarder(garnertest.Pair{})
	otherCA := forwarder(f.outCA)
	expired := forwarder(f.ca.WritePair(t, f.dir, "expired", time.Now().Add(-time.Minute)))

	const datagrams, perDatagram = 50, 20
	send := func(p *garnertest.Process, line string) {
		payload := strings.TrimSuffix(strings.Repeat(line+"\n", perDatagram), "\n")
		payloads := make([]string, datagrams)
		for i := range payloads {
			payloads[i] = payload
		}
		garnertest.SendUDP(t, p.UDPAddr(t), payloads...)
		p.WaitRead(t, datagrams*perDatagram)
	}
	send(good, "tls.good:1.5|c")
	send(noCert, "tls.nocert:1|c")
	send(otherCA, "tls.otherca:1|c")
	send(expired, "tls.expired:1|c")

	for _, r := range []struct {
		name, reason string
		p            *garnertest.Process
	}{
		{"no client certificate", tlsconf.ReasonClientNoCert, noCert},
		{"client from another CA", tlsconf.ReasonClientCertRefused, otherCA},
		{"expired client", tlsconf.ReasonClientCertExpired, expired},
	} {
		admin := r.p.AdminAddr(t)
		garnertest.WaitFor(t, r.name+": failed handshakes counted", 20*time.Second, func() bool {
			m := garnertest.MustScrape(t, admin)
			return m.Sum("garner_forwarder_retries_total") > 0 &&
				m.Sum("garner_tls_client_handshake_errors_total", `client="forwarder"`, `reason="`+r.reason+`"`) > 0
		})
		m := garnertest.MustScrape(t, admin)
		if sent := m.Sum("garner_forwarder_sent_series_total"); sent != 0 {
			t.Errorf("%s: %v series accepted by the aggregator, want 0", r.name, sent)
		}
		if all, this := m.Sum("garner_tls_client_handshake_errors_total"), m.Sum("garner_tls_client_handshake_errors_total", `reason="`+r.reason+`"`); all != this {
			t.Errorf("%s: %v failed handshakes, %v of them %s; want all %s", r.name, all, this, r.reason, r.reason)
		}
		if !r.p.WaitStderr("tls handshake with the server failed", 10*time.Second) || !strings.Contains(r.p.Stderr(), "reason="+r.reason) {
			t.Errorf("%s: the failed handshake was not logged with reason %s", r.name, r.reason)
		}
	}
	if n := garnertest.MustScrape(t, good.AdminAddr(t)).Sum("garner_tls_client_handshake_errors_total"); n != 0 {
		t.Errorf("the forwarder with a good certificate counted %v failed handshakes", n)
	}
	if !agg.WaitStderr("tls handshake with an http client failed", 10*time.Second) {
		t.Error("the aggregator did not log the refused handshakes")
	}
	aggMetrics, err := garnertest.Scrape(f.httpsClient(t, f.client), "https://"+aggAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{tlsconf.ReasonNoClientCert, tlsconf.ReasonBadCert, tlsconf.ReasonExpiredCert} {
		if aggMetrics.Sum("garner_tls_handshake_errors_total", `listener="admin"`, `reason="`+reason+`"`) == 0 {
			t.Errorf("the aggregator counted no refused handshake with reason %s", reason)
		}
	}
	noCert.Stop(20 * time.Second)
	otherCA.Stop(20 * time.Second)
	expired.Stop(20 * time.Second)
	good.StopOK(t)               // drains: everything it aggregated is delivered
	agg.StopOK(t)                // final flush
	g.WaitSent(10 * time.Second) // the final flush read to its end

	for _, p := range g.Points() {
		if strings.Contains(p.Name, "tls.nocert") || strings.Contains(p.Name, "tls.otherca") || strings.Contains(p.Name, "tls.expired") {
			t.Errorf("a refused forwarder's series reached the backend: %s %s", p.Name, p.Value)
		}
	}
	if total, want := counterTotal(g, "tls.good"), 1.5*datagrams*perDatagram; total != want {
		t.Fatalf("tls.good total at the aggregator's backend = %v, want %v; points: %v", total, want, g.Lines())
	}
}

// TestTCPListenerTLS: the TCP statsd listener over mutual TLS. A client
// with a certificate from the client CA is read (exact totals); plaintext, no
// certificate, a certificate from another CA and an expired one are each
// refused at the handshake and counted by reason, and the good client, open
// meanwhile, is not affected.
func TestTCPListenerTLS(t *testing.T) {
	f := newTLSFiles(t)
	old := f.ca.WritePair(t, f.dir, "expired", time.Now().Add(-time.Minute))
	g := garnertest.NewGraphite(t)
	p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\n", g.Addr()),
		"--metrics-addr", "", "--tcp-metrics-addr", "127.0.0.1:0", "--flush-interval", "1h", "--shutdown-grace", "0s",
		"--tcp-tls-cert-file", f.server.CertFile, "--tcp-tls-key-file", f.server.KeyFile, "--tcp-tls-client-ca-file", f.caFile)
	addr := p.TCPAddr(t)
	admin := p.AdminAddr(t)

	dialTLS := func(pair garnertest.Pair) (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, f.clientConfig(t, pair))
	}
	good, err := dialTLS(f.client)
	if err != nil {
		t.Fatalf("client from the CA: %v", err)
	}
	const lines = 500
	if _, err := good.Write([]byte(strings.Repeat("tcp.good:2|c\n", lines/2))); err != nil {
		t.Fatal(err)
	}

	// refused reads until the server closes the connection: it must, and
	// without taking a line.
	refused := func(name string, c net.Conn) {
		t.Helper()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("tcp.refused:1|c\n"))
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: still connected after 10s", name)
		}
	}
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	refused("plaintext", plain)
	for name, pair := range map[string]garnertest.Pair{"no certificate": {}, "another CA": f.outCA, "expired": old} {
		c, err := dialTLS(pair)
		if err != nil {
			continue // TLS 1.2 refuses during Dial; TLS 1.3 on the first read
		}
		refused(name, c)
	}
	want := map[string]float64{
		tlsconf.ReasonNotTLS: 1, tlsconf.ReasonNoClientCert: 1, tlsconf.ReasonBadCert: 1, tlsconf.ReasonExpiredCert: 1,
	}
	garnertest.WaitFor(t, "refused handshakes counted by reason", 20*time.Second, func() bool {
		m := garnertest.MustScrape(t, admin)
		for reason, n := range want {
			if m.Sum("garner_tls_handshake_errors_total", `listener="tcp"`, `reason="`+reason+`"`) != n {
				return false
			}
		}
		return m.Sum("garner_tls_handshake_errors_total") == 4
	})

	// The good client, open all along, goes on.
	if _, err := good.Write([]byte(strings.Repeat("tcp.good:2|c\n", lines/2))); err != nil {
		t.Fatal(err)
	}
	good.Close()
	p.WaitRead(t, lines)
	p.StopOK(t)
	got := values(g)
	var found bool
	for name, v := range got {
		if strings.HasPrefix(name, "stats.counters.tcp.good.count") {
			found = true
			if v != strconv.Itoa(2*lines) {
				t.Errorf("%s = %s, want %d", name, v, 2*lines)
			}
		}
		if strings.Contains(name, "tcp.refused") {
			t.Errorf("a refused client's line was read: %s", name)
		}
	}
	if !found {
		t.Fatalf("tcp.good not flushed: %v", g.Lines())
	}
	if !strings.Contains(p.Stderr(), "tls handshake with a tcp statsd client failed") {
		t.Error("refused handshakes not logged")
	}
}

// TestTLSRotationUnderTraffic: the aggregator's server pair and the
// forwarder's client pair are rewritten in place while samples flow, and
// later both get a SIGHUP (every file re-read, the forwarder's connections
// replaced); new handshakes get the new certificate, no request fails and
// the totals are exact.
func TestTLSRotationUnderTraffic(t *testing.T) {
	f := newTLSFiles(t)
	g := garnertest.NewGraphite(t)
	agg := f.startAggregator(t, g, f.server)
	aggAddr := agg.AdminAddr(t)
	fwd := startForwarder(t, "https://"+aggAddr, fmt.Sprintf("flush-interval = \"100ms\"\ntls-ca-file = %q\ntls-cert-file = %q\ntls-key-file = %q\n",
		f.caFile, f.client.CertFile, f.client.KeyFile))
	udp := fwd.UDPAddr(t)
	fwdAdmin := fwd.AdminAddr(t)

	served := func() string { return f.servedSerial(t, "https://"+aggAddr) }
	if s := served(); s != f.server.Cert.SerialNumber.String() {
		t.Fatalf("served serial %s, want %s", s, f.server.Cert.SerialNumber)
	}

	const rounds, perRound = 20, 50
	var rotated garnertest.Pair
	sent := 0
	for i := range rounds {
		switch i {
		case rounds / 2:
			rotated = f.ca.WritePair(t, f.dir, "aggregator", time.Now().Add(48*time.Hour))
			f.ca.WritePair(t, f.dir, "forwarder", time.Now().Add(48*time.Hour))
		case 3 * rounds / 4:
			agg.Signal(syscall.SIGHUP)
			fwd.Signal(syscall.SIGHUP)
		}
		garnertest.SendUDP(t, udp, strings.TrimSuffix(strings.Repeat("rot.count:1|c\n", perRound), "\n"))
		sent += perRound
		fwd.WaitRead(t, sent)
		garnertest.WaitFor(t, "the forwarder to send", 10*time.Second, func() bool {
			return garnertest.MustScrape(t, fwdAdmin).Sum("garner_forwarder_batches_total") > float64(i)
		})
	}
	if s := served(); s != rotated.Cert.SerialNumber.String() {
		t.Fatalf("after rotation the aggregator serves serial %s, want the new %s", s, rotated.Cert.SerialNumber)
	}
	if !agg.WaitStderr("tls: loaded the changed certificate and key", 10*time.Second) {
		t.Error("the aggregator did not log the rotation")
	}
	for name, p := range map[string]*garnertest.Process{"aggregator": agg, "forwarder": fwd} {
		if !p.WaitStderr("SIGHUP: tls: re-read the certificate and key", 10*time.Second) {
			t.Errorf("the %s did not log the SIGHUP re-read", name)
		}
	}
	m := garnertest.MustScrape(t, fwdAdmin)
	if r, d, h := m.Sum("garner_forwarder_retries_total"), m.Sum("garner_forwarder_dropped_batches_total"), m.Sum("garner_tls_client_handshake_errors_total"); r != 0 || d != 0 || h != 0 {
		t.Errorf("forwarder retries %v, dropped batches %v, failed handshakes %v during the rotation; want 0, 0, 0", r, d, h)
	}
	fwd.StopOK(t)
	agg.StopOK(t)
	g.WaitSent(10 * time.Second) // the final flush read to its end
	if total := counterTotal(g, "rot.count"); total != float64(sent) {
		t.Fatalf("rot.count total %v at the aggregator's backend, want %d", total, sent)
	}
}

// TestHTTPServerTLS: an [http.<name>] server over mutual TLS, next to a
// plain admin server.
func TestHTTPServerTLS(t *testing.T) {
	f := newTLSFiles(t)
	addr := garnertest.FreeAddr(t)
	p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"null\"\nmetrics-addr = \"\"\nhttp-servers = \"ingest\"\n[http.ingest]\naddress = %q\nenable-ingestion = true\ntls-cert-file = %q\ntls-key-file = %q\ntls-client-ca-file = %q\n",
		addr, f.server.CertFile, f.server.KeyFile, f.caFile))
	p.LoggedAddr(t, "serving http", "http_server=ingest", "tls=true")
	resp, err := f.httpsClient(t, f.client).Get("https://" + addr + "/healthcheck")
	if err != nil {
		t.Fatalf("mutual TLS to [http.ingest]: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthcheck over TLS: %s", resp.Status)
	}
	if resp, err := f.httpsClient(t, garnertest.Pair{}).Get("https://" + addr + "/healthcheck"); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate: got %s, want a refused handshake", resp.Status)
	}
	garnertest.MustScrape(t, p.AdminAddr(t)) // the admin server stays plain HTTP
	p.StopOK(t)
}

// TestBackendClientTLS: the influxdb backend writes to an HTTPS server that
// requires a client certificate from the test CA: with the [influxdb] tls-*
// keys every line arrives; without a client certificate nothing does and
// the failed requests are counted.
func TestBackendClientTLS(t *testing.T) {
	f := newTLSFiles(t)
	srvTLS, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: f.server.CertFile, KeyFile: f.server.KeyFile, ClientCAFile: f.caFile}, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	influx := newInfluxServerTLS(t, srvTLS)

	run := func(metric, flush, certLines string) *garnertest.Process {
		t.Helper()
		toml := fmt.Sprintf("backends = \"influxdb\"\n[influxdb]\napi-endpoint = %q\napi-version = 1\ndatabase = \"db\"\ncompress-payload = false\nmax-request-elapsed-time = \"1s\"\ntls-ca-file = %q\n%s",
			influx.srv.URL, f.caFile, certLines)
		p := garnertest.StartConfig(t, toml, "--metrics-addr", "127.0.0.1:0", "--flush-interval", flush, "--shutdown-grace", "0s")
		garnertest.SendUDP(t, p.UDPAddr(t), metric+":3|c\n"+metric+":4|c")
		p.WaitRead(t, 2)
		return p
	}
	good := run("tls_good", "1h", fmt.Sprintf("tls-cert-file = %q\ntls-key-file = %q\n", f.client.CertFile, f.client.KeyFile))
	good.StopOK(t)
	bad := run("tls_nocert", "200ms", "")
	badAdmin := bad.AdminAddr(t)
	garnertest.WaitFor(t, "the refused writes counted", 20*time.Second, func() bool {
		return garnertest.MustScrape(t, badAdmin).Sum("garner_influxdb_requests_total", `result="error"`) > 0
	})
	if ok := garnertest.MustScrape(t, badAdmin).Sum("garner_influxdb_requests_total", `result="2xx"`); ok != 0 {
		t.Errorf("%v writes without a client certificate succeeded", ok)
	}
	garnertest.WaitFor(t, "the refused handshakes counted by reason", 10*time.Second, func() bool {
		return garnertest.MustScrape(t, badAdmin).Sum("garner_tls_client_handshake_errors_total", `client="influxdb"`, `reason="`+tlsconf.ReasonClientNoCert+`"`) > 0
	})
	bad.Stop(20 * time.Second)

	var body strings.Builder
	for _, w := range influx.accepted() {
		body.WriteString(strings.Join(w.lines, "\n") + "\n")
	}
	got := body.String()
	if !strings.Contains(got, "tls_good") || !strings.Contains(got, "=7") {
		t.Errorf("the backend with a client certificate did not deliver tls_good=7: %q", got)
	}
	if strings.Contains(got, "tls_nocert") {
		t.Errorf("the backend without a client certificate got through: %q", got)
	}
	if !strings.Contains(bad.Stderr(), "certificate") {
		t.Errorf("the refused writes were not logged:\n%s", bad.Stderr())
	}
}

// TestCertificateExpiry: the expiry of each certificate garner serves is a
// self-metric, and one that expires within 7 days makes its health
// dependency fail and {base}/dependencies say degraded.
func TestCertificateExpiry(t *testing.T) {
	f := newTLSFiles(t)
	month := f.ca.WritePair(t, f.dir, "admin", time.Now().Add(30*24*time.Hour))
	soon := f.ca.WritePair(t, f.dir, "tcp", time.Now().Add(72*time.Hour))
	p := garnertest.StartConfig(t, "backends = \"null\"\nmetrics-addr = \"\"\n",
		"--tcp-metrics-addr", "127.0.0.1:0", "--dependency-check-interval", "200ms", "--dependency-check-timeout", "200ms",
		"--admin-tls-cert-file", month.CertFile, "--admin-tls-key-file", month.KeyFile,
		"--tcp-tls-cert-file", soon.CertFile, "--tcp-tls-key-file", soon.KeyFile)
	base := "https://" + p.AdminAddr(t)
	c := f.httpsClient(t, garnertest.Pair{})

	m, err := garnertest.Scrape(c, base)
	if err != nil {
		t.Fatal(err)
	}
	for key, pair := range map[string]garnertest.Pair{"admin-tls-cert-file": month, "tcp-tls-cert-file": soon} {
		if got := m.Sum("garner_tls_certificate_expiry_timestamp_seconds", `key="`+key+`"`); got != float64(pair.Cert.NotAfter.Unix()) {
			t.Errorf("expiry of %s = %v, want %d", key, got, pair.Cert.NotAfter.Unix())
		}
	}
	var body struct {
		Status       string `json:"status"`
		Dependencies map[string]struct {
			Status    string `json:"status"`
			LastError string `json:"last_error"`
		} `json:"dependencies"`
	}
	garnertest.WaitFor(t, "both certificates probed", 20*time.Second, func() bool {
		resp, err := c.Get(base + "/health/dependencies")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Dependencies["tls tcp-tls-cert-file"].Status != "unknown" && body.Dependencies["tls admin-tls-cert-file"].Status != "unknown" &&
			body.Dependencies["tls tcp-tls-cert-file"].Status != ""
	})
	if body.Status != "degraded" || body.Dependencies["tls admin-tls-cert-file"].Status != "up" ||
		body.Dependencies["tls tcp-tls-cert-file"].Status != "down" || !strings.Contains(body.Dependencies["tls tcp-tls-cert-file"].LastError, "expires") {
		t.Fatalf("dependencies = %+v; want degraded, the admin certificate up, the tcp one down as expiring", body)
	}
	p.StopOK(t)
}

// TestTLSReloadOnSIGHUP: a pair rewritten with the same sizes and
// modification times (which no handshake notices) is served after a SIGHUP,
// which logs it and moves the expiry metric; a broken pair on the next
// SIGHUP is logged and the previous one stays in use.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	f := newTLSFiles(t)
	p := garnertest.StartConfig(t, "backends = \"null\"\nmetrics-addr = \"\"\n",
		"--dependency-check-interval", "200ms", "--dependency-check-timeout", "200ms",
		"--admin-tls-cert-file", f.server.CertFile, "--admin-tls-key-file", f.server.KeyFile,
		"--admin-tls-client-ca-file", f.caFile)
	base := "https://" + p.AdminAddr(t)
	served := func() string { return f.servedSerial(t, base) }
	if s := served(); s != f.server.Cert.SerialNumber.String() {
		t.Fatalf("served serial %s, want %s", s, f.server.Cert.SerialNumber)
	}
	next := f.ca.RewritePair(t, f.server, time.Now().Add(48*time.Hour))
	if s := served(); s != f.server.Cert.SerialNumber.String() {
		t.Fatalf("the unnoticed rewrite was served before any SIGHUP (serial %s): the test proves nothing", s)
	}

	const loaded, kept = "SIGHUP: tls: re-read the certificate and key", "SIGHUP: tls: cannot load the file; still using the previous one"
	p.Signal(syscall.SIGHUP)
	garnertest.WaitFor(t, "the SIGHUP re-read logged", 10*time.Second, func() bool { return strings.Contains(p.Stderr(), loaded) })
	if s := served(); s != next.Cert.SerialNumber.String() {
		t.Fatalf("after SIGHUP the admin server serves serial %s, want the rewritten %s", s, next.Cert.SerialNumber)
	}
	garnertest.WaitFor(t, "the expiry metric to follow", 10*time.Second, func() bool {
		m, err := garnertest.Scrape(f.httpsClient(t, f.client), base)
		return err == nil && m.Sum("garner_tls_certificate_expiry_timestamp_seconds", `key="admin-tls-cert-file"`) == float64(next.Cert.NotAfter.Unix())
	})

	if err := os.WriteFile(f.server.KeyFile, []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	garnertest.WaitFor(t, "the broken pair logged", 10*time.Second, func() bool { return strings.Contains(p.Stderr(), kept) })
	if s := served(); s != next.Cert.SerialNumber.String() {
		t.Fatalf("after a SIGHUP with a broken key the admin server serves serial %s, want still %s", s, next.Cert.SerialNumber)
	}
	if n := strings.Count(p.Stderr(), loaded); n != 1 {
		t.Errorf("%q logged %d times, want once (the CA bundle is logged apart)", loaded, n)
	}
	p.StopOK(t)
}

// TestForwarderCAFileRotation: aggregators move to a new server CA. A
// forwarder whose tls-ca-file does not hold it delivers nothing and counts
// bad_cert; once the file is rewritten with both CAs (no restart, no
// SIGHUP) the forwarder's new connections trust it and what it is sent from
// then on arrives exactly.
func TestForwarderCAFileRotation(t *testing.T) {
	f := newTLSFiles(t)
	newCA := garnertest.NewCA(t, "new server CA")
	srv := newCA.WritePair(t, f.dir, "aggregator-new", time.Now().Add(24*time.Hour))
	g := garnertest.NewGraphite(t)
	agg := f.startAggregator(t, g, srv)
	bundle := f.ca.WriteCA(t, t.TempDir(), "servers.pem")
	fwd := startForwarder(t, "https://"+agg.AdminAddr(t), fmt.Sprintf("flush-interval = \"100ms\"\nprobe-interval = \"200ms\"\ntls-ca-file = %q\ntls-cert-file = %q\ntls-key-file = %q\n",
		bundle, f.client.CertFile, f.client.KeyFile))
	udp, fwdAdmin := fwd.UDPAddr(t), fwd.AdminAddr(t)

	garnertest.SendUDP(t, udp, "ca.before:1|c")
	fwd.WaitRead(t, 1)
	garnertest.WaitFor(t, "the untrusted aggregator counted", 20*time.Second, func() bool {
		return garnertest.MustScrape(t, fwdAdmin).Sum("garner_tls_client_handshake_errors_total", `client="forwarder"`, `reason="`+tlsconf.ReasonServerBad+`"`) > 0
	})

	old, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	added, err := os.ReadFile(newCA.WriteCA(t, t.TempDir(), "new.pem"))
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, bundle, append(old, added...))
	garnertest.WaitFor(t, "the forwarder to reach the aggregator", 20*time.Second, func() bool {
		return garnertest.MustScrape(t, fwdAdmin).Sum("garner_forwarder_sent_series_total") > 0 ||
			strings.Contains(fwd.Stderr(), "back in the choice")
	})
	const n = 400
	garnertest.SendUDP(t, udp, strings.TrimSuffix(strings.Repeat("ca.after:2|c\n", n), "\n"))
	fwd.WaitRead(t, 1+n)
	fwd.StopOK(t)
	agg.StopOK(t)
	g.WaitSent(10 * time.Second) // the final flush read to its end
	if total := counterTotal(g, "ca.after"); total != 2*n {
		t.Fatalf("ca.after total %v at the aggregator's backend, want %d; points: %v", total, 2*n, g.Lines())
	}
}
