//go:build linux

package receiver

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Unixgram is a unix datagram socket listener (metrics-addr is a path).
// It reads with the same batched reader as UDP. Lines from it have no
// source address.
type Unixgram struct {
	path    string
	conn    *net.UnixConn
	rd      datagramReader
	lines   *Lines
	log     logrus.FieldLogger
	reading atomic.Bool // the reading goroutine runs (health.go)
}

// ListenUnixgram binds the socket at path, replacing a stale socket file left
// by an earlier run (but never a file that is not a socket). Datagrams are
// read batchSize at a time into buffers of datagramSize bytes (at least 512).
func ListenUnixgram(path string, batchSize, datagramSize int, lines *Lines, log logrus.FieldLogger) (*Unixgram, error) {
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
	rd, err := newDatagramReader(conn, batchSize, max(datagramSize, 512))
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cannot read unix socket %q: %w", path, err)
	}
	return &Unixgram{path: path, conn: conn, rd: rd, lines: lines, log: log.WithField("receiver", "unixgram")}, nil
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
		readDatagrams(u.rd, u.lines.NewHandler("unixgram"), u.log)
	}()
	<-ctx.Done()
	_ = u.conn.SetReadDeadline(time.Now().Add(drainTime))
	<-done
	_ = u.conn.Close()
	_ = os.Remove(u.path)
	return nil
}
