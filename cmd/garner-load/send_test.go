package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tally is what a test server received.
type tally struct {
	mu        sync.Mutex
	lines     int64
	datagrams int64
	bytes     int64
	byType    map[string]int64
	byName    map[string]int64 // counters only
	bad       []string
}

func newTally() *tally { return &tally{byType: map[string]int64{}, byName: map[string]int64{}} }

func (t *tally) line(l []byte) {
	t.lines++
	name, rest, ok := bytes.Cut(l, []byte(":"))
	_, typ, ok2 := bytes.Cut(rest, []byte("|"))
	if !ok || !ok2 {
		t.bad = append(t.bad, string(l))
		return
	}
	typ, _, _ = bytes.Cut(typ, []byte("|"))
	t.byType[string(typ)]++
	if string(typ) == "c" {
		if !bytes.HasPrefix(rest, []byte("1|")) {
			t.bad = append(t.bad, string(l))
		}
		t.byName[string(name)]++
	}
}

// udpServer counts what arrives on a loopback UDP socket with a receive
// buffer large enough that nothing a test sends is dropped.
func udpServer(t *testing.T) (string, func() *tally) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*net.UDPConn)
	rc, _ := c.SyscallConn()
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
		}
	})
	tl := newTally()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			tl.mu.Lock()
			tl.datagrams++
			tl.bytes += int64(n)
			for _, l := range bytes.Split(buf[:n], []byte("\n")) {
				tl.line(l)
			}
			tl.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = c.Close() })
	return c.LocalAddr().String(), func() *tally {
		// Read what is queued, then stop.
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		<-done
		return tl
	}
}

// tcpServer counts what arrives on a TCP listener. stop waits (with a
// deadline) until conns connections have been accepted before it closes the
// listener: a client may connect, write and close before the accept loop has
// taken its connection from the kernel's queue, and closing the listener then
// would reset that connection and drop its lines.
func tcpServer(t *testing.T, conns int) (string, func() *tally) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTally()
	accepted := make(chan struct{}, conns)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- struct{}{}:
			default:
			}
			wg.Go(func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					tl.mu.Lock()
					tl.bytes += int64(len(sc.Bytes()) + 1)
					tl.line(sc.Bytes())
					tl.mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String(), func() *tally {
		deadline := time.After(10 * time.Second)
	wait:
		for range conns {
			select {
			case <-accepted:
			case <-deadline:
				t.Errorf("fewer than %d connections accepted within 10s", conns)
				break wait
			}
		}
		_ = ln.Close()
		wg.Wait()
		return tl
	}
}

func TestRunTotalsMatchWhatTheServerCounts(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"udp exact line count, cut last datagram", Options{
			Workload: Workload{Types: []string{"c"}, Series: 500, DatagramSize: 1400},
			Proto:    "udp", Lines: 12345, Rate: 200000, Senders: 1, Batch: 16,
		}},
		{"udp three senders, every type, tags", Options{
			Workload: Workload{Types: []string{"c", "g", "ms", "h", "s", "d"}, Series: 50, Tags: 2, DatagramSize: 600},
			Proto:    "udp", Lines: 20000, Rate: 200000, Senders: 3, Batch: 8,
		}},
		{"udp bounded by time", Options{
			Workload: Workload{Types: []string{"c", "ms"}, Series: 100, DatagramSize: 1000},
			Proto:    "udp", Duration: 200 * time.Millisecond, Rate: 50000, Senders: 2, Batch: 4,
		}},
		{"udp flat out, bounded by count", Options{
			Workload: Workload{Types: []string{"c"}, Series: 2000, DatagramSize: 1400},
			Proto:    "udp", Lines: 30000, Senders: 1, Batch: 64,
		}},
		{"tcp two connections", Options{
			Workload: Workload{Types: []string{"c", "g"}, Series: 300, Tags: 1, DatagramSize: 4096},
			Proto:    "tcp", Lines: 25001, Senders: 2, Batch: 8,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Prefix = "gl"
			o.PerName = true
			var stop func() *tally
			if o.Proto == "udp" {
				o.Addr, stop = udpServer(t)
			} else {
				o.Addr, stop = tcpServer(t, o.Senders)
			}
			res, err := Run(context.Background(), o, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := stop()
			if len(got.bad) > 0 {
				t.Fatalf("malformed lines received: %q", got.bad[:min(5, len(got.bad))])
			}
			if res.SendErrors != 0 {
				t.Fatalf("%d send errors: %s", res.SendErrors, res.LastError)
			}
			if o.Lines > 0 && res.Lines != o.Lines {
				t.Fatalf("sent %d lines, asked for exactly %d", res.Lines, o.Lines)
			}
			if got.lines != res.Lines || got.bytes != res.Bytes {
				t.Fatalf("server got %d lines %d bytes; result says %d lines %d bytes", got.lines, got.bytes, res.Lines, res.Bytes)
			}
			if o.Proto == "udp" && got.datagrams != res.Datagrams {
				t.Fatalf("server got %d datagrams; result says %d", got.datagrams, res.Datagrams)
			}
			for _, typ := range o.Types {
				if got.byType[typ] != res.LinesByType[typ] {
					t.Errorf("type %s: server got %d lines, result says %d", typ, got.byType[typ], res.LinesByType[typ])
				}
			}
			if res.CounterIncrements["gl.c"] != got.byType["c"] {
				t.Errorf("counter increments %d, server got %d counter lines", res.CounterIncrements["gl.c"], got.byType["c"])
			}
			var timers int64
			for _, typ := range []string{"ms", "h", "d"} {
				timers += got.byType[typ]
				if res.TimerSamples["gl."+typ] != got.byType[typ] {
					t.Errorf("timer samples gl.%s = %d, server got %d", typ, res.TimerSamples["gl."+typ], got.byType[typ])
				}
			}
			if len(res.CounterPerName) != len(got.byName) && got.byType["c"] > int64(o.Series) {
				t.Errorf("%d counters per name in the result, server saw %d", len(res.CounterPerName), len(got.byName))
			}
			for name, n := range got.byName {
				if res.CounterPerName[name] != n {
					t.Errorf("counter %s: result %d, server got %d", name, res.CounterPerName[name], n)
				}
			}
			if o.Duration > 0 && o.Rate > 0 {
				// The pacer never runs ahead of the target by more than one
				// datagram per sender.
				limit := o.Rate*res.Seconds + float64(o.Senders*res.MaxLinesPerDgm)
				if float64(res.Lines) > limit || res.Lines == 0 {
					t.Fatalf("sent %d lines in %.3fs at a target of %.0f/s (limit %.0f)", res.Lines, res.Seconds, o.Rate, limit)
				}
			}
		})
	}
}

func TestRunRateIsAnUpperBound(t *testing.T) {
	addr, stop := udpServer(t)
	o := Options{
		Workload: Workload{Prefix: "gl", Types: []string{"c"}, Series: 10, DatagramSize: 100},
		Proto:    "udp", Addr: addr, Rate: 20000, Duration: 300 * time.Millisecond, Senders: 1, Batch: 64,
	}
	start := time.Now()
	res, err := Run(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	stop()
	if elapsed > 3*time.Second {
		t.Fatalf("a 300ms run took %s", elapsed)
	}
	if max := 20000*res.Seconds + float64(res.MaxLinesPerDgm); float64(res.Lines) > max {
		t.Fatalf("%d lines in %.3fs exceed the rate of 20000/s", res.Lines, res.Seconds)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	addr, stop := udpServer(t)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, Options{
		Workload: Workload{Prefix: "gl", Types: []string{"c"}, Series: 10, DatagramSize: 100},
		Proto:    "udp", Addr: addr, Rate: 1000, Duration: time.Hour, Senders: 2, Batch: 4,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled run returned after %s", d)
	}
}

func TestRunCommandLine(t *testing.T) {
	addr, stop := udpServer(t)
	defer stop()
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   string
		wantJSON bool
	}{
		{"sends and prints JSON", []string{"--addr", addr, "--lines", "1000", "--duration", "0", "--rate", "200k", "--types", "c,ms", "--series", "10", "--progress", "0"}, exitOK, "", true},
		{"flat out", []string{"--addr", addr, "--lines", "1000", "--rate", "max", "--types", "c,ms", "--series", "10", "--progress", "0"}, exitOK, "", true},
		{"unbounded", []string{"--addr", addr, "--duration", "0"}, exitUsage, "unbounded", false},
		{"bad type", []string{"--addr", addr, "--types", "c,x"}, exitUsage, `unknown statsd type "x"`, false},
		{"bad protocol", []string{"--addr", addr, "--proto", "sctp"}, exitUsage, "sctp", false},
		{"bad rate", []string{"--addr", addr, "--rate", "fast"}, exitUsage, `rate "fast"`, false},
		{"stray argument", []string{"--addr", addr, "oops"}, exitUsage, "oops", false},
		{"unreachable tcp", []string{"--addr", "127.0.0.1:1", "--proto", "tcp", "--lines", "10"}, exitError, "cannot connect", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Fatalf("stderr %q does not mention %q", errb.String(), tc.stderr)
			}
			if tc.wantJSON {
				var r Result
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatalf("stdout is not a JSON result: %v\n%s", err, out.String())
				}
				if r.Lines != 1000 || r.CounterIncrements["garnerload.c"] != 500 || r.TimerSamples["garnerload.ms"] != 500 {
					t.Fatalf("result %+v: want 1000 lines, 500 counter increments, 500 timer samples", r)
				}
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	addr, stop := udpServer(t)
	defer stop()
	buf := &limitedBuffer{max: 1 << 20} // the progress goroutine writes while Run runs
	_, err := Run(context.Background(), Options{
		Workload: Workload{Prefix: "gl", Types: []string{"c"}, Series: 10, DatagramSize: 100},
		Proto:    "udp", Addr: addr, Rate: 10000, Duration: 250 * time.Millisecond, Senders: 1, Batch: 4,
		Progress: 50 * time.Millisecond,
	}, buf)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "lines/s"); n < 2 {
		t.Fatalf("%d progress lines in 250ms at a 50ms interval:\n%s", n, buf.String())
	}
}

func TestRunEndsAgainstATCPServerThatDoesNotRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	defer func() {
		select {
		case c := <-accepted:
			_ = c.Close()
		default:
		}
	}()
	start := time.Now()
	res, err := Run(context.Background(), Options{
		Workload: Workload{Prefix: "gl", Types: []string{"c"}, Series: 100, DatagramSize: 65536},
		Proto:    "tcp", Addr: ln.Addr().String(), Duration: 300 * time.Millisecond, Senders: 1, Batch: 64,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("run against a stuck server took %s", d)
	}
	if res.SendErrors != 1 || !strings.Contains(res.LastError, "timeout") {
		t.Fatalf("send errors %d (%q), want the one write that timed out", res.SendErrors, res.LastError)
	}
}
