package tlsconf_test

import (
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func reloaded(t *testing.T, file string) []tlsconf.Reloaded {
	t.Helper()
	var out []tlsconf.Reloaded
	for _, r := range tlsconf.Reload() {
		if r.File == file {
			out = append(out, r)
		}
	}
	return out
}

// TestReload: Reload re-reads a pair whose files changed without their
// stamp (which a handshake does not notice), once for every config using
// it; a broken pair keeps the previous one and says why.
func TestReload(t *testing.T) {
	f := newRotationFiles(t)
	ca, caFile, day, first, cliPair := f.ca, f.caFile, f.day, f.server, f.client
	quiet := garnertest.QuietLog()
	o := tlsconf.ServerOptions{CertFile: first.CertFile, KeyFile: first.KeyFile, ClientCAFile: caFile}
	srv, srv2 := mustConfig(t, tlsconf.ServerConfig, o, quiet), mustConfig(t, tlsconf.ServerConfig, o, quiet) // two configs of the same files
	cli := mustConfig(t, tlsconf.ClientConfig, tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile}, quiet)
	want := func(t *testing.T, p garnertest.Pair) {
		t.Helper()
		for i, cfg := range []*tls.Config{srv, srv2} {
			got, err := handshake(t, cfg, cli)
			if err != nil || got != p.Cert.SerialNumber.String() {
				t.Fatalf("config %d presented serial %q (%v); want %s", i+1, got, err, p.Cert.SerialNumber)
			}
		}
	}
	want(t, first)

	second := ca.RewritePair(t, first, day.Add(time.Hour))
	want(t, first) // same stamps: a handshake does not re-read
	rs := reloaded(t, first.CertFile)
	if len(rs) != 1 || rs[0].Err != nil || rs[0].KeyFile != first.KeyFile || !rs[0].NotAfter.Equal(second.Cert.NotAfter) {
		t.Fatalf("Reload said %+v; want one entry for the pair, loaded, expiring %s", rs, second.Cert.NotAfter)
	}
	want(t, second)

	writeFile(t, first.KeyFile, "not a key\n")
	rs = reloaded(t, first.CertFile)
	if len(rs) != 1 || rs[0].Err == nil {
		t.Fatalf("Reload of a broken key said %+v; want an error", rs)
	}
	want(t, second)

	if rs := reloaded(t, caFile); len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Reload of the CA bundle (client CAs and the client's roots, one file) said %+v; want one entry, loaded", rs)
	}
}
