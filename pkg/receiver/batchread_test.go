//go:build linux

package receiver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/garnertest"
)

// readerImpls are the datagram readers to test side by side.
func readerImpls() map[string]func(c *net.UDPConn, batch, size int) (datagramReader, error) {
	return map[string]func(c *net.UDPConn, batch, size int) (datagramReader, error){
		"platform": func(c *net.UDPConn, batch, size int) (datagramReader, error) {
			return newDatagramReader(c, batch, size)
		},
		"xnet": func(c *net.UDPConn, batch, size int) (datagramReader, error) {
			return newXnetReader(c, batch, size), nil
		},
	}
}

func listenUDP(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	c := pc.(*net.UDPConn)
	if err := setReceiveBuffer(c, 4<<20); err != nil {
		t.Logf("receive buffer: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDatagramReaders(t *testing.T) {
	tests := []struct {
		name      string
		network   string
		listen    string
		dial      string // sender's local address
		payloads  []string
		batch     int
		size      int
		wantSrc   netip.Addr
		wantTrunc []bool
	}{
		{
			name: "ipv4, more datagrams than a batch", network: "udp4", listen: "127.0.0.1:0", dial: "127.0.0.1:0",
			payloads: []string{"a:1|c", "b:2|c\nc:3|g", "d:4|ms", "e:5|s", "f:6|h"}, batch: 2, size: 512,
			wantSrc: netip.MustParseAddr("127.0.0.1"), wantTrunc: []bool{false, false, false, false, false},
		},
		{
			name: "ipv6", network: "udp6", listen: "[::1]:0", dial: "[::1]:0",
			payloads: []string{"a:1|c", "b:1|c"}, batch: 8, size: 512,
			wantSrc: netip.MustParseAddr("::1"), wantTrunc: []bool{false, false},
		},
		{
			name: "ipv4 sender on a dual-stack socket is unmapped", network: "udp", listen: "[::]:0", dial: "127.0.0.1:0",
			payloads: []string{"a:1|c"}, batch: 8, size: 512,
			wantSrc: netip.MustParseAddr("127.0.0.1"), wantTrunc: []bool{false},
		},
		{
			name: "truncated datagram", network: "udp4", listen: "127.0.0.1:0", dial: "127.0.0.1:0",
			payloads: []string{strings.Repeat("x", 600), "short:1|c"}, batch: 8, size: 512,
			wantSrc: netip.MustParseAddr("127.0.0.1"), wantTrunc: []bool{true, false},
		},
	}
	for impl, newReader := range readerImpls() {
		for _, tc := range tests {
			t.Run(impl+"/"+tc.name, func(t *testing.T) {
				c := listenUDP(t, tc.network, tc.listen)
				dr, err := newReader(c, tc.batch, tc.size)
				if err != nil {
					t.Fatal(err)
				}
				port := c.LocalAddr().(*net.UDPAddr).Port
				target := net.JoinHostPort(tc.wantSrc.String(), fmt.Sprint(port))
				laddr, _ := net.ResolveUDPAddr("udp", tc.dial)
				raddr, _ := net.ResolveUDPAddr("udp", target)
				s, err := net.DialUDP("udp", laddr, raddr)
				if err != nil {
					t.Skipf("cannot send from %s to %s: %v", tc.dial, target, err)
				}
				defer s.Close()
				for _, p := range tc.payloads {
					if _, err := s.Write([]byte(p)); err != nil {
						t.Fatal(err)
					}
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				var got []string
				for len(got) < len(tc.payloads) {
					n, err := dr.read()
					if err != nil {
						t.Fatalf("after %d datagrams: %v", len(got), err)
					}
					if n > tc.batch {
						t.Fatalf("read %d datagrams into a batch of %d", n, tc.batch)
					}
					for i := 0; i < n; i++ {
						b, src, trunc := dr.datagram(i)
						k := len(got)
						if src != tc.wantSrc {
							t.Errorf("datagram %d from %v, want %v", k, src, tc.wantSrc)
						}
						if trunc != tc.wantTrunc[k] {
							t.Errorf("datagram %d truncated = %v, want %v", k, trunc, tc.wantTrunc[k])
						}
						want := tc.payloads[k]
						if trunc {
							want = want[:tc.size]
						}
						if string(b) != want {
							t.Errorf("datagram %d = %q, want %q", k, b, want)
						}
						got = append(got, string(b))
					}
				}
				// Nothing more: the deadline ends the read with a timeout.
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if n, err := dr.read(); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read on an empty socket past its deadline = %d, %v; want 0, deadline exceeded", n, err)
				}
				_ = c.Close()
				if _, err := dr.read(); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
				}
			})
		}
	}
}

func TestSockaddrAddr(t *testing.T) {
	v4 := make([]byte, unix.SizeofSockaddrInet4)
	putFamily(v4, unix.AF_INET)
	copy(v4[4:8], []byte{10, 1, 2, 3})
	v6 := make([]byte, unix.SizeofSockaddrInet6)
	putFamily(v6, unix.AF_INET6)
	copy(v6[8:24], netip.MustParseAddr("2001:db8::7").AsSlice())
	mapped := make([]byte, unix.SizeofSockaddrInet6)
	putFamily(mapped, unix.AF_INET6)
	copy(mapped[8:24], netip.MustParseAddr("::ffff:192.0.2.1").AsSlice())
	unknown := make([]byte, 16)
	putFamily(unknown, unix.AF_UNIX)
	tests := []struct {
		name string
		b    []byte
		want netip.Addr
	}{
		{"ipv4", v4, netip.MustParseAddr("10.1.2.3")},
		{"ipv6", v6, netip.MustParseAddr("2001:db8::7")},
		{"ipv4-mapped ipv6", mapped, netip.MustParseAddr("192.0.2.1")},
		{"short ipv6", v6[:10], netip.Addr{}},
		{"other family", unknown, netip.Addr{}},
		{"empty", nil, netip.Addr{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sockaddrAddr(tc.b); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlatformReaderDoesNotAllocate(t *testing.T) {
	c := listenUDP(t, "udp4", "127.0.0.1:0")
	dr, err := newDatagramReader(c, 4, 512)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dr.(*xnetReader); ok {
		t.Skip("no recvmmsg reader on this platform")
	}
	s := garnertest.Dial(t, "udp", c.LocalAddr().String())
	const runs = 50
	for i := 0; i < 4*(runs+1); i++ {
		if _, err := s.Write([]byte("a.b:1|c")); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var read int
	allocs := testing.AllocsPerRun(runs, func() {
		n, err := dr.read()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			b, src, _ := dr.datagram(i)
			if len(b) == 0 || !src.IsValid() {
				t.Fatalf("datagram %q from %v", b, src)
			}
		}
		read += n
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per read of %d datagrams, want 0", allocs, read/(runs+1))
	}
}

// TestUDPRunDeliversAndDrains sends through the whole receiver: what was
// sent before the cancel is read (drain) and flushed with its source.
func TestUDPRunDeliversAndDrains(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := logrus.New()
	log.SetOutput(os.Stderr)
	agg := aggregator.New(aggregator.Options{Shards: 2, MaxQueuedSamples: 4096}, log, reg)
	aggCtx, stopAgg := context.WithCancel(context.Background())
	aggDone := make(chan error, 1)
	go func() { aggDone <- agg.Run(aggCtx) }()
	defer func() { stopAgg(); <-aggDone }()

	u, err := ListenUDP(UDPOptions{Addr: "127.0.0.1:0", Readers: 2, BatchSize: 4, DatagramSize: 512, ReceiveBuffer: 1 << 20}, NewLines(Options{}, agg, nil, log, reg), log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- u.Run(ctx) }()

	s := garnertest.Dial(t, "udp", u.Addr().String())
	const datagrams = 200
	var payload bytes.Buffer
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&payload, "run.c%d:1|c\n", i)
	}
	for i := 0; i < datagrams; i++ {
		if _, err := s.Write(payload.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	cancel()
	if err := garnertest.Receive(t, "Run did not return after cancel", 10*time.Second, runDone); err != nil {
		t.Fatal(err)
	}
	snap, err := agg.Snapshot(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Counters) != 10 {
		t.Fatalf("%d counters, want 10: %+v", len(snap.Counters), snap.Counters)
	}
	for _, c := range snap.Counters {
		if c.Value != datagrams || c.Source != "127.0.0.1" {
			t.Errorf("counter %s = %v from %q, want %d from 127.0.0.1", c.Name, c.Value, c.Source, datagrams)
		}
	}
}

// BenchmarkDatagramRead reads datagrams queued on a loopback socket; one op
// is one datagram. Filling the socket is not timed.
func BenchmarkDatagramRead(b *testing.B) {
	const batch = 64
	for _, impl := range []string{"xnet", "platform"} {
		b.Run("impl="+impl, func(b *testing.B) {
			c := listenUDP(b, "udp4", "127.0.0.1:0")
			dr, err := readerImpls()[impl](c, batch, 65536)
			if err != nil {
				b.Fatal(err)
			}
			s, err := net.Dial("udp", c.LocalAddr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			payload := []byte(strings.Repeat("bench.metric.name:1|c\n", 3))
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			b.ReportAllocs()
			b.ResetTimer()
			queued := 0
			var sink int
			for done := 0; done < b.N; {
				if queued == 0 {
					b.StopTimer()
					for i := 0; i < 16*batch; i++ {
						if _, err := s.Write(payload); err != nil {
							b.Fatal(err)
						}
					}
					queued = 16 * batch
					b.StartTimer()
				}
				n, err := dr.read()
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < n; i++ {
					d, src, _ := dr.datagram(i)
					sink += len(d) + int(src.BitLen())
				}
				done += n
				queued -= n
			}
			if sink == 0 {
				b.Fatal("nothing read")
			}
		})
	}
}

// xnetReader reads with golang.org/x/net's ReadBatch: the reference the
// recvmmsg reader is tested and benchmarked against. It allocates the
// sender address of every datagram; the recvmmsg reader does not.
type xnetReader struct {
	br interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
}

func newXnetReader(c *net.UDPConn, batch, size int) *xnetReader {
	r := &xnetReader{msgs: make([]ipv4.Message, max(batch, 1))}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil && la.IP != nil && !la.IP.IsUnspecified() {
		r.br = ipv6.NewPacketConn(c)
	} else {
		r.br = ipv4.NewPacketConn(c)
	}
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{make([]byte, size)}
	}
	return r
}

func (r *xnetReader) read() (int, error) {
	n, err := r.br.ReadBatch(r.msgs, 0)
	return max(n, 0), err // ReadBatch says -1 with some errors
}

func (r *xnetReader) datagram(i int) ([]byte, netip.Addr, bool) {
	m := &r.msgs[i]
	return m.Buffers[0][:m.N], addrOf(m.Addr), m.Flags&unix.MSG_TRUNC != 0
}

func addrOf(a net.Addr) netip.Addr {
	if ua, ok := a.(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(ua.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// putFamily writes a sockaddr family, which is in host byte order.
func putFamily(b []byte, f uint16) { binary.NativeEndian.PutUint16(b, f) }
