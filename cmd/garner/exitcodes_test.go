package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2EStartFailures: every start failure ends in one plain "garner: ..."
// line (no logfmt, no escaped quotes) and the exit code of its class:
// 2 configuration, 3 a listen address that cannot be bound (statsd UDP,
// TCP and admin alike).
func TestE2EStartFailures(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0") // no SO_REUSEPORT: garner cannot join it
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	free := "--metrics-addr=127.0.0.1:0"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad flag value", []string{"--flush-interval=soon", free}, 2, `garner: config key "flush-interval"`},
		{"unknown flag", []string{"--no-such-flag", free}, 2, "garner: unknown flag: --no-such-flag"},
		{"statsd port in use", []string{"--metrics-addr=" + udp.LocalAddr().String(), "--admin-addr=" + garnertest.FreeAddr(t)}, 3, "garner: cannot start receivers"},
		{"tcp port in use", []string{free, "--tcp-metrics-addr=" + tcp.Addr().String(), "--admin-addr=" + garnertest.FreeAddr(t)}, 3, "garner: cannot start receivers"},
		{"admin port in use", []string{free, "--admin-addr=" + tcp.Addr().String()}, 3, `garner: address in use: admin-addr "` + tcp.Addr().String() + `" is taken`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := garnertest.Start(t, append(tc.args, "--backends=null")...)
			code := p.Wait(20 * time.Second)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\n%s", code, tc.code, p.Stderr())
			}
			lines := strings.Split(strings.TrimSpace(p.Stderr()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, tc.want) {
				t.Errorf("last stderr line %q, want it to start with %q", last, tc.want)
			}
			if strings.Contains(p.Stderr(), "level=error") || strings.Contains(last, `\"`) {
				t.Errorf("the failure is not one plain line:\n%s", p.Stderr())
			}
		})
	}
}

// TestE2EReceiveBufferWarnedOnce: a receive buffer the kernel does not grant
// is one warning for all the sockets, not one per reader. 1GiB is just
// above what Linux grants even to root (INT_MAX/2).
func TestE2EReceiveBufferWarnedOnce(t *testing.T) {
	p := garnertest.StartReady(t, "--metrics-addr=127.0.0.1:0", "--admin-addr=", "--backends=null",
		"--max-readers=4", "--socket-receive-buffer=1GiB")
	p.StopOK(t)
	if n := strings.Count(p.Stderr(), "socket receive buffer is smaller"); n != 1 {
		t.Fatalf("%d receive-buffer warnings, want 1:\n%s", n, p.Stderr())
	}
}
