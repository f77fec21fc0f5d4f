//go:build linux

package receiver

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel received.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// sockaddrSize holds an IPv4 or IPv6 socket address.
const sockaddrSize = unix.SizeofSockaddrInet6

// mmsgReader calls recvmmsg with message headers, buffers and address
// storage built once, and decodes sender addresses without allocating:
// nothing on its read path allocates.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []byte // sockaddrSize bytes per message
	bufs  [][]byte
	recvd func(fd uintptr) bool // bound once: no closure per read

	n     int
	errno syscall.Errno
}

// newDatagramReader returns the allocation-free recvmmsg reader of a
// datagram socket (*net.UDPConn or *net.UnixConn).
func newDatagramReader(c syscall.Conn, batch, size int) (datagramReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("cannot get the socket's descriptor: %w", err)
	}
	batch = max(batch, 1)
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]byte, batch*sockaddrSize),
		bufs:  make([][]byte, batch),
	}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		h := &r.hdrs[i].hdr
		h.Name = &r.names[i*sockaddrSize]
		h.Namelen = sockaddrSize
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
	}
	r.recvd = r.recvmmsg
	return r, nil
}

// recvmmsg runs on the socket's descriptor; false asks the poller to wait
// until the socket is readable.
func (r *mmsgReader) recvmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), 0, 0, 0)
		switch errno {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.n, r.errno = 0, errno
			return true
		}
	}
}

func (r *mmsgReader) read() (int, error) {
	// The kernel wrote the address lengths and flags of the last batch.
	for i := range r.hdrs[:r.n] {
		r.hdrs[i].hdr.Namelen = sockaddrSize
		r.hdrs[i].hdr.Flags = 0
	}
	r.n = 0
	if err := r.rc.Read(r.recvd); err != nil {
		return 0, err // closed, or the read deadline passed
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", r.errno)
	}
	return r.n, nil
}

func (r *mmsgReader) datagram(i int) ([]byte, netip.Addr, bool) {
	h := &r.hdrs[i]
	// A unix socket's sender may have a longer address than the room
	// given: the kernel says its full length and truncates it.
	name := r.names[i*sockaddrSize : (i+1)*sockaddrSize][:min(h.hdr.Namelen, sockaddrSize)]
	return r.bufs[i][:h.len], sockaddrAddr(name), h.hdr.Flags&unix.MSG_TRUNC != 0
}

// sockaddrAddr decodes the IP of a sockaddr_in or sockaddr_in6 (IPv4-mapped
// IPv6 addresses become IPv4); anything else is the zero Addr.
func sockaddrAddr(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= unix.SizeofSockaddrInet4 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= unix.SizeofSockaddrInet6 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}
