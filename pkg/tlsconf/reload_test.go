package tlsconf_test

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rewriteUnnoticed writes a new pair of the same name over p's files with the same
// sizes and modification times, so that only a forced re-read can tell.
func rewriteUnnoticed(t *testing.T, ca *garnertest.CA, p garnertest.Pair, notAfter time.Time) garnertest.Pair {
	t.Helper()
	size := func(path string) (int64, time.Time) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size(), fi.ModTime()
	}
	certSize, certMod := size(p.CertFile)
	keySize, keyMod := size(p.KeyFile)
	name := strings.TrimSuffix(filepath.Base(p.CertFile), ".crt")
	dir := t.TempDir()
	for range 200 { // signatures vary in length by a few bytes: find a same-size pair
		n := ca.WritePair(t, dir, name, notAfter)
		cs, _ := size(n.CertFile)
		ks, _ := size(n.KeyFile)
		if cs != certSize || ks != keySize {
			continue
		}
		c, _ := os.ReadFile(n.CertFile)
		k, _ := os.ReadFile(n.KeyFile)
		writeFile(t, p.CertFile, string(c))
		writeFile(t, p.KeyFile, string(k))
		for path, mod := range map[string]time.Time{p.CertFile: certMod, p.KeyFile: keyMod} {
			if err := os.Chtimes(path, mod, mod); err != nil {
				t.Fatal(err)
			}
		}
		return garnertest.Pair{CertFile: p.CertFile, KeyFile: p.KeyFile, Cert: n.Cert}
	}
	t.Fatal("no pair of the same size in 200 tries")
	return garnertest.Pair{}
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
	dir := t.TempDir()
	ca := garnertest.NewCA(t, "garner test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	day := time.Now().Add(24 * time.Hour)
	first := ca.WritePair(t, dir, "server", day)
	cliPair := ca.WritePair(t, dir, "client", day)
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	o := tlsconf.ServerOptions{CertFile: first.CertFile, KeyFile: first.KeyFile, ClientCAFile: caFile}
	srv, err := tlsconf.ServerConfig(o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := tlsconf.ServerConfig(o, quiet) // another config of the same files
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile}, quiet)
	if err != nil {
		t.Fatal(err)
	}
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

	second := rewriteUnnoticed(t, ca, first, day.Add(time.Hour))
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
