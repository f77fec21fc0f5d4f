package garnertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// FreePort returns a loopback port free for both TCP and UDP right now.
// Another process may take it before the caller binds it; the kernel hands
// out ports for :0 in a random order, so that is rare, not impossible.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct loopback ports, each free for TCP and UDP
// right now: each one's listener stays open until all are chosen, so two
// calls in a row cannot hand out the same port.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 50*n; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			_ = l.Close()
			continue
		}
		_ = u.Close()
		held = append(held, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		t.Fatalf("found only %d of %d free ports", len(ports), n)
	}
	return ports
}

// FreeAddr is "127.0.0.1:<FreePort>".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// ListenTCP listens on addr with the socket receive buffer pinned to
// rcvbuf bytes (the kernel doubles it for its bookkeeping) before listen,
// so every accepted connection inherits it and the kernel does not
// autotune it (net.ipv4.tcp_rmem may let it grow to tens of MiB). A test
// that needs back-pressure from a peer that does not read gets it after a
// known, small number of bytes. rcvbuf 0 leaves the kernel's default.
func ListenTCP(addr string, rcvbuf int) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if rcvbuf <= 0 {
			return nil
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Dial connects to addr over network ("tcp", "udp"), failing the test on an
// error; the connection is closed when the test ends (closing it sooner is
// fine).
func Dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// SendUDP sends each payload as one datagram to addr.
func SendUDP(t testing.TB, addr string, payloads ...string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range payloads {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
}

// SendTCP writes payload on one new TCP connection to addr and closes it.
func SendTCP(t testing.TB, addr, payload string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
}

// SendTimersTCP sends every value as a statsd timer line
// <name>:<value>|ms<suffix> (suffix e.g. "|@0.1" or "|#k:v"; shortest
// exact decimal), over TCP (no loss), in connections of 10k lines.
func SendTimersTCP(t testing.TB, addr, name, suffix string, values []float64) {
	t.Helper()
	var b []byte
	for i, v := range values {
		b = append(b, name...)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		b = append(b, "|ms"...)
		b = append(b, suffix...)
		b = append(b, '\n')
		if (i+1)%10000 == 0 || i == len(values)-1 {
			SendTCP(t, addr, string(b))
			b = b[:0]
		}
	}
}

// MaxSendBuffer is the largest send buffer, in bytes, the kernel gives a TCP
// socket: autotuned up to net.ipv4.tcp_wmem's maximum, or, set with
// SO_SNDBUF, up to twice net.core.wmem_max. A test that needs a peer's
// writes to block sends more than this. 4 MiB where /proc cannot be read.
func MaxSendBuffer() int {
	n := 0
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			n, _ = strconv.Atoi(f[2])
		}
	}
	if b, err := os.ReadFile("/proc/sys/net/core/wmem_max"); err == nil {
		if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			n = max(n, 2*m)
		}
	}
	if n <= 0 {
		n = 4 << 20
	}
	return n
}
