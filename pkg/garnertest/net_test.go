package garnertest

import (
	"net"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// TestListenTCPPinsReceiveBuffer: an accepted connection inherits the
// listener's SO_RCVBUF, which the kernel then does not autotune.
func TestListenTCPPinsReceiveBuffer(t *testing.T) {
	ln, err := ListenTCP("127.0.0.1:0", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	Dial(t, "tcp", ln.Addr().String())
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	// Linux doubles the value for its bookkeeping and has a floor of a few KiB.
	if got > 2*4096 {
		t.Fatalf("accepted socket's SO_RCVBUF = %d, want at most %d", got, 2*4096)
	}
	if MaxSendBuffer() < 4096 {
		t.Fatalf("MaxSendBuffer() = %d", MaxSendBuffer())
	}
}

func TestCountLines(t *testing.T) {
	if n := CountLines("a:1|c\nb:1|c\n", "", "c:1|c\r\n\n"); n != 3 {
		t.Fatalf("CountLines = %d, want 3", n)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports := FreePorts(t, 20)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice: %v", p, ports)
		}
		seen[p] = true
	}
}

// TestStartServerOnPortsRetriesATakenPort: a server that exits saying its
// port is in use is started again on new ports.
func TestStartServerOnPortsRetriesATakenPort(t *testing.T) {
	var tried [][]int
	_, ports := StartServerOnPorts(t, "flaky", 2, func(ports []int) (*exec.Cmd, func() bool) {
		tried = append(tried, ports)
		if len(tried) == 1 {
			return exec.Command("sh", "-c", "echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1"), func() bool { return false }
		}
		return exec.Command("sleep", "30"), func() bool { return true }
	})
	if len(tried) != 2 || !slices.Equal(ports, tried[1]) {
		t.Fatalf("tried %v, running on %v: want a second start on new ports", tried, ports)
	}
}
