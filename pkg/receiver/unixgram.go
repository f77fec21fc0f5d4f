package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
)

// Unixgram is a unix datagram socket listener (metrics-addr is a path).
// Lines from it have no source address.
type Unixgram struct {
	path         string
	datagramSize int
	conn         *net.UnixConn
	agg          *aggregator.Aggregator
	log          logrus.FieldLogger
	reading      atomic.Bool // the reading goroutine runs (health.go)
}

// ListenUnixgram binds the socket at path, replacing a stale socket file left
// by an earlier run (but never a file that is not a socket).
func ListenUnixgram(path string, datagramSize int, agg *aggregator.Aggregator, log logrus.FieldLogger) (*Unixgram, error) {
	path = strings.TrimPrefix(path, "unix:")
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("cannot listen on unix socket %q: a file that is not a socket is there", path)
		}
		_ = os.Remove(path)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("cannot listen on unix socket %q: %w", path, err)
	}
	return &Unixgram{path: path, datagramSize: max(datagramSize, 512), conn: conn, agg: agg, log: log.WithField("receiver", "unixgram")}, nil
}

// Addr is the socket address.
func (u *Unixgram) Addr() net.Addr { return u.conn.LocalAddr() }

// Run reads until ctx is cancelled, drains briefly, closes and removes the
// socket, and returns nil.
func (u *Unixgram) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.reading.Store(true)
		defer u.reading.Store(false)
		r := u.agg.NewRouter("unixgram")
		buf := make([]byte, u.datagramSize)
		for {
			n, _, flags, _, err := u.conn.ReadMsgUnix(buf, nil)
			if n > 0 {
				r.HandleDatagram(buf[:n], netip.Addr{}, flags&syscall.MSG_TRUNC != 0)
				r.Flush()
			}
			if err != nil {
				if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
					return
				}
				u.log.WithError(err).Warn("unix socket read failed")
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	<-ctx.Done()
	_ = u.conn.SetReadDeadline(time.Now().Add(drainTime))
	<-done
	_ = u.conn.Close()
	_ = os.Remove(u.path)
	return nil
}
