package garnertest

import (
	"net"
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
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
