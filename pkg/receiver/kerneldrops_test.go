//go:build linux

package receiver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/garnertest"
)

const udpHeader = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"

func TestParseUDPDrops(t *testing.T) {
	tests := []struct {
		name    string
		table   string
		inodes  []uint64
		want    map[uint64]uint64
		wantErr string
	}{
		{
			name:   "ipv4 sockets, only the watched ones",
			table:  udpHeader + "  123: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n  124: 0100007F:1FBE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4343 2 0000000000000000 99\n",
			inodes: []uint64{4242},
			want:   map[uint64]uint64{4242: 17},
		},
		{
			name:   "ipv6 table layout",
			table:  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  500: 00000000000000000000000000000000:1FBD 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 3\n",
			inodes: []uint64{777, 778},
			want:   map[uint64]uint64{777: 3},
		},
		{
			name:   "header only",
			table:  udpHeader,
			inodes: []uint64{1},
			want:   map[uint64]uint64{},
		},
		{
			name:    "short line",
			table:   udpHeader + "  123: 0100007F:1FBD 00000000:0000 07\n",
			inodes:  []uint64{1},
			wantErr: "fields",
		},
		{
			name:    "bad drops column",
			table:   udpHeader + "  123: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 x\n",
			inodes:  []uint64{4242},
			wantErr: "drops",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := map[uint64]bool{}
			for _, i := range tc.inodes {
				in[i] = true
			}
			got := map[uint64]uint64{}
			err := parseUDPDrops(strings.NewReader(tc.table), in, got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestReadUDPDropsMissingTables(t *testing.T) {
	dir := t.TempDir()
	v4 := filepath.Join(dir, "udp")
	if err := os.WriteFile(v4, []byte(udpHeader+"  1: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9 2 0000000000000000 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadUDPDrops([]string{v4, filepath.Join(dir, "udp6")}, map[uint64]bool{9: true})
	if err != nil || got[9] != 5 {
		t.Fatalf("one table missing: got %v, %v; want 9→5", got, err)
	}
	if _, err := ReadUDPDrops([]string{filepath.Join(dir, "nope")}, map[uint64]bool{9: true}); err == nil {
		t.Fatal("no table readable: want an error")
	}
}

// fillUntilDrops sends datagrams to addr (nobody reads it) until drops()
// reports some, bounded in count and time.
func fillUntilDrops(t *testing.T, addr string, drops func() uint64) uint64 {
	t.Helper()
	c := garnertest.Dial(t, "udp", addr)
	payload := []byte(strings.Repeat("x.y:1|c\n", 128))
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		for j := 0; j < 100; j++ {
			_, _ = c.Write(payload) // loopback: ECONNREFUSED cannot happen, the socket is there
		}
		if n := drops(); n > 0 {
			return n
		}
	}
	return 0
}

func TestKernelDropsOfAFullSocket(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	conn := pc.(*net.UDPConn)
	rc, _ := conn.SyscallConn()
	_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	ino, err := SocketInode(conn)
	if err != nil {
		t.Fatal(err)
	}
	k := newKernelDrops(ProcNetUDP(), []uint64{ino})
	if n, err := k.Total(); err != nil || n != 0 {
		t.Fatalf("fresh socket: drops %d, %v; want 0, nil", n, err)
	}
	got := fillUntilDrops(t, conn.LocalAddr().String(), func() uint64 {
		n, err := k.Total()
		if err != nil {
			t.Fatal(err)
		}
		return n
	})
	if got == 0 {
		t.Fatal("a full socket that nobody reads reported no kernel drops")
	}
	// Closed: the socket leaves the table, the total must not go down.
	_ = pc.Close()
	if n, _ := k.Total(); n < got {
		t.Fatalf("after close: total %d < %d seen before", n, got)
	}
}

func TestUDPExportsKernelDrops(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := logrus.New()
	log.SetOutput(os.Stderr)
	agg := aggregator.New(aggregator.Options{Shards: 1}, log, reg)
	u, err := ListenUDP(UDPOptions{Addr: "127.0.0.1:0", Readers: 2, BatchSize: 8, DatagramSize: 1500}, NewLines(Options{}, agg, nil, log, reg), log, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, c := range u.conns {
		rc, _ := c.SyscallConn()
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}
	// Run is not started: nobody reads, so the sockets fill up.
	exported := func() uint64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "garner_receiver_kernel_drops_total" {
				continue
			}
			m := mf.GetMetric()[0]
			if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "receiver" || l[0].GetValue() != "udp" {
				t.Fatalf("labels %v, want receiver=udp", l)
			}
			return uint64(m.GetCounter().GetValue())
		}
		t.Fatal("garner_receiver_kernel_drops_total is not registered")
		return 0
	}
	if n := exported(); n != 0 {
		t.Fatalf("before any traffic: %d drops, want 0", n)
	}
	got := fillUntilDrops(t, u.Addr().String(), exported)
	if got == 0 {
		t.Fatal("full receiver sockets exported no kernel drops")
	}
	if n, err := u.KernelDrops(); err != nil || n < got {
		t.Fatalf("KernelDrops() = %d, %v; want >= %d", n, err, got)
	}
}

func TestWatchDropsWarnsOnceAndStops(t *testing.T) {
	log := logrus.New()
	var buf syncBuffer
	log.SetOutput(&buf)
	u := &UDP{log: log, drops: newKernelDrops([]string{filepath.Join(t.TempDir(), "missing")}, []uint64{1})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		u.watchDrops(ctx, time.Millisecond)
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	garnertest.Receive(t, "watchDrops did not return after cancel", 5*time.Second, done)
	if n := strings.Count(buf.String(), "level=warning"); n != 1 {
		t.Fatalf("unreadable table logged %d times in ~20 checks, want once:\n%s", n, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
