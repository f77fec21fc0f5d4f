package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/garner-metrics/garner/pkg/receiver"
)

// Socket is the unix datagram socket's file (metrics-addr as a path).
type Socket struct {
	Mode os.FileMode // metrics-socket-mode: permission bits; default receiver.DefaultSocketMode (0622)
}

var socketKeys = []key{
	{"metrics-socket-mode", kString, fmt.Sprintf("%04o", receiver.DefaultSocketMode), fmt.Sprintf("Permission bits (octal) of the unix datagram socket when metrics-addr is a path: 0622 lets anyone send and only garner's user read, as DogStatsD; 0620 limits senders to garner's group (default %04o)", receiver.DefaultSocketMode), true, nil},
}

func (c *Config) loadSocket(r *reader) {
	s := strings.TrimSpace(r.str("metrics-socket-mode"))
	m, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil:
		r.fail("metrics-socket-mode", fmt.Errorf("%q is not an octal mode such as 0622", s))
	case m > 0o777:
		r.fail("metrics-socket-mode", fmt.Errorf("%q: want permission bits only (at most 0777)", s))
	case m&0o222 == 0:
		r.fail("metrics-socket-mode", fmt.Errorf("%q: nobody could send (connecting needs write permission)", s))
	}
	c.Socket.Mode = os.FileMode(m)
}
