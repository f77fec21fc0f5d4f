package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// TestListener: a client that connects and says nothing does not hold up
// the next one; a plaintext client is reported with its reason; Close ends
// Accept with net.ErrClosed.
func TestListener(t *testing.T) {
	f := newRotationFiles(t)
	srv := mustConfig(t, tlsconf.ServerConfig, tlsconf.ServerOptions{CertFile: f.server.CertFile, KeyFile: f.server.KeyFile}, logrus.New())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reasons []string
	ln := tlsconf.Listener(inner, srv, func(_ net.Conn, err error) {
		mu.Lock()
		reasons = append(reasons, tlsconf.HandshakeReason(err))
		mu.Unlock()
	})
	garnertest.Dial(t, "tcp", inner.Addr().String()) // a client that connects and says nothing
	plain := garnertest.Dial(t, "tcp", inner.Addr().String())
	if _, err := plain.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}

	cli := mustConfig(t, tlsconf.ClientConfig, tlsconf.ClientOptions{CAFile: f.caFile}, logrus.New())
	dialed := make(chan error, 1)
	go func() {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", inner.Addr().String(), cli)
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		dialed <- err
	}()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	if err := garnertest.Receive(t, "a silent client held up the handshake of the next one", 5*time.Second, accepted); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if err := <-dialed; err != nil {
		t.Fatalf("dial: %v", err)
	}
	garnertest.WaitFor(t, "the plaintext client reported", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reasons) == 1 && reasons[0] == tlsconf.ReasonNotTLS
	})
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	_ = ln.Close() // idempotent
}
