//go:build linux

// Package receiver holds what comes in: garner's statsd listeners — UDP
// (several sockets bound with SO_REUSEPORT, batched reads with recvmmsg),
// TCP (newline-delimited) and unix datagram sockets — and the line handling
// behind them: parsing, the host, shaping, the series key, the
// garner_receiver_* counters and the bad-line log (Lines, LineHandler).
// Forwarded series take the same way in through a SeriesWriter. Everything
// reaches the aggregator's shards through its one hand-off. Each reading
// goroutine owns a LineHandler and its buffers; nothing on the read path is
// shared.
//
// garner runs on Linux: the package uses recvmmsg, SO_RCVBUFFORCE and
// /proc/net/udp, and does not build elsewhere (see other.go).
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// drainTime is how long a reader keeps reading after it was told to stop,
// to take in what the kernel had already queued for it.
const drainTime = 200 * time.Millisecond

// UDPOptions configures the UDP receiver; start from DefaultUDPOptions.
type UDPOptions struct {
	// Addr is the host:port to listen on (key metrics-addr).
	Addr string
	// Readers is the number of sockets bound with SO_REUSEPORT, one
	// reading goroutine each (key max-readers); less than 1 means 1.
	// Default min(8, CPUs).
	Readers int
	// BatchSize is the datagrams read per recvmmsg call (key
	// receive-batch-size); less than 1 means 1. Default 50.
	BatchSize int
	// DatagramSize is the read buffer per datagram, bytes (key
	// max-datagram-size); a longer datagram is truncated, its last line
	// counted as bad. Less than 512 means 512. Default 65536.
	DatagramSize int
	// ReceiveBuffer is the SO_RCVBUF asked for each socket, bytes (key
	// socket-receive-buffer); 0 = the kernel's default. Default 8 MiB.
	ReceiveBuffer int
}

// DefaultUDPOptions returns the options the keys default to (no Addr).
func DefaultUDPOptions() UDPOptions {
	return UDPOptions{Readers: min(8, runtime.NumCPU()), BatchSize: 50, DatagramSize: 64 << 10, ReceiveBuffer: 8 << 20}
}

// UDP is the UDP statsd listener.
type UDP struct {
	opts    UDPOptions
	lines   *Lines
	log     logrus.FieldLogger
	conns   []*net.UDPConn
	rds     []datagramReader // one per conn
	drops   *kernelDrops
	reading atomic.Int32 // reader goroutines in their read loop (health.go)
}

// ListenUDP binds the sockets, so that a taken port fails the start before
// anything runs, and registers garner_receiver_kernel_drops_total with reg
// (nil: not exported). Run reads them.
func ListenUDP(opts UDPOptions, lines *Lines, log logrus.FieldLogger, reg prometheus.Registerer) (*UDP, error) {
	if opts.Readers < 1 {
		opts.Readers = 1
	}
	u := &UDP{opts: opts, lines: lines, log: log.WithField("receiver", "udp")}
	lc := net.ListenConfig{Control: reusePort}
	addr := opts.Addr
	var bufErr error // logged once for all the sockets
	for i := 0; i < opts.Readers; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("cannot listen on udp %q: %w", opts.Addr, err)
		}
		conn := pc.(*net.UDPConn)
		if i == 0 {
			addr = conn.LocalAddr().String() // port 0: the others join the port the first got
		}
		if err := setReceiveBuffer(conn, opts.ReceiveBuffer); err != nil && bufErr == nil {
			bufErr = err
		}
		u.conns = append(u.conns, conn)
	}
	if bufErr != nil {
		u.log.WithError(bufErr).WithField("sockets", len(u.conns)).Warn("socket receive buffer is smaller than socket-receive-buffer asks; bursts may be dropped by the kernel (raise net.core.rmem_max)")
	}
	inodes := make([]uint64, 0, len(u.conns))
	for _, c := range u.conns {
		dr, err := newDatagramReader(c, opts.BatchSize, max(opts.DatagramSize, 512))
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("cannot read udp %q: %w", opts.Addr, err)
		}
		u.rds = append(u.rds, dr)
		ino, err := SocketInode(c)
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("cannot identify udp socket %q: %w", opts.Addr, err)
		}
		inodes = append(inodes, ino)
	}
	u.drops = newKernelDrops(ProcNetUDP(), inodes)
	if reg != nil {
		if err := reg.Register(u.drops.collector()); err != nil {
			u.Close()
			return nil, fmt.Errorf("cannot register udp kernel drops metric: %w", err)
		}
	}
	return u, nil
}

// KernelDrops returns the datagrams the kernel dropped so far on the
// receiver's sockets because they were full (see ReadUDPDrops). Safe for
// concurrent use; it reads /proc, so call it at most every few seconds.
func (u *UDP) KernelDrops() (uint64, error) { return u.drops.Total() }

// Addr is the bound address (useful with port 0).
func (u *UDP) Addr() net.Addr { return u.conns[0].LocalAddr() }

// Close closes the sockets. Run closes them itself when it returns.
func (u *UDP) Close() {
	for _, c := range u.conns {
		_ = c.Close()
	}
}

// Run reads until ctx is cancelled, then keeps reading for a short drain
// period (what the kernel already queued), closes the sockets and returns nil
// once every reader has handed its last batch to the aggregator.
func (u *UDP) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range u.conns {
		wg.Go(func() {
			u.reading.Add(1)
			defer u.reading.Add(-1)
			readDatagrams(u.rds[i], u.lines.NewHandler("udp"), u.log.WithField("reader", i))
		})
	}
	wg.Go(func() {
		u.watchDrops(ctx, dropCheckInterval)
	})
	<-ctx.Done()
	for _, c := range u.conns {
		_ = c.SetReadDeadline(time.Now().Add(drainTime))
	}
	wg.Wait()
	u.Close()
	return nil
}

// readDatagrams reads batches of datagrams into r until the socket is closed
// or its read deadline passes, handing r's samples over after every read.
// Other read errors are logged and retried with a backoff from 5 ms to 1 s.
func readDatagrams(dr datagramReader, r *LineHandler, log logrus.FieldLogger) {
	backoff := 5 * time.Millisecond
	for {
		n, err := dr.read()
		for i := 0; i < n; i++ {
			r.HandleDatagram(dr.datagram(i))
		}
		if n > 0 {
			r.Handoff()
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			log.WithError(err).Warn("read failed; retrying")
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
	}
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// setReceiveBuffer asks for SO_RCVBUF (forcing past rmem_max when allowed)
// and returns an error when the kernel grants less.
func setReceiveBuffer(c *net.UDPConn, want int) error {
	if want <= 0 {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var got int
	cerr := rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
		got, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	// Linux reports twice the usable size it granted.
	if got/2 < want {
		return fmt.Errorf("asked for %d bytes, kernel granted %d", want, got/2)
	}
	return nil
}

// IsUnixPath reports whether a metrics-addr names a unix socket path rather
// than host:port.
func IsUnixPath(addr string) bool {
	return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "./") || strings.HasPrefix(addr, "unix:")
}
