//go:build linux

package receiver

import "fmt"

// Reading returns nil while every UDP reader goroutine is in its read loop,
// and an error saying how many are not (before Run, after it, or a reader
// that stopped). Safe for concurrent use; for health checks.
func (u *UDP) Reading() error {
	if n, total := int(u.reading.Load()), len(u.conns); n != total {
		return fmt.Errorf("%d of %d udp readers reading", n, total)
	}
	return nil
}

// Reading returns nil while the TCP accept loop runs. Safe for concurrent
// use; for health checks.
func (t *TCP) Reading() error {
	if !t.accepting.Load() {
		return fmt.Errorf("tcp listener on %q not accepting", t.ln.Addr().String())
	}
	return nil
}

// Reading returns nil while the unix socket's reader runs. Safe for
// concurrent use; for health checks.
func (u *Unixgram) Reading() error {
	if !u.reading.Load() {
		return fmt.Errorf("unix socket %q not reading", u.path)
	}
	return nil
}
