package graphite_test

import (
	"bufio"
	"bytes"
	"encoding/json"
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

// carbon is a real carbon-cache (Debian graphite-carbon) started by the test
// on a loopback port, with its whisper files in a temporary directory.
type carbon struct {
	t      *testing.T
	bin    string // carbon-cache
	python string // the interpreter carbon-cache runs with (has whisper and carbon)
	dir    string // CONF_DIR and STORAGE_DIR
	data   string // LOCAL_DATA_DIR
	port   int

	mu   sync.Mutex
	out  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// findCarbon returns carbon-cache's path and its Python interpreter, skipping
// the test when graphite-carbon is not installed (failing it under CI=true).
func findCarbon(t *testing.T) (bin, python string) {
	t.Helper()
	bin, err := exec.LookPath("carbon-cache")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("carbon-cache not found (apt-get install graphite-carbon): %v", err)
		}
		t.Skipf("carbon-cache not found (apt-get install graphite-carbon): %v", err)
	}
	// Read whisper files with the Python that runs carbon (its shebang), not
	// whatever python3 comes first in PATH: only that one has carbon.util.
	python = "python3"
	if f, err := os.Open(bin); err == nil {
		line, _ := bufio.NewReader(f).ReadString('\n')
		_ = f.Close()
		if fields := strings.Fields(strings.TrimPrefix(line, "#!")); strings.HasPrefix(line, "#!") && len(fields) == 1 {
			python = fields[0]
		}
	}
	return bin, python
}

// newCarbon writes a carbon.conf for a carbon-cache listening on
// 127.0.0.1:port (line protocol only) and storing 1s points for 10 minutes.
// It does not start it.
func newCarbon(t *testing.T, port int) *carbon {
	t.Helper()
	bin, python := findCarbon(t)
	c := &carbon{t: t, bin: bin, python: python, dir: t.TempDir(), port: port}
	c.data = filepath.Join(c.dir, "whisper")
	conf := fmt.Sprintf(`[cache]
STORAGE_DIR = %[1]s
LOCAL_DATA_DIR = %[2]s
CONF_DIR = %[1]s
LOG_DIR = %[1]s/log
PID_DIR = %[1]s
USER =
ENABLE_LOGROTATION = False
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = %[3]d
ENABLE_UDP_LISTENER = False
# 0 leaves the pickle receiver out; the cache query port must bind: any free one.
PICKLE_RECEIVER_PORT = 0
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = 0
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = inf
CACHE_WRITE_STRATEGY = naive
WHISPER_FALLOCATE_CREATE = False
# No graphite-web to register tags with; file names do not depend on it.
ENABLE_TAGS = False
TAG_HASH_FILENAMES = True
LOG_LISTENER_CONNECTIONS = True
`, c.dir, c.data, port)
	schemas := "[everything]\npattern = .*\nretentions = 1s:10m\n"
	for name, text := range map[string]string{"carbon.conf": conf, "storage-schemas.conf": schemas} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// startCarbon starts a carbon-cache on a free port and waits until it listens.
func startCarbon(t *testing.T) *carbon {
	t.Helper()
	c := newCarbon(t, freeTCPPort(t))
	c.start()
	return c
}

// Addr is carbon's plaintext line receiver.
func (c *carbon) Addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs carbon-cache in the foreground and waits (up to 20s) until its
// line receiver accepts connections. It is killed when the test ends.
func (c *carbon) start() {
	t := c.t
	t.Helper()
	cmd := exec.Command(c.bin, "--config="+filepath.Join(c.dir, "carbon.conf"), "--nodaemon", "start")
	cmd.Stdout = lockedWriter{&c.mu, &c.out}
	cmd.Stderr = lockedWriter{&c.mu, &c.out}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start carbon-cache: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("carbon-cache output:\n%s", c.output())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.Addr(), time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("carbon-cache exited at start:\n%s", c.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("carbon-cache does not listen on %s after 20s: %v\n%s", c.Addr(), err, c.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits (up to 10s) for carbon-cache to exit.
func (c *carbon) stop() {
	c.t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		c.t.Fatalf("carbon-cache did not stop within 10s of SIGTERM")
	}
}

func (c *carbon) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// point is one stored whisper point.
type point struct {
	TS int64
	V  float64
}

// fetchScript prints, for every metric name read (JSON list) from stdin, the
// non-empty points of its whisper file over the last 10 minutes. The file is
// found the way carbon names it: carbon.util.TaggedSeries normalises a tagged
// name (sorted tags) and encodes it into _tagged/<hash>/... .
const fetchScript = `
import json, os, sys, time
import whisper
from carbon.util import TaggedSeries
root, hash_only = sys.argv[1], sys.argv[2] == "1"
out = {}
now = int(time.time())
for name in json.load(sys.stdin):
    path = TaggedSeries.parse(name).path if ";" in name else name
    f = os.path.join(root, TaggedSeries.encode(path, os.sep, hash_only=hash_only) + ".wsp")
    if not os.path.exists(f):
        continue
    (start, end, step), values = whisper.fetch(f, now - 600, now + 1)
    out[name] = [[start + i * step, v] for i, v in enumerate(values) if v is not None]
json.dump(out, sys.stdout)
`

// fetch reads the points carbon stored for each name (as garner writes it,
// tags in any order). Names without a whisper file are absent from the map.
func (c *carbon) fetch(names []string) (map[string][]point, error) {
	in, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.python, "-c", fetchScript, c.data, "1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read whisper files: %w\n%s", err, stderr.String())
	}
	var raw map[string][][2]float64
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("read whisper files: %w: %q", err, out)
	}
	res := make(map[string][]point, len(raw))
	for name, pts := range raw {
		for _, p := range pts {
			res[name] = append(res[name], point{TS: int64(p[0]), V: p[1]})
		}
	}
	return res, nil
}

// waitStored polls carbon's files until check reports no problem, or 20s
// pass; it returns the last problems (nil when check passed) and the points.
func (c *carbon) waitStored(t testing.TB, names []string, check func(map[string][]point) []string) ([]string, map[string][]point) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := c.fetch(names)
		if err != nil {
			t.Fatal(err)
		}
		problems := check(got)
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems, got
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func sum(pts []point) float64 {
	var s float64
	for _, p := range pts {
		s += p.V
	}
	return s
}

// nonZero keeps the points whose value is not 0 (idle series are re-sent as 0).
func nonZero(pts []point) []point {
	var out []point
	for _, p := range pts {
		if p.V != 0 {
			out = append(out, p)
		}
	}
	return out
}

// changes is the value sequence with consecutive repeats collapsed.
func changes(pts []point) []float64 {
	var out []float64
	for _, p := range pts {
		if len(out) == 0 || out[len(out)-1] != p.V {
			out = append(out, p.V)
		}
	}
	return out
}

func valueAt(pts []point, ts int64) (float64, bool) {
	for _, p := range pts {
		if p.TS == ts {
			return p.V, true
		}
	}
	return 0, false
}
