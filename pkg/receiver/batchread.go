package receiver

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// datagramReader reads batches of datagrams from one UDP socket into buffers
// it owns. It is used by one goroutine; a datagram returned by datagram(i) is
// valid until the next read.
type datagramReader interface {
	// read blocks until at least one datagram is there (or the socket's
	// read deadline passes, or it is closed) and returns how many it read.
	read() (int, error)
	// datagram returns datagram i of the last read: its bytes, its sender
	// (the zero Addr when unknown) and whether it was longer than the buffer.
	datagram(i int) (b []byte, src netip.Addr, truncated bool)
}

// xnetReader reads with golang.org/x/net's ReadBatch (recvmmsg on Linux, one
// datagram per call elsewhere). It allocates the sender address of every
// datagram; the Linux reader does not.
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
