//go:build linux

package receiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// ProcNetUDP returns the kernel tables of the UDP sockets of this process's
// network namespace; their drops column counts, per socket, the datagrams the
// kernel discarded because the receive queue was full (or a filter or
// checksum rejected them).
func ProcNetUDP() []string { return []string{"/proc/net/udp", "/proc/net/udp6"} }

// ReadUDPDrops returns the kernel's drop counter of every socket in inodes
// found in the /proc/net/udp-format tables at paths. A socket that is not
// listed (closed, or in another table) is absent from the result. A missing
// table is skipped (no IPv6); it is an error only when no table can be read.
func ReadUDPDrops(paths []string, inodes map[uint64]bool) (map[uint64]uint64, error) {
	out := make(map[uint64]uint64, len(inodes))
	var firstErr error
	read := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		err = parseUDPDrops(f, inodes, out)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot parse %q: %w", p, err)
		}
		read++
	}
	if read == 0 && firstErr != nil {
		return nil, fmt.Errorf("cannot read the kernel's udp socket table: %w", firstErr)
	}
	return out, nil
}

// parseUDPDrops reads one /proc/net/udp table:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
//
// and records the drops of the sockets in inodes into out.
func parseUDPDrops(r io.Reader, inodes map[uint64]bool, out map[uint64]uint64) error {
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if len(f) < 13 {
			return fmt.Errorf("udp socket table line %q: %d fields, want 13", sc.Text(), len(f))
		}
		inode, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil {
			return fmt.Errorf("udp socket table inode %q: %w", f[9], err)
		}
		if !inodes[inode] {
			continue
		}
		drops, err := strconv.ParseUint(string(f[12]), 10, 64)
		if err != nil {
			return fmt.Errorf("udp socket table drops %q: %w", f[12], err)
		}
		out[inode] += drops
	}
	return sc.Err()
}

// SocketInode returns the inode number that identifies c's socket in
// /proc/net/udp and in /proc/<pid>/fd (socket:[inode]).
func SocketInode(c *net.UDPConn) (uint64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("cannot stat socket: %w", serr)
	}
	return st.Ino, nil
}

// kernelDrops sums the kernel drop counters of a fixed set of sockets. The
// sum never goes down: a socket that disappears from the table (closed at
// shutdown) keeps the last count seen. Safe for concurrent use.
type kernelDrops struct {
	paths  []string
	inodes map[uint64]bool

	mu   sync.Mutex
	last map[uint64]uint64
}

func newKernelDrops(paths []string, inodes []uint64) *kernelDrops {
	k := &kernelDrops{paths: paths, inodes: make(map[uint64]bool, len(inodes)), last: make(map[uint64]uint64, len(inodes))}
	for _, i := range inodes {
		k.inodes[i] = true
	}
	return k
}

// Total reads the table and returns the drops of all the sockets so far, and
// the read error if the table could not be read (the total is then the last
// one known).
func (k *kernelDrops) Total() (uint64, error) {
	cur, err := ReadUDPDrops(k.paths, k.inodes)
	k.mu.Lock()
	defer k.mu.Unlock()
	for ino, d := range cur {
		if d > k.last[ino] {
			k.last[ino] = d
		}
	}
	var sum uint64
	for _, d := range k.last {
		sum += d
	}
	return sum, err
}

// collector exports the sum as garner_receiver_kernel_drops_total{receiver="udp"}.
func (k *kernelDrops) collector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "garner_receiver_kernel_drops_total",
		Help:        "Datagrams the kernel dropped on garner's sockets before garner read them (receive queue full), from the drops column of /proc/net/udp. Raise socket-receive-buffer or max-readers when it grows.",
		ConstLabels: prometheus.Labels{"receiver": "udp"},
	}, func() float64 {
		n, _ := k.Total()
		return float64(n)
	})
}

// dropCheckInterval is how often a running UDP receiver looks at its kernel
// drop counter to warn about it: at most one log line per interval.
const dropCheckInterval = time.Minute

// watchDrops logs a warning each interval in which the kernel dropped
// datagrams, and once if the counter cannot be read. It returns when ctx is
// done.
func (u *UDP) watchDrops(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	warned := false
	check := func(prev uint64) uint64 {
		n, err := u.drops.Total()
		if err != nil && !warned {
			u.log.WithError(err).Warn("cannot read the kernel's udp drop counters; garner_receiver_kernel_drops_total stays at its last known value")
			warned = true
		}
		if n > prev {
			u.log.WithFields(logrus.Fields{"dropped_datagrams": n - prev, "interval": every.String()}).
				Warn("the kernel dropped datagrams because garner's udp sockets were full; raise socket-receive-buffer or max-readers")
		}
		return n
	}
	prev := check(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			prev = check(prev)
		}
	}
}
