package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// handshake dials a TLS server built from srv over loopback with a client
// built from cli, and returns the serial of the certificate the server
// presented, or the error of either side.
func handshake(t *testing.T, srv, cli *tls.Config) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			// TLS 1.3 clients learn of a refused certificate on first read.
			_, err = c.Write([]byte("ok"))
		}
		srvErr <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), cli)
	if err != nil {
		<-srvErr
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		<-srvErr
		return "", err
	}
	if err := <-srvErr; err != nil {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// mustConfig builds a config with build (tlsconf.ServerConfig or
// tlsconf.ClientConfig) and fails the test on an error.
func mustConfig[O any](t *testing.T, build func(O, logrus.FieldLogger) (*tls.Config, error), o O, log logrus.FieldLogger) *tls.Config {
	t.Helper()
	c, err := build(o, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := garnertest.NewCA(t, "garner test CA")
	other := garnertest.NewCA(t, "another CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	day := time.Now().Add(24 * time.Hour)
	srvPair := ca.WritePair(t, dir, "server", day)
	cliPair := ca.WritePair(t, dir, "client", day)
	strangerPair := other.WritePair(t, dir, "stranger", day)
	expiredPair := ca.WritePair(t, dir, "expired", time.Now().Add(-time.Minute))
	log := logrus.New()

	srv := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: caFile}, log)
	client := func(t *testing.T, o tlsconf.ClientOptions) *tls.Config {
		return mustConfig(t, tlsconf.ClientConfig, o, log)
	}
	for _, tc := range []struct {
		name string
		cli  tlsconf.ClientOptions
		ok   bool
	}{
		{"client from the CA", tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile}, true},
		{"server name set", tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile, ServerName: "server"}, true},
		{"wrong server name", tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile, ServerName: "elsewhere"}, false},
		{"no client certificate", tlsconf.ClientOptions{CAFile: caFile}, false},
		{"client from another CA", tlsconf.ClientOptions{CAFile: caFile, CertFile: strangerPair.CertFile, KeyFile: strangerPair.KeyFile}, false},
		{"expired client", tlsconf.ClientOptions{CAFile: caFile, CertFile: expiredPair.CertFile, KeyFile: expiredPair.KeyFile}, false},
		{"server not trusted (system roots)", tlsconf.ClientOptions{CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serialNo, err := handshake(t, srv, client(t, tc.cli))
			if tc.ok && (err != nil || serialNo != srvPair.Cert.SerialNumber.String()) {
				t.Fatalf("handshake: serial %q, %v; want the server's %s", serialNo, err, srvPair.Cert.SerialNumber)
			}
			if !tc.ok && err == nil {
				t.Fatal("handshake succeeded; want it refused")
			}
		})
	}

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		c := client(t, tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile})
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		if _, err := handshake(t, srv, c); err == nil {
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
}

// rotationFiles are a CA, its bundle, and a server and a client pair from
// it, valid for a day, in a fresh directory.
type rotationFiles struct {
	ca             *garnertest.CA
	dir, caFile    string
	day            time.Time
	server, client garnertest.Pair
}

func newRotationFiles(t *testing.T) rotationFiles {
	t.Helper()
	f := rotationFiles{dir: t.TempDir(), ca: garnertest.NewCA(t, "garner test CA"), day: time.Now().Add(24 * time.Hour)}
	f.caFile = f.ca.WriteCA(t, f.dir, "ca.pem")
	f.server = f.ca.WritePair(t, f.dir, "server", f.day)
	f.client = f.ca.WritePair(t, f.dir, "client", f.day)
	return f
}

func TestRotation(t *testing.T) {
	f := newRotationFiles(t)
	ca, dir, caFile, day, first, cliPair := f.ca, f.dir, f.caFile, f.day, f.server, f.client
	log, hook := test.NewNullLogger()

	srv := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: first.CertFile, KeyFile: first.KeyFile, ClientCAFile: caFile}, log)
	cli := mustConfig(t, tlsconf.ClientConfig, tlsconf.ClientOptions{CAFile: caFile, CertFile: cliPair.CertFile, KeyFile: cliPair.KeyFile}, log)
	want := func(t *testing.T, p garnertest.Pair) {
		t.Helper()
		got, err := handshake(t, srv, cli)
		if err != nil || got != p.Cert.SerialNumber.String() {
			t.Fatalf("server presented serial %q (%v); want %s", got, err, p.Cert.SerialNumber)
		}
	}
	want(t, first)

	// Rewritten in place: the next handshake uses the new pair.
	second := ca.WritePair(t, dir, "server", day)
	want(t, second)

	// A key that does not match its certificate: the old pair stays, logged.
	keep, err := os.ReadFile(second.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	third := ca.WritePair(t, t.TempDir(), "server", day)
	otherKey, err := os.ReadFile(third.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second.KeyFile, append(otherKey, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	hook.Reset()
	want(t, second)
	if e := hook.LastEntry(); e == nil || e.Level != logrus.ErrorLevel {
		t.Fatalf("broken pair not logged as an error: %+v", hook.AllEntries())
	}
	// The key put back (a change again): the pair loads once more.
	if err := os.WriteFile(second.KeyFile, keep, 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, second)

	// The client certificate rotates too.
	newCli := ca.WritePair(t, dir, "client", day)
	var seen string
	srv2 := srv.Clone()
	srv2.GetConfigForClient = nil // its per-handshake config would drop VerifyConnection
	srv2.VerifyConnection = func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates[0].SerialNumber.String()
		return nil
	}
	if _, err := handshake(t, srv2, cli); err != nil || seen != newCli.Cert.SerialNumber.String() {
		t.Fatalf("client presented %q (%v); want the rotated %s", seen, err, newCli.Cert.SerialNumber)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := garnertest.NewCA(t, "garner test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	p := ca.WritePair(t, dir, "server", time.Now().Add(time.Hour))
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	log := logrus.New()
	for _, tc := range []struct {
		name  string
		srv   *tlsconf.ServerOptions
		cli   *tlsconf.ClientOptions
		field string
	}{
		{"server cert missing", &tlsconf.ServerOptions{CertFile: missing, KeyFile: p.KeyFile}, nil, tlsconf.FieldCert},
		{"server key missing", &tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: missing}, nil, tlsconf.FieldKey},
		{"server key unset", &tlsconf.ServerOptions{CertFile: p.CertFile}, nil, tlsconf.FieldKey},
		{"server only a client CA", &tlsconf.ServerOptions{ClientCAFile: caFile}, nil, tlsconf.FieldCert},
		{"server key is junk", &tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: junk}, nil, tlsconf.FieldCert},
		{"client CA is junk", &tlsconf.ServerOptions{CertFile: p.CertFile, KeyFile: p.KeyFile, ClientCAFile: junk}, nil, tlsconf.FieldClientCA},
		{"CA missing", nil, &tlsconf.ClientOptions{CAFile: missing}, tlsconf.FieldCA},
		{"client cert without key", nil, &tlsconf.ClientOptions{CertFile: p.CertFile}, tlsconf.FieldKey},
		{"client key without cert", nil, &tlsconf.ClientOptions{KeyFile: p.KeyFile}, tlsconf.FieldCert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err, checked error
			if tc.srv != nil {
				_, err = tlsconf.ServerConfig(*tc.srv, log)
				checked = tlsconf.CheckServer(*tc.srv)
			} else {
				_, err = tlsconf.ClientConfig(*tc.cli, log)
				checked = tlsconf.CheckClient(*tc.cli)
			}
			for name, err := range map[string]error{"config": err, "check": checked} {
				var fe *tlsconf.FileError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("%s: error %v; want a FileError about the %s file", name, err, tc.field)
				}
			}
		})
	}
}

// TestClientCARotation: the server's client CA bundle is re-read when it
// changes; a broken one keeps the previous bundle.
func TestClientCARotation(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := garnertest.NewCA(t, "first CA"), garnertest.NewCA(t, "second CA")
	caFile := ca1.WriteCA(t, dir, "clients.pem")
	day := time.Now().Add(24 * time.Hour)
	srvPair := ca1.WritePair(t, dir, "server", day)
	c1, c2 := ca1.WritePair(t, dir, "client1", day), ca2.WritePair(t, dir, "client2", day)
	serverCA := ca1.WriteCA(t, t.TempDir(), "server-ca.pem")
	log, _ := test.NewNullLogger()
	srv := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: caFile}, log)
	dial := func(p garnertest.Pair) error {
		_, err := handshake(t, srv, mustConfig(t, tlsconf.ClientConfig, tlsconf.ClientOptions{CAFile: serverCA, CertFile: p.CertFile, KeyFile: p.KeyFile}, log))
		return err
	}
	if dial(c1) != nil || dial(c2) == nil {
		t.Fatal("before rotation: want client1 in, client2 out")
	}
	ca2.WriteCA(t, dir, "clients.pem")
	if dial(c2) != nil || dial(c1) == nil {
		t.Fatal("after rotation to the second CA: want client2 in, client1 out")
	}
	if err := os.WriteFile(caFile, []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if dial(c2) != nil {
		t.Fatal("a broken CA bundle replaced the working one")
	}
}
