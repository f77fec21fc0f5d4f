package garnertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Carbon is a real carbon-cache (Debian graphite-carbon) started by the test
// on a loopback port, with its whisper files in a temporary directory.
type Carbon struct {
	t      testing.TB
	bin    string // carbon-cache
	python string // the interpreter carbon-cache runs with (has whisper and carbon)
	dir    string // CONF_DIR and STORAGE_DIR
	data   string // LOCAL_DATA_DIR
	port   int
	srv    *Server // the running carbon-cache, nil before Start
}

// findCarbon returns carbon-cache's path and its Python interpreter.
func findCarbon(t testing.TB) (bin, python string) {
	t.Helper()
	bin = NeedBinary(t, "carbon-cache", "graphite-carbon")
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

// NewCarbon writes a carbon.conf for a carbon-cache listening on
// 127.0.0.1:port (line protocol only) and storing 1s points for 10 minutes.
// It does not start it.
func NewCarbon(t testing.TB, port int) *Carbon {
	t.Helper()
	return NewCarbonStep(t, port, time.Second)
}

// NewCarbonStep is NewCarbon storing one point per step (whole seconds) for
// 10 minutes: carbon keeps the last point written in a step.
func NewCarbonStep(t testing.TB, port int, step time.Duration) *Carbon {
	t.Helper()
	bin, python := findCarbon(t)
	c := &Carbon{t: t, bin: bin, python: python, dir: t.TempDir(), port: port}
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
	schemas := fmt.Sprintf("[everything]\npattern = .*\nretentions = %ds:10m\n", int(step.Seconds()))
	for name, text := range map[string]string{"carbon.conf": conf, "storage-schemas.conf": schemas} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// StartCarbon starts a carbon-cache on a free port and waits until it listens.
func StartCarbon(t testing.TB) *Carbon {
	t.Helper()
	c := NewCarbon(t, FreePort(t))
	c.Start()
	return c
}

// Addr is carbon's plaintext line receiver.
func (c *Carbon) Addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

// Start runs carbon-cache in the foreground and waits until its line
// receiver accepts connections. It is killed when the test ends.
func (c *Carbon) Start() {
	c.t.Helper()
	cmd := exec.Command(c.bin, "--config="+filepath.Join(c.dir, "carbon.conf"), "--nodaemon", "start")
	c.srv = StartServer(c.t, "carbon-cache", cmd, TCPReady(c.Addr()))
}

// Stop sends SIGTERM and waits (up to 10s) for carbon-cache to exit.
func (c *Carbon) Stop() {
	c.t.Helper()
	c.srv.Stop(c.t, 10*time.Second)
}

// WhisperPoint is one point carbon stored.
type WhisperPoint struct {
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

// Fetch reads the points carbon stored for each name (as garner writes it,
// tags in any order). Names without a whisper file are absent from the map.
func (c *Carbon) Fetch(names []string) (map[string][]WhisperPoint, error) {
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
	res := make(map[string][]WhisperPoint, len(raw))
	for name, pts := range raw {
		for _, p := range pts {
			res[name] = append(res[name], WhisperPoint{TS: int64(p[0]), V: p[1]})
		}
	}
	return res, nil
}

// WaitStored polls carbon's files until check reports no problem, or 20s
// pass; it returns the last problems (nil when check passed) and the points.
func (c *Carbon) WaitStored(t testing.TB, names []string, check func(map[string][]WhisperPoint) []string) ([]string, map[string][]WhisperPoint) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := c.Fetch(names)
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
