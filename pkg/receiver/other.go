//go:build !linux

package receiver

// garner runs on Linux only: its receivers read with recvmmsg, force socket
// buffers with SO_RCVBUFFORCE and count kernel drops in /proc/net/udp. On
// another system the build stops here, on a name that says why.
var _ = garner_receivers_build_on_linux_only
