// Package garnertest helps end-to-end tests run the real garner binary on
// loopback: build it once per test process, start it with flags, send it
// datagrams, and collect what a Graphite listener receives.
package garnertest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/garner (once per test process, with -race when the
// tests run with it) and returns the path of the binary.
func Binary(t testing.TB) string {
	t.Helper()
	return build(t, "github.com/garner-metrics/garner/cmd/garner", &buildOnce, &binPath, &buildErr)
}

func build(t testing.TB, pkg string, once *sync.Once, path *string, errp *error) string {
	once.Do(func() {
		dir, err := os.MkdirTemp("", "garnertest-")
		if err != nil {
			*errp = err
			return
		}
		*path = filepath.Join(dir, filepath.Base(pkg))
		args := []string{"build", "-o", *path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			*errp = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if *errp != nil {
		t.Fatal(*errp)
	}
	return *path
}

// Process is a running garner.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start runs the garner binary with args. The process is killed when the
// test ends if it is still running; its stderr is logged if the test failed.
func Start(t testing.TB, args ...string) *Process {
	t.Helper()
	return StartBinary(t, Binary(t), args...)
}

// StartBinary runs bin with args (for other binaries of the repository).
func StartBinary(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	// The admin server defaults to 127.0.0.1:8126 and garner refuses to
	// start when that is taken, so concurrent tests would collide: give each
	// one a free port unless the test chooses (a flag beats the environment).
	p.cmd.Env = append(os.Environ(), "GOMAXPROCS=2", "GARNER_ADMIN_ADDR=127.0.0.1:0")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(bin), p.Stderr())
		}
	})
	return p
}

// Stdout returns what the process wrote to stdout so far.
func (p *Process) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// Stderr returns what the process wrote to stderr so far.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// WaitStderr waits until stderr contains s.
func (p *Process) WaitStderr(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Stderr(), s) {
			return true
		}
		select {
		case <-p.done:
			return strings.Contains(p.Stderr(), s)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// RSS returns the process's resident set size and its peak (VmHWM), in
// bytes, from /proc.
func (p *Process) RSS() (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			cur = kb << 10
		}
		if n, _ := fmt.Sscanf(line, "VmHWM: %d kB", &kb); n == 1 {
			peak = kb << 10
		}
	}
	return cur, peak
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit and returns its exit code (-1 on timeout).
func (p *Process) Wait(timeout time.Duration) int {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and waits for the exit code.
func (p *Process) Stop(timeout time.Duration) int {
	p.Signal(syscall.SIGTERM)
	return p.Wait(timeout)
}

// FreePort returns a loopback port free for both TCP and UDP right now.
func FreePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// SendUDP sends each payload as one datagram to addr.
func SendUDP(t testing.TB, addr string, payloads ...string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range payloads {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
}

// Graphite is a TCP listener that records every line it receives, as a
// carbon plaintext listener would get them.
type Graphite struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	conns int
}

// NewGraphite listens on a loopback port until the test ends.
func NewGraphite(t testing.TB) *Graphite {
	t.Helper()
	g, err := ListenGraphite("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// ListenGraphite listens on addr (for a listener that must come back on the
// address an earlier one had). The caller closes it.
func ListenGraphite(addr string) (*Graphite, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &Graphite{ln: ln}
	go g.accept()
	return g, nil
}

func (g *Graphite) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.conns++
		g.mu.Unlock()
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				g.mu.Lock()
				g.lines = append(g.lines, sc.Text())
				g.mu.Unlock()
			}
		}()
	}
}

// Addr is the listener's host:port.
func (g *Graphite) Addr() string { return g.ln.Addr().String() }

// Close stops accepting connections.
func (g *Graphite) Close() { _ = g.ln.Close() }

// Lines returns a copy of every line received so far.
func (g *Graphite) Lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.lines...)
}

// Reset forgets the lines received so far.
func (g *Graphite) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lines = nil
}

// Point is one parsed Graphite line.
type Point struct {
	Name  string // including ;tags
	Value string
	Time  int64
}

// Points parses the received lines; malformed lines are returned as Name only.
func (g *Graphite) Points() []Point {
	var out []Point
	for _, l := range g.Lines() {
		f := strings.Fields(l)
		p := Point{Name: f[0]}
		if len(f) == 3 {
			p.Value = f[1]
			_, _ = fmt.Sscan(f[2], &p.Time)
		}
		out = append(out, p)
	}
	return out
}

// WaitFor polls until cond holds on the received lines or timeout passes,
// and reports whether it held.
func (g *Graphite) WaitFor(timeout time.Duration, cond func(lines []string) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond(g.Lines()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
