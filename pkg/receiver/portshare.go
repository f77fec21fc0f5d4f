//go:build linux

package receiver

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortSharer is another process's socket bound to the same UDP port as a
// receiver: with SO_REUSEPORT the kernel spreads the port's datagrams over
// both processes.
type PortSharer struct {
	Inode   uint64
	PID     int    // 0 when the process cannot be found (another user's, another namespace)
	Command string // its /proc/<pid>/comm, e.g. "garner"
}

func (s PortSharer) String() string {
	if s.PID == 0 {
		return fmt.Sprintf("socket inode %d (process not found)", s.Inode)
	}
	return fmt.Sprintf("pid %d (%s)", s.PID, s.Command)
}

// PortSharers returns the UDP sockets bound to u's port that are not u's,
// read from the kernel's socket tables, with the process holding each when
// /proc shows it. Call it after ListenUDP: the sockets found then joined
// the port's SO_REUSEPORT group before this process did.
func (u *UDP) PortSharers() ([]PortSharer, error) {
	port := u.conns[0].LocalAddr().(*net.UDPAddr).Port
	var inodes []uint64
	read := 0
	for _, p := range ProcNetUDP() {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		read++
		inodes = append(inodes, socketsOnPort(b, port, u.drops.inodes)...)
	}
	if read == 0 {
		return nil, fmt.Errorf("cannot read the kernel's udp socket tables %v", ProcNetUDP())
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	owners := socketOwners(inodes)
	out := make([]PortSharer, 0, len(inodes))
	for _, ino := range inodes {
		s := owners[ino]
		s.Inode = ino
		out = append(out, s)
	}
	return out, nil
}

// socketsOnPort returns the inodes of the sockets of a /proc/net/udp table
// whose local port is port, except those in mine.
func socketsOnPort(table []byte, port int, mine map[uint64]bool) []uint64 {
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if !ok || err != nil || int(p) != port {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || ino == 0 || mine[ino] {
			continue
		}
		out = append(out, ino)
	}
	return out
}

// socketOwners finds, in /proc/<pid>/fd, the processes holding inodes.
func socketOwners(inodes []uint64) map[uint64]PortSharer {
	want := make(map[string]uint64, len(inodes))
	for _, ino := range inodes {
		want["socket:["+strconv.FormatUint(ino, 10)+"]"] = ino
	}
	out := map[uint64]PortSharer{}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		ino, ok := want[link]
		if !ok {
			continue
		}
		if _, found := out[ino]; found {
			continue
		}
		pidDir := filepath.Dir(filepath.Dir(fd))
		pid, _ := strconv.Atoi(filepath.Base(pidDir))
		comm, _ := os.ReadFile(filepath.Join(pidDir, "comm"))
		out[ino] = PortSharer{PID: pid, Command: strings.TrimSpace(string(comm))}
	}
	return out
}
