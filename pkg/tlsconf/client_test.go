package tlsconf_test

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// serveHTTP serves "ok" over loopback, with TLS when srv is not nil, and
// returns the base URL.
func serveHTTP(t *testing.T, srv *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if srv != nil {
		ln, scheme = tls.NewListener(ln, srv), "https"
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return scheme + "://" + ln.Addr().String()
}

// get does one GET through c's round tripper and returns the error and
// the serial of the server's certificate.
func get(t *testing.T, rt http.RoundTripper, url string) (string, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	if resp.TLS == nil {
		return "", nil
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
}

// TestClientHandshakeErrors: each way a client handshake fails, with real
// handshakes over loopback, is counted under its reason and logged; the
// requests that work are not counted.
func TestClientHandshakeErrors(t *testing.T) {
	dir := t.TempDir()
	ca, other := garnertest.NewCA(t, "garner test CA"), garnertest.NewCA(t, "another CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	day := time.Now().Add(24 * time.Hour)
	expired := time.Now().Add(-time.Minute)
	srvPair, cliPair := ca.WritePair(t, dir, "server", day), ca.WritePair(t, dir, "client", day)
	strangerCli, strangerSrv := other.WritePair(t, dir, "stranger", day), other.WritePair(t, dir, "stranger-server", day)
	oldCli, oldSrv := ca.WritePair(t, dir, "old-client", expired), ca.WritePair(t, dir, "old-server", expired)
	quiet := garnertest.QuietLog()

	server := func(p garnertest.Pair, maxVersion uint16) string {
		cfg := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: p.KeyFile, ClientCAFile: caFile}, quiet)
		cfg.MaxVersion = maxVersion
		return serveHTTP(t, cfg)
	}
	mutual := server(srvPair, 0)
	mutual12 := server(srvPair, tls.VersionTLS12)
	untrusted := server(strangerSrv, 0)
	stale := server(oldSrv, 0)
	plain := serveHTTP(t, nil)

	for _, tc := range []struct {
		name, url string
		cli       garnertest.Pair
		reason    string // "" = the request succeeds
	}{
		{"client from the CA", mutual, cliPair, ""},
		{"no client certificate (TLS 1.3)", mutual, garnertest.Pair{}, tlsconf.ReasonClientNoCert},
		{"no client certificate (TLS 1.2)", mutual12, garnertest.Pair{}, tlsconf.ReasonClientNoCert},
		{"client from another CA", mutual, strangerCli, tlsconf.ReasonClientCertRefused},
		{"client from another CA (TLS 1.2)", mutual12, strangerCli, tlsconf.ReasonClientCertRefused},
		{"expired client", mutual, oldCli, tlsconf.ReasonClientCertExpired},
		{"server from another CA", untrusted, cliPair, tlsconf.ReasonServerBad},
		{"expired server", stale, cliPair, tlsconf.ReasonServerExpired},
		{"plaintext server", "https://" + plain[len("http://"):], cliPair, tlsconf.ReasonNotTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			errs := tlsconf.ClientHandshakeErrors(reg)
			if again := tlsconf.ClientHandshakeErrors(reg); again != errs {
				t.Fatal("a second ClientHandshakeErrors on the same registry is another collector")
			}
			l, hook := test.NewNullLogger()
			c, err := tlsconf.NewClient(tlsconf.ClientOptions{CAFile: caFile, CertFile: tc.cli.CertFile, KeyFile: tc.cli.KeyFile}, l)
			if err != nil {
				t.Fatal(err)
			}
			rt := c.RoundTripper(&http.Transport{}, "test", errs, l)
			_, err = get(t, rt, tc.url+"/")
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
				for _, r := range tlsconf.ClientReasons {
					if n := testutil.ToFloat64(errs.WithLabelValues("test", r)); n != 0 {
						t.Fatalf("%v handshake errors (%s) counted for a request that worked", n, r)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("request succeeded; want a failed handshake")
			}
			for _, r := range tlsconf.ClientReasons {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got := testutil.ToFloat64(errs.WithLabelValues("test", r)); got != want {
					t.Errorf("reason %s counted %v, want %v (error: %v)", r, got, want, err)
				}
			}
			e := hook.LastEntry()
			if e == nil || e.Data["reason"] != tc.reason || e.Data["client"] != "test" {
				t.Errorf("failed handshake not logged with its reason: %+v", hook.AllEntries())
			}
		})
	}

	t.Run("connection refused is not a handshake error", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		errs := tlsconf.ClientHandshakeErrors(nil)
		c, err := tlsconf.NewClient(tlsconf.ClientOptions{CAFile: caFile}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, c.RoundTripper(&http.Transport{}, "test", errs, quiet), "https://"+addr+"/"); err == nil {
			t.Fatal("request to a closed port succeeded")
		}
		for _, r := range tlsconf.ClientReasons {
			if n := testutil.ToFloat64(errs.WithLabelValues("test", r)); n != 0 {
				t.Fatalf("a refused connection counted as a handshake error (%s)", r)
			}
		}
	})
}

// TestClientRotation: a client's CA bundle and certificate rewritten in
// place are used by the next request (a new connection), without Reload;
// a broken bundle keeps the previous one.
func TestClientRotation(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := garnertest.NewCA(t, "first CA"), garnertest.NewCA(t, "second CA")
	day := time.Now().Add(24 * time.Hour)
	caFile := ca1.WriteCA(t, dir, "servers.pem")
	clientCAs := ca1.WriteCA(t, t.TempDir(), "clients.pem")
	srv1 := ca1.WritePair(t, t.TempDir(), "server", day)
	srv2 := ca2.WritePair(t, t.TempDir(), "server", day)
	cli := ca1.WritePair(t, dir, "client", day)
	quiet := garnertest.QuietLog()

	var seen []string // the client serials the servers saw
	server := func(p garnertest.Pair) string {
		cfg := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: p.KeyFile, ClientCAFile: clientCAs}, quiet)
		cfg.ClientAuth = tls.RequireAnyClientCert // both CAs' clients; the serial is what matters
		cfg.GetConfigForClient = nil
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			seen = append(seen, cs.PeerCertificates[0].SerialNumber.String())
			return nil
		}
		return serveHTTP(t, cfg)
	}
	first, second := server(srv1), server(srv2)

	c, err := tlsconf.NewClient(tlsconf.ClientOptions{CAFile: caFile, CertFile: cli.CertFile, KeyFile: cli.KeyFile}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	rt := c.RoundTripper(&http.Transport{}, "test", nil, quiet)
	if s, err := get(t, rt, first+"/"); err != nil || s != srv1.Cert.SerialNumber.String() {
		t.Fatalf("first CA's server: %q %v", s, err)
	}
	if _, err := get(t, rt, second+"/"); err == nil {
		t.Fatal("the second CA's server trusted before the bundle has it")
	}

	ca2.WriteCA(t, dir, "servers.pem")
	newCli := ca2.WritePair(t, dir, "client", day)
	if s, err := get(t, rt, second+"/"); err != nil || s != srv2.Cert.SerialNumber.String() {
		t.Fatalf("after the bundle moved to the second CA: %q %v", s, err)
	}
	if last := seen[len(seen)-1]; last != newCli.Cert.SerialNumber.String() {
		t.Fatalf("the server saw client %s, want the rewritten %s", last, newCli.Cert.SerialNumber)
	}
	if _, err := get(t, rt, first+"/"); err == nil {
		t.Fatal("the first CA's server still trusted after the bundle moved (no new connection?)")
	}
	writeFile(t, caFile, "junk\n")
	if _, err := get(t, rt, second+"/"); err != nil {
		t.Fatalf("a broken bundle replaced the working one: %v", err)
	}
}

// TestClientReload: after Reload, a Client's round tripper makes a new
// connection, presenting the client pair re-read even though its files'
// stamps did not change.
func TestClientReload(t *testing.T) {
	f := newRotationFiles(t)
	quiet := garnertest.QuietLog()
	srv := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: f.server.CertFile, KeyFile: f.server.KeyFile, ClientCAFile: f.caFile}, quiet)
	srv.GetConfigForClient = nil
	var mu sync.Mutex
	var seen []string
	srv.VerifyConnection = func(cs tls.ConnectionState) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, cs.PeerCertificates[0].SerialNumber.String())
		return nil
	}
	url := serveHTTP(t, srv) + "/"
	c, err := tlsconf.NewClient(tlsconf.ClientOptions{CAFile: f.caFile, CertFile: f.client.CertFile, KeyFile: f.client.KeyFile}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	rt := c.RoundTripper(&http.Transport{}, "test", nil, quiet)
	last := func() string {
		t.Helper()
		if _, err := get(t, rt, url); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	if s := last(); s != f.client.Cert.SerialNumber.String() {
		t.Fatalf("server saw client %s, want %s", s, f.client.Cert.SerialNumber)
	}
	next := f.ca.RewritePair(t, f.client, f.day)
	if s := last(); s != f.client.Cert.SerialNumber.String() {
		t.Fatalf("the unnoticed rewrite was presented before Reload (%s)", s)
	}
	tlsconf.Reload()
	if s := last(); s != next.Cert.SerialNumber.String() {
		t.Fatalf("after Reload the server saw client %s, want the rewritten %s", s, next.Cert.SerialNumber)
	}
}
