//go:build linux

package receiver

import "net/netip"

// datagramReader reads batches of datagrams from one socket (UDP or unix
// datagram) into buffers
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
