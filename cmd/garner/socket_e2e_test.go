package main_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestUnixSocketMode: the unix datagram socket gets metrics-socket-mode
// (default 0622), takes datagrams, and is removed at shutdown only while it
// is still garner's.
func TestUnixSocketMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	p := garnertest.StartConfig(t, "backends = \"null\"\n", "--metrics-addr", path)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o622 {
		t.Errorf("socket mode %o, want 0622", fi.Mode().Perm())
	}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("sock.count:1|c")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.WaitRead(t, 1)
	p.StopOK(t)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}

	// Another process takes the path while garner runs: garner leaves it.
	path2 := filepath.Join(dir, "t.sock")
	p = garnertest.StartConfig(t, "backends = \"null\"\n", "--metrics-addr", path2, "--metrics-socket-mode", "0620")
	if fi, err := os.Lstat(path2); err != nil || fi.Mode().Perm() != 0o620 {
		t.Fatalf("socket mode: %v %v, want 0620", fi, err)
	}
	if err := os.Remove(path2); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path2, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p.StopOK(t)
	if _, err := os.Lstat(path2); err != nil {
		t.Errorf("garner removed a socket another process had bound: %v", err)
	}
}
