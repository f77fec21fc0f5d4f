package garnertest

import (
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest/logaddr"
)

// LoggedAddr waits (up to 20s) for garner to log a line with message msg
// and every one of the extra key=value fields, and returns its address
// field. garner logs the address it bound, so a test can pass port 0 and
// learn the port here, with no window in which another process could take
// it (as it could between FreePort and garner's bind).
func (p *Process) LoggedAddr(t testing.TB, msg string, fields ...string) string {
	t.Helper()
	var addr string
	WaitFor(t, "garner to log "+msg, 20*time.Second, func() bool {
		addr = logaddr.Find(p.Stderr(), msg, fields...)
		if addr == "" && p.Wait(0) >= 0 {
			t.Fatalf("garner exited before it logged %q:\n%s", msg, p.Stderr())
		}
		return addr != ""
	})
	return addr
}

// AdminAddr is the host:port the admin HTTP server listens on.
func (p *Process) AdminAddr(t testing.TB) string {
	t.Helper()
	return p.LoggedAddr(t, "serving http", "http_server=admin")
}

// UDPAddr is the host:port the statsd UDP receiver listens on.
func (p *Process) UDPAddr(t testing.TB) string {
	t.Helper()
	return p.LoggedAddr(t, "listening for statsd on udp")
}

// TCPAddr is the host:port the statsd TCP receiver listens on.
func (p *Process) TCPAddr(t testing.TB) string {
	t.Helper()
	return p.LoggedAddr(t, "listening for statsd on tcp")
}

// WaitRead waits (up to 20s) until garner's /metrics counts at least lines
// statsd lines read (garner_receiver_lines_total): what was sent has been
// taken off the sockets, so a SIGTERM now loses none of it.
func (p *Process) WaitRead(t testing.TB, lines int) {
	t.Helper()
	admin := p.AdminAddr(t)
	var got float64
	WaitFor(t, "garner to read the lines sent", 20*time.Second, func() bool {
		got = MustScrape(t, admin).Sum("garner_receiver_lines_total")
		return got >= float64(lines)
	})
}

// StopOK sends SIGTERM and fails the test unless garner exits 0 within 20s.
func (p *Process) StopOK(t testing.TB) {
	t.Helper()
	if code := p.Stop(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.Stderr())
	}
}

// CountLines is how many statsd lines the payloads hold (non-empty lines).
func CountLines(payloads ...string) int {
	n := 0
	for _, pl := range payloads {
		for _, l := range strings.Split(pl, "\n") {
			if strings.TrimSpace(l) != "" {
				n++
			}
		}
	}
	return n
}
