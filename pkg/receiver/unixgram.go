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
	bound   os.FileInfo // the socket file as bound, to remove only ours
}

// DefaultSocketMode is the permission of the socket file (key
// metrics-socket-mode), as DogStatsD and the OpenTelemetry Collector use:
// anyone may send, only the owner may read.
const DefaultSocketMode os.FileMode = 0o622

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
	bound, err := os.Lstat(path)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cannot stat unix socket %q: %w", path, err)
	}
	return &Unixgram{path: path, conn: conn, rd: rd, lines: lines, log: log.WithField("receiver", "unixgram"), bound: bound}, nil
}

// SetMode sets the permission bits of the socket file (metrics-socket-mode;
// connecting to it needs write permission). Call it before Run.
func (u *Unixgram) SetMode(mode os.FileMode) error {
	if err := os.Chmod(u.path, mode.Perm()); err != nil {
		return fmt.Errorf("cannot set the mode of unix socket %q: %w", u.path, err)
	}
	return nil
}

// removeIfOurs removes the socket file unless another process has replaced
// it since it was bound (a second garner started on the same path).
func (u *Unixgram) removeIfOurs() {
	fi, err := os.Lstat(u.path)
	if err != nil {
		return
	}
	if !os.SameFile(fi, u.bound) {
		u.log.WithField("path", u.path).Warn("not removing the unix socket: another process bound it since")
		return
	}
	_ = os.Remove(u.path)
}

// Addr is the socket address.
func (u *Unixgram) Addr() net.Addr { return u.conn.LocalAddr() }

// Run reads until ctx is cancelled, drains briefly, closes the socket and
// removes its file if it is still the one bound, and returns nil.
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
	u.removeIfOurs()
	return nil
}
