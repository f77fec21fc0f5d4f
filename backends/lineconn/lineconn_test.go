package lineconn

// The graphite backend's tests cover the queue through a real client: the
// bound, partial writes, reconnecting after the peer closed. These cover
// what graphite does not use: datagrams, no queue, counters, options.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

func counter(name string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: name})
}

func allCounters() Counters {
	return Counters{Connects: counter("connects"), Writes: counter("writes"), WrittenBytes: counter("bytes"), Errors: counter("errors"),
		DroppedBatches: counter("dropped_batches"), DroppedBytes: counter("dropped_bytes"), DroppedSeries: counter("dropped_series")}
}

func newConn(t *testing.T, opts Options, ctr Counters) *Conn {
	t.Helper()
	log, _ := logtest.NewNullLogger()
	c, err := New(opts, ctr, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// listenTCP listens on a loopback port until the test ends.
func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func options(network, addr string, maxBuffer int) Options {
	o := DefaultOptions()
	o.Network, o.Address, o.DialTimeout, o.WriteTimeout, o.MaxBufferSize = network, addr, time.Second, 5*time.Second, maxBuffer
	return o
}

// counts reads the counters that are set, by name.
func counts(ctr Counters) map[string]float64 {
	out := map[string]float64{}
	for _, c := range []prometheus.Counter{ctr.Connects, ctr.Writes, ctr.WrittenBytes, ctr.Errors, ctr.DroppedBatches, ctr.DroppedBytes, ctr.DroppedSeries} {
		if c != nil {
			out[c.Desc().String()] = testutil.ToFloat64(c)
		}
	}
	return out
}

func checkCounts(t *testing.T, ctr Counters, want map[prometheus.Counter]float64) {
	t.Helper()
	for c, w := range want {
		if got := testutil.ToFloat64(c); got != w {
			t.Errorf("%s = %v, want %v (all: %v)", c.Desc(), got, w, counts(ctr))
		}
	}
}

// TestCloseDropsWhatIsQueued: at shutdown, data queued for a peer that is
// down will never be written: Close counts it as dropped and says so.
func TestCloseDropsWhatIsQueued(t *testing.T) {
	ctr := allCounters()
	log, hook := logtest.NewNullLogger()
	c, err := New(options("tcp", garnertest.FreeAddr(t), 1<<20), ctr, log)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Begin(context.Background())
	b.Send([]byte("a 1 1\nb 1 1\n"), 2)
	b.Send([]byte("c 1 1\n"), 1)
	if r := b.End(); !r.Dial || r.Kept != 18 || r.DroppedSeries != 0 {
		t.Fatalf("result %+v, want a dial error and 18 bytes kept", r)
	}
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.DroppedSeries: 0, ctr.DroppedBytes: 0})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.DroppedBatches: 1, ctr.DroppedBytes: 18, ctr.DroppedSeries: 3})
	e := hook.LastEntry()
	if e == nil || e.Data["series"] != 3 || e.Data["bytes"] != 18 {
		t.Fatalf("log %+v, want a warning with series=3 bytes=18", e)
	}
	_ = c.Close() // a second Close drops nothing more
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.DroppedSeries: 3})
}

func TestNew(t *testing.T) {
	if _, err := New(Options{Network: "unix", Address: "x"}, Counters{}, nil); err == nil {
		t.Error("network unix accepted")
	}
	c, err := New(Options{Address: "127.0.0.1:1"}, Counters{}, nil)
	if err != nil || c.opts.Network != "tcp" {
		t.Errorf("empty network: %v, %q; want tcp", err, c.opts.Network)
	}
}

// TestTCPBatches: chunks arrive in order on one persistent connection, and
// are counted.
func TestTCPBatches(t *testing.T) {
	l := listenTCP(t)
	ctr := allCounters()
	c := newConn(t, options("tcp", l.Addr().String(), 0), ctr)
	var want []byte
	for i := range 3 {
		b := c.Begin(context.Background())
		for j := range 2 {
			p := []byte(fmt.Sprintf("batch%d.chunk%d 1 1700000000\n", i, j))
			want = append(want, p...)
			b.Send(p, 1)
		}
		b.Send(nil, 0) // nothing to write
		if r := b.End(); r.Err != nil || r.Kept != 0 || r.DroppedSeries != 0 {
			t.Fatalf("batch %d: %+v", i, r)
		}
	}
	_ = c.Close()
	// The kernel completed the connection and holds what was written (a
	// few lines) until it is accepted and read.
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(conn); string(b) != string(want) {
		t.Errorf("peer got %q (%v), want %q", b, err, want)
	}
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.Connects: 1, ctr.Writes: 6, ctr.WrittenBytes: float64(len(want)), ctr.Errors: 0, ctr.DroppedSeries: 0})
}

// TestNothingKept: without a buffer, what cannot be written is dropped and
// counted, and a dead peer costs one dial per batch.
func TestNothingKept(t *testing.T) {
	ctr := allCounters()
	c := newConn(t, options("tcp", fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)), 0), ctr)
	for range 2 {
		b := c.Begin(context.Background())
		b.Send([]byte("a 1 1\nb 1 1\n"), 2)
		b.Send([]byte("c 1 1\n"), 1)
		r := b.End()
		if !r.Dial || r.Err == nil || r.Kept != 0 || r.DroppedSeries != 3 || r.DroppedBytes != 18 {
			t.Errorf("result %+v, want a dial error and 3 series / 18 bytes dropped", r)
		}
	}
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.Connects: 0, ctr.Errors: 2, ctr.DroppedBatches: 2, ctr.DroppedBytes: 36, ctr.DroppedSeries: 6, ctr.Writes: 0})
}

// TestContextDone: a batch whose context is done writes nothing; with a
// buffer its data waits for the next batch.
func TestContextDone(t *testing.T) {
	ctr := Counters{DroppedSeries: counter("dropped_series")} // the others nil: not counted
	c := newConn(t, options("tcp", fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)), 1<<20), ctr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := c.Begin(ctx)
	b.Send([]byte("a 1 1\n"), 1)
	if r := b.End(); !errors.Is(r.Err, context.Canceled) || r.Dial || r.Kept != 6 {
		t.Errorf("result %+v, want context.Canceled and 6 bytes kept", r)
	}
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.DroppedSeries: 0})
}

// TestUDPDatagrams: every chunk is one datagram, as it is.
func TestUDPDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctr := allCounters()
	c := newConn(t, options("udp", pc.LocalAddr().String(), 1<<20), ctr)
	b := c.Begin(context.Background())
	want := []string{"a:1|c\nb:2|c", "c:3|g"}
	for _, d := range want {
		b.Send([]byte(d), 1)
	}
	if r := b.End(); r.Err != nil {
		t.Fatal(r.Err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for _, w := range want {
		n, _, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != w {
			t.Fatalf("datagram %q, %v; want %q", buf[:n], err, w)
		}
	}
	checkCounts(t, ctr, map[prometheus.Counter]float64{ctr.Connects: 1, ctr.Writes: 2, ctr.WrittenBytes: 16})
}

// TestWriteBuffer: write_buffer pins the connection's SO_SNDBUF (the
// kernel doubles what it is asked for).
func TestWriteBuffer(t *testing.T) {
	l := listenTCP(t) // the kernel completes the connection: no need to accept it
	opts := options("tcp", l.Addr().String(), 0)
	opts.WriteBuffer = 32 << 10
	c := newConn(t, opts, Counters{})
	b := c.Begin(context.Background())
	b.Send([]byte("a 1 1\n"), 1)
	if r := b.End(); r.Err != nil {
		t.Fatal(r.Err)
	}
	raw, err := c.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if got < opts.WriteBuffer || got > 2*opts.WriteBuffer {
		t.Errorf("SO_SNDBUF = %d, want %d..%d", got, opts.WriteBuffer, 2*opts.WriteBuffer)
	}
}
