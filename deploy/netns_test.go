package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// lan is a bridge in the test's own network namespace with one veth per
// host; each host is a network namespace with one address on the bridge's
// /24. The test process is the bridge's address (.254). Everything is
// removed in t.Cleanup.
type lan struct {
	t      *testing.T
	id     string
	prefix string // "10.213.N."
	bridge string
	ip     string // the bridge's (the test's) address
}

// newLAN creates the bridge. It skips when the test cannot create network
// namespaces (not root, no ip), and fails under CI=true.
func newLAN(t *testing.T) *lan {
	t.Helper()
	requireTool(t, "ip")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the network namespace test needs root under CI=true")
		}
		t.Skip("network namespaces need root")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	l := &lan{t: t, id: id, prefix: fmt.Sprintf("10.213.%d.", b[0]), bridge: "gtbr" + id}
	l.ip = l.prefix + "254"
	if out, err := exec.Command("ip", "-4", "addr").Output(); err != nil || strings.Contains(string(out), l.prefix) {
		t.Fatalf("cannot pick a free subnet %s0/24 (ip addr: %v)", l.prefix, err)
	}
	l.run("link", "add", l.bridge, "type", "bridge")
	t.Cleanup(func() { l.quiet("link", "del", l.bridge) })
	l.run("addr", "add", l.ip+"/24", "dev", l.bridge)
	l.run("link", "set", l.bridge, "up")
	return l
}

func (l *lan) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *lan) quiet(args ...string) {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Logf("cleanup: ip %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// host is one network namespace on the LAN.
type host struct {
	ns, ip string
}

// addHost creates namespace <id>-<name> with address prefix+octet, whose
// resolv.conf (bind-mounted by `ip netns exec` from /etc/netns/<ns>) names
// nameserver, if any.
func (l *lan) addHost(name string, octet int, nameserver string) host {
	l.t.Helper()
	h := host{ns: "gt" + l.id + "-" + name, ip: fmt.Sprintf("%s%d", l.prefix, octet)}
	veth := fmt.Sprintf("gtv%s%d", l.id, octet)
	l.run("netns", "add", h.ns)
	l.t.Cleanup(func() {
		l.quiet("netns", "del", h.ns)
		// A deleted namespace lives on while orphaned TCP sockets in it
		// retransmit; deleting our end of the veth removes both ends now.
		if exec.Command("ip", "link", "show", veth).Run() == nil {
			l.quiet("link", "del", veth)
		}
	})
	l.run("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	l.run("link", "set", veth, "master", l.bridge, "up")
	l.run("-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
	l.run("-n", h.ns, "link", "set", "eth0", "up")
	l.run("-n", h.ns, "link", "set", "lo", "up")
	if nameserver != "" {
		dir := filepath.Join("/etc/netns", h.ns)
		if _, err := os.Stat("/etc/netns"); os.IsNotExist(err) {
			l.t.Cleanup(func() { _ = os.Remove("/etc/netns") }) // only if empty: another user's namespaces keep it
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			l.t.Fatal(err)
		}
		l.t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+nameserver+"\noptions timeout:1 attempts:2\n"), 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	return h
}

// command runs bin with args inside h's network namespace.
func (h host) command(bin string, args ...string) []string {
	return append([]string{"netns", "exec", h.ns, bin}, args...)
}

// dialUDP opens a UDP socket inside h's network namespace (its sends carry
// h's address) and connects it to addr. The socket is created on a thread
// switched into the namespace and back; the socket stays in it.
func (h host) dialUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked when switching back fails: the thread then dies with the goroutine
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join("/run/netns", h.ns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), syscall.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", h.ns, err)
			return
		}
		raddr, err := net.ResolveUDPAddr("udp", addr)
		if err == nil {
			conn, err = net.DialUDP("udp", nil, raddr)
		}
		if serr := unix.Setns(int(self.Fd()), syscall.CLONE_NEWNET); serr == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := conn.SetWriteBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
