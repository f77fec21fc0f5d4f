package graphite_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/backends/graphite"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// newClient builds a basic-mode backend for addr with a fresh registry.
func newClient(t *testing.T, addr string, maxBuffer int, writeTimeout time.Duration) (*graphite.Client, *prometheus.Registry, prometheus.Counter) {
	t.Helper()
	return newModeClient(t, "basic", addr, maxBuffer, writeTimeout)
}

func newModeClient(t testing.TB, mode, addr string, maxBuffer int, writeTimeout time.Duration) (*graphite.Client, *prometheus.Registry, prometheus.Counter) {
	t.Helper()
	return newOptsClient(t, testOptions(mode, addr, maxBuffer, writeTimeout))
}

// testOptions are the default options but for these and a 1s dial timeout.
func testOptions(mode, addr string, maxBuffer int, writeTimeout time.Duration) graphite.Options {
	o := graphite.DefaultOptions()
	o.Address, o.Mode, o.MaxBufferSize, o.DialTimeout, o.WriteTimeout = addr, mode, maxBuffer, time.Second, writeTimeout
	return o
}

func newOptsClient(t testing.TB, opts graphite.Options) (*graphite.Client, *prometheus.Registry, prometheus.Counter) {
	t.Helper()
	deps, reg, dropped := garnertest.BackendDeps()
	c, err := graphite.New(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, reg, dropped
}

// counterSnapshot has n counters, m000000..., each with value v, at second ts.
func counterSnapshot(n int, v float64, ts int64) *model.Snapshot {
	s := &model.Snapshot{Time: time.Unix(ts, 0), Interval: 10 * time.Second}
	for i := 0; i < n; i++ {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{Name: fmt.Sprintf("m%06d", i)}, Value: v, PerSecond: v / 10})
	}
	return s
}

// listen listens on addr until the test ends: "127.0.0.1:0" for a new
// port, or the address of an earlier listener, when the test is skipped
// if another process took it meanwhile. rcvbuf > 0 pins the socket receive
// buffer (SO_RCVBUF, see garnertest.ListenTCP), so a peer that does not
// read pushes back after a known, small number of bytes instead of the
// kernel's autotuned tens of MiB.
func listen(t testing.TB, addr string, rcvbuf int) net.Listener {
	t.Helper()
	l, err := garnertest.ListenTCP(addr, rcvbuf)
	switch {
	case err != nil && strings.HasSuffix(addr, ":0"):
		t.Fatal(err)
	case err != nil:
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// accept accepts one connection on l; the channel is closed if none comes.
func accept(l net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- conn
	}()
	return ch
}

// readAll accepts one connection on l and returns everything read from it
// until the sender closes it.
func readAll(l net.Listener) <-chan []byte {
	return readOne(l, func(conn net.Conn) []byte {
		b, _ := io.ReadAll(conn)
		return b
	})
}

// readOne accepts one connection on l and returns what read reads from it
// (bounded by 20s), or nil if none comes.
func readOne(l net.Listener, read func(net.Conn) []byte) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		conn, ok := <-accept(l)
		if !ok {
			ch <- nil
			return
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		ch <- read(conn)
	}()
	return ch
}

// TestBufferBoundedWhileDown: while carbon is unreachable every flush is
// kept, up to max_buffer_size bytes; beyond it the oldest flush is dropped and
// counted. When carbon is back, what is kept arrives, oldest first.
func TestBufferBoundedWhileDown(t *testing.T) {
	addr := garnertest.FreeAddr(t)
	probe, _, _ := newClient(t, addr, 1, time.Second)
	size := len(probe.Format(nil, counterSnapshot(2, 1, 1700000001)))
	c, reg, droppedSeries := newClient(t, addr, 2*size+size/2, time.Second) // room for two flushes

	for i := int64(1); i <= 5; i++ {
		if err := c.SendMetrics(context.Background(), counterSnapshot(2, float64(i), 1700000000+i)); err == nil {
			t.Fatalf("flush %d: no error with carbon down", i)
		}
	}
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"dropped flushes", garnertest.Gathered(t, reg, "garner_graphite_dropped_flushes_total"), 3},
		{"dropped bytes", garnertest.Gathered(t, reg, "garner_graphite_dropped_bytes_total"), float64(3 * size)},
		{"dropped series", testutil.ToFloat64(droppedSeries), 6},
		{"connects", garnertest.Gathered(t, reg, "garner_graphite_connects_total"), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	got := readAll(listen(t, addr, 0))
	if err := c.SendMetrics(context.Background(), counterSnapshot(2, 6, 1700000006)); err != nil {
		t.Fatalf("flush with carbon up: %v", err)
	}
	_ = c.Close()
	// Kept: flushes 4 and 5, written ahead of the 6th, which goes straight
	// out behind them.
	var want []byte
	for i := int64(4); i <= 6; i++ {
		want = c.Format(want, counterSnapshot(2, float64(i), 1700000000+i))
	}
	if s := string(<-got); s != string(want) {
		t.Errorf("carbon got\n%s\nwant\n%s", s, want)
	}
	if n := garnertest.Gathered(t, reg, "garner_graphite_dropped_flushes_total"); n != 3 {
		t.Errorf("dropped flushes = %v, want still 3", n)
	}
}

// TestPartialWriteResendsWholeLine: a write that times out part way leaves
// carbon a line without its end, which carbon discards with the connection.
// The rest must be resent from the start of that line: carbon must never get
// the tail of a line as a line of its own (a wrong name with a value).
func TestPartialWriteResendsWholeLine(t *testing.T) {
	// Both socket buffers pinned small (carbon's receive buffer on the
	// listener, garner's send buffer with write_buffer): autotuned, they
	// could hold the whole payload.
	l := listen(t, "127.0.0.1:0", 16<<10)
	opts := testOptions("basic", l.Addr().String(), 1<<30, 300*time.Millisecond)
	opts.WriteBuffer = 16 << 10
	c, _, _ := newOptsClient(t, opts)
	// Far more than the pinned socket buffers hold while nobody reads (~45
	// bytes a line): the write times out part way.
	snap := counterSnapshot(20000, 1, 1700000000)
	payload := c.Format(nil, snap)

	accepted := accept(l)
	if err := c.SendMetrics(context.Background(), snap); err == nil {
		t.Fatal("no write timeout: the payload fit in the socket buffers")
	}
	first, ok := <-accepted
	if !ok {
		t.Fatal("no connection")
	}
	_ = first.SetReadDeadline(time.Now().Add(20 * time.Second))
	data1, _ := io.ReadAll(first) // the backend closed it after the timeout
	_ = first.Close()
	if len(data1) == 0 || len(data1) >= len(payload) {
		t.Fatalf("first connection got %d of %d bytes, want a part", len(data1), len(payload))
	}

	got := readAll(l)
	if err := c.SendMetrics(context.Background(), &model.Snapshot{Time: snap.Time}); err != nil {
		t.Fatalf("resend: %v", err)
	}
	_ = c.Close()
	data2 := <-got

	whole := data1[:bytes.LastIndexByte(data1, '\n')+1] // carbon drops the unfinished line
	if !bytes.HasPrefix(payload, whole) {
		t.Fatal("first connection got something else than the payload's start")
	}
	if rest := payload[len(whole):]; !bytes.Equal(data2, rest) {
		first, _, _ := strings.Cut(string(data2), "\n")
		t.Errorf("second connection got %d bytes starting %q; want the %d bytes from the start of the cut line %q",
			len(data2), first, len(rest), strings.SplitN(string(rest), "\n", 2)[0])
	}
}

// TestReconnectAfterCarbonClosed: after carbon closed the connection (a
// restart), the next flush goes on a new connection instead of into the old
// one, where the kernel would take it and carbon never see it.
func TestReconnectAfterCarbonClosed(t *testing.T) {
	l := listen(t, "127.0.0.1:0", 0)
	c, reg, _ := newClient(t, l.Addr().String(), 1<<20, time.Second)
	first := counterSnapshot(1, 1, 1700000001)
	want1 := c.Format(nil, first)

	accepted := accept(l)
	if err := c.SendMetrics(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(10 * time.Second):
	}
	if conn == nil {
		t.Fatal("no connection")
	}
	buf := make([]byte, len(want1))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, buf); err != nil || !bytes.Equal(buf, want1) {
		t.Fatalf("first flush: %q, %v", buf, err)
	}
	local, remote := conn.LocalAddr(), conn.RemoteAddr()
	_ = conn.Close()                                 // carbon goes away...
	waitFINAcked(t, local.String(), remote.String()) // ...and the backend's side has its FIN

	got := readAll(l) // ...and is back
	second := counterSnapshot(1, 2, 1700000002)
	if err := c.SendMetrics(context.Background(), second); err != nil {
		t.Fatalf("second flush: %v", err)
	}
	_ = c.Close()
	select {
	case b := <-got:
		if want := c.Format(nil, second); !bytes.Equal(b, want) {
			t.Errorf("new connection got %q, want %q", b, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second flush never reached carbon: written into the closed connection")
	}
	if n := garnertest.Gathered(t, reg, "garner_graphite_connects_total"); n != 2 {
		t.Errorf("connects = %v, want 2", n)
	}
}

// waitFINAcked waits (up to 10s) until the peer's kernel has acknowledged
// the FIN of the closed connection local→remote (IPv4): /proc/net/tcp shows
// it past FIN_WAIT1. From then on the peer's socket reads EOF.
func waitFINAcked(t *testing.T, local, remote string) {
	t.Helper()
	hex := func(hostport string) string {
		ap := netip.MustParseAddrPort(hostport)
		ip := ap.Addr().As4()
		return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ip[:]), ap.Port())
	}
	want := hex(local) + " " + hex(remote) + " "
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		// The closed socket stays listed (FIN_WAIT2, then TIME_WAIT) until
		// well after the test.
		if i := strings.Index(string(b), want); i >= 0 && string(b[i+len(want):i+len(want)+2]) != "04" { // TCP_FIN_WAIT1
			return
		}
	}
	t.Fatalf("the FIN of the closed connection %s→%s was never acknowledged", local, remote)
}

// TestFormatWhatCarbonTakes: carbon decodes each line as UTF-8 and takes
// lines of up to 16384 bytes; on anything else it drops the connection and
// the rest of the flush with it. Invalid UTF-8 is replaced, longer lines are
// left out (and counted), and the other series are untouched.
func TestFormatWhatCarbonTakes(t *testing.T) {
	const ts = 1700000000
	// "stats.gauges.g;k=" + v + ";host=h 1.000000 1700000000" is 44 bytes
	// besides v.
	fits, over := strings.Repeat("x", graphite.MaxLineLength-44), strings.Repeat("x", graphite.MaxLineLength-43)
	cases := []struct {
		name   string
		tags   []string
		source string
		want   string // the gauge's line; "" = left out
	}{
		{"valid UTF-8 as it is", []string{"k:é€"}, "h", "stats.gauges.g;k=é€;host=h 1.000000 1700000000\n"},
		{"invalid value", []string{"k:a\xffb"}, "h", "stats.gauges.g;k=a\uFFFDb;host=h 1.000000 1700000000\n"},
		{"invalid key", []string{"\xfe\xff:v"}, "h", "stats.gauges.g;\uFFFD=v;host=h 1.000000 1700000000\n"},
		{"invalid bare tag", []string{"\xc3"}, "h", "stats.gauges.g;unnamed=\uFFFD;host=h 1.000000 1700000000\n"},
		{"invalid source", nil, "h\xff", "stats.gauges.g;host=h\uFFFD 1.000000 1700000000\n"},
		{"longest line carbon takes", []string{"k:" + fits}, "h", "stats.gauges.g;k=" + fits + ";host=h 1.000000 1700000000\n"},
		{"one byte longer", []string{"k:" + over}, "h", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := newModeClient(t, "tags", garnertest.FreeAddr(t), 1<<20, time.Second)
			snap := &model.Snapshot{Time: time.Unix(ts, 0), Gauges: []model.Gauge{
				{Series: model.Series{Name: "a", Source: "h"}, Value: 2},
				{Series: model.Series{Name: "g", Tags: tc.tags, Source: tc.source}, Value: 1},
				{Series: model.Series{Name: "z", Source: "h"}, Value: 3},
			}}
			want := "stats.gauges.a;host=h 2.000000 1700000000\n" + tc.want + "stats.gauges.z;host=h 3.000000 1700000000\n"
			if got := string(c.Format(nil, snap)); got != want {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestSkippedLinesCounted: a series whose lines are too long for carbon is
// counted once in the dropped series, each line in skipped lines, and the
// rest of the flush is delivered.
func TestSkippedLinesCounted(t *testing.T) {
	l := listen(t, "127.0.0.1:0", 0)
	c, reg, droppedSeries := newModeClient(t, "tags", l.Addr().String(), 1<<20, time.Second)
	long := "k:" + strings.Repeat("x", graphite.MaxLineLength)
	snap := &model.Snapshot{Time: time.Unix(1700000000, 0),
		Counters: []model.Counter{
			{Series: model.Series{Name: "long", Tags: []string{long}}, Value: 1, PerSecond: 0.1},
			{Series: model.Series{Name: "ok"}, Value: 1, PerSecond: 0.1},
		},
		Timers: []model.Timer{{Series: model.Series{Name: "long", Tags: []string{long}}, Count: 1, Percentiles: []model.Percentile{{Name: "upper_90", Value: 1}}}},
	}
	got := readAll(l)
	if err := c.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if s, want := string(<-got), "stats.counters.ok.count 1 1700000000\nstats.counters.ok.rate 0.100000 1700000000\n"; s != want {
		t.Errorf("carbon got %q, want %q", s, want)
	}
	// 2 counter lines + 9 timer stats + 1 percentile.
	if n := garnertest.Gathered(t, reg, "garner_graphite_skipped_lines_total"); n != 12 {
		t.Errorf("skipped lines = %v, want 12", n)
	}
	if n := testutil.ToFloat64(droppedSeries); n != 2 {
		t.Errorf("dropped series = %v, want 2", n)
	}
}
