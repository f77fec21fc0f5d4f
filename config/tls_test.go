package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

func TestTLSKeys(t *testing.T) {
	dir := t.TempDir()
	ca := garnertest.NewCA(t, "test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	p := ca.WritePair(t, dir, "garner", time.Now().Add(time.Hour))
	c := mustLoad(t, "--admin-tls-cert-file", p.CertFile, "--admin-tls-key-file", p.KeyFile, "--admin-tls-client-ca-file", caFile,
		"--config-path", writeFile(t, "f.toml", "[http-transport]\ntls-ca-file = \""+caFile+"\"\ntls-cert-file = \""+p.CertFile+
			"\"\ntls-key-file = \""+p.KeyFile+"\"\ntls-server-name = \"agg\"\n"))
	if want := (tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: p.KeyFile, ClientCAFile: caFile}); c.TLS.Admin != want {
		t.Errorf("TLS.Admin = %+v, want %+v", c.TLS.Admin, want)
	}
	if want := (tlsconf.ClientOptions{CAFile: caFile, CertFile: p.CertFile, KeyFile: p.KeyFile, ServerName: "agg"}); c.Forward.HTTPTransport.TLS != want {
		t.Errorf("HTTPTransport.TLS = %+v, want %+v", c.Forward.HTTPTransport.TLS, want)
	}
	tcp := mustLoad(t, "--tcp-metrics-addr=127.0.0.1:0", "--tcp-tls-cert-file", p.CertFile, "--tcp-tls-key-file", p.KeyFile)
	if want := (tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: p.KeyFile}); tcp.TLS.TCP != want {
		t.Errorf("TLS.TCP = %+v, want %+v", tcp.TLS.TCP, want)
	}
	if d := mustLoad(t); d.TLS.TCP.Enabled() || d.TLS.Admin.Enabled() || d.Forward.HTTPTransport.TLS.Enabled() {
		t.Errorf("TLS on by default: %+v %+v", d.TLS, d.Forward.HTTPTransport.TLS)
	}

	missing := filepath.Join(dir, "missing.pem")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := "--admin-tls-cert-file="+p.CertFile, "--admin-tls-key-file="+p.KeyFile
	transport := func(lines string) string { return "[http-transport]\n" + lines }
	requireBadConfigs(t, []badConfig{
		{name: "admin cert missing", args: []string{"--admin-tls-cert-file=" + missing, key}, wantKey: "admin-tls-cert-file"},
		{name: "admin key missing", args: []string{cert, "--admin-tls-key-file=" + missing}, wantKey: "admin-tls-key-file"},
		{name: "admin key unset", args: []string{cert}, wantKey: "admin-tls-key-file"},
		{name: "admin client CA junk", args: []string{cert, key, "--admin-tls-client-ca-file=" + junk}, wantKey: "admin-tls-client-ca-file"},
		{name: "admin client CA without a pair", args: []string{"--admin-tls-client-ca-file=" + caFile}, wantKey: "admin-tls-cert-file"},
		{name: "admin TLS without admin-addr", args: []string{cert, key, "--admin-addr="}, wantKey: "admin-tls-cert-file"},
		{name: "tcp key missing", args: []string{"--tcp-metrics-addr=127.0.0.1:0", "--tcp-tls-cert-file=" + p.CertFile, "--tcp-tls-key-file=" + missing}, wantKey: "tcp-tls-key-file"},
		{name: "tcp client CA missing", args: []string{"--tcp-metrics-addr=127.0.0.1:0", "--tcp-tls-cert-file=" + p.CertFile, "--tcp-tls-key-file=" + p.KeyFile, "--tcp-tls-client-ca-file=" + missing}, wantKey: "tcp-tls-client-ca-file"},
		{name: "tcp TLS without tcp-metrics-addr", args: []string{"--tcp-tls-cert-file=" + p.CertFile, "--tcp-tls-key-file=" + p.KeyFile}, wantKey: "tcp-tls-cert-file"},
		{name: "http server key missing", file: "http-servers = \"in\"\n[http.in]\naddress = \"127.0.0.1:1\"\ntls-cert-file = \"" + p.CertFile + "\"\ntls-key-file = \"" + missing + "\"\n", wantKey: "http.in.tls-key-file"},
		{name: "forwarder CA missing", file: transport("tls-ca-file = \"" + missing + "\"\n"), wantKey: "http-transport.tls-ca-file"},
		{name: "forwarder cert without key", file: transport("tls-cert-file = \"" + p.CertFile + "\"\n"), wantKey: "http-transport.tls-key-file"},
		{name: "forwarder key is junk", file: transport("tls-cert-file = \"" + p.CertFile + "\"\ntls-key-file = \"" + junk + "\"\n"), wantKey: "http-transport.tls-cert-file"},
	})
}
