// Package garnertest helps end-to-end tests run the real garner binary on
// loopback: build it once per test process, start it with flags, send it
// datagrams, and collect what a Graphite listener receives.
package garnertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GarnerPackage and LoadPackage are the import paths of the two binaries.
const (
	GarnerPackage = "github.com/garner-metrics/garner/cmd/garner"
	LoadPackage   = "github.com/garner-metrics/garner/cmd/garner-load"
)

type buildKey struct {
	pkg  string
	race bool
}

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var builds sync.Map // buildKey → *buildResult

// Binary builds ./cmd/garner (once per test process, with -race when the
// tests run with it) and returns the path of the binary.
func Binary(t testing.TB) string {
	t.Helper()
	return BuildBinary(t, GarnerPackage, raceEnabled)
}

// PlainBinary builds pkg without the race detector, once per test process.
// The load tests use it: -race slows garner ten-fold, which would measure the
// detector, not garner.
func PlainBinary(t testing.TB, pkg string) string {
	t.Helper()
	return BuildBinary(t, pkg, false)
}

// BuildBinary builds the main package pkg (an import path of this module),
// with -race if race is set, once per test process and (pkg, race), and
// returns the path of the binary.
func BuildBinary(t testing.TB, pkg string, race bool) string {
	t.Helper()
	v, _ := builds.LoadOrStore(buildKey{pkg, race}, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "garnertest-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		args := []string{"build", "-o", b.path}
		if race {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Process is a running garner.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

// Start runs the garner binary with args. The process is killed when the
// test ends if it is still running; its stderr is logged if the test failed.
func Start(t testing.TB, args ...string) *Process {
	t.Helper()
	return StartBinary(t, Binary(t), args...)
}

// StartReady is Start, then waits (up to 20s) until garner logs that it
// started; it fails the test if it does not.
func StartReady(t testing.TB, args ...string) *Process {
	t.Helper()
	return StartBinaryReady(t, Binary(t), args...)
}

// StartBinaryReady is StartReady for another build of garner (PlainBinary).
func StartBinaryReady(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	p := StartBinary(t, bin, args...)
	if !p.WaitStderr("garner started", 20*time.Second) {
		t.Fatalf("garner did not start:\n%s", p.Stderr())
	}
	return p
}

// StartConfig writes toml as garner's config file, then runs StartReady with
// --config-path and args (flags win over the file).
func StartConfig(t testing.TB, toml string, args ...string) *Process {
	t.Helper()
	return StartReady(t, append([]string{"--config-path", WriteConfig(t, toml)}, args...)...)
}

// WriteConfig writes toml to a file in the test's temporary folder and
// returns its path.
func WriteConfig(t testing.TB, toml string) string {
	t.Helper()
	return WriteFile(t, filepath.Join(t.TempDir(), "garner.toml"), toml)
}

// WriteFile writes content to path (mode 0644), failing the test on an
// error, and returns path: for a file garner reads (a mapping file, written
// again before a SIGHUP, say).
func WriteFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartBinary runs bin with args (for other binaries of the repository).
func StartBinary(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
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
	return p.stdout.String()
}

// Stderr returns what the process wrote to stderr so far.
func (p *Process) Stderr() string {
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
