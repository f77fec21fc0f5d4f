//go:build !linux

package receiver

import "net"

// newDatagramReader returns the portable reader: recvmmsg is Linux-only.
func newDatagramReader(c *net.UDPConn, batch, size int) (datagramReader, error) {
	return newXnetReader(c, batch, size), nil
}
