package garnertest

// Real servers for integration tests: carbon-cache, VictoriaMetrics,
// InfluxDB 1.x and Prometheus from their Debian packages, each on a free
// loopback port with its data in a temporary folder, stopped when the test
// ends. A missing server binary skips the test, except under CI=true where
// it fails it: CI installs the packages (.ci/run).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NeedBinary finds bin on PATH (or in /usr/bin) or skips the test, saying
// which Debian package has it; under CI=true it fails the test instead.
func NeedBinary(t testing.TB, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/" + bin); err == nil {
		return "/usr/bin/" + bin
	}
	msg := fmt.Sprintf("%s not found: install the Debian package %q (apt-get install -y %s)", bin, pkg, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// lockedBuffer collects a process's output; past limit bytes (0: no limit)
// it keeps nothing more.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	limit int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit > 0 && l.b.Len() > l.limit {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Server is a server process a test started.
type Server struct {
	Name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// Output returns what the server wrote to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.done }

// StartServerOnPorts starts a server on n free loopback ports: build makes
// its command and readiness check for the ports it is given. Ports are
// chosen free, but another process may bind one before the server does (go
// test runs packages in parallel); a server that exits before it is ready
// saying "address already in use" is started again on new ports, up to
// three times. It returns the server and the ports it runs on.
func StartServerOnPorts(t testing.TB, name string, n int, build func(ports []int) (*exec.Cmd, func() bool)) (*Server, []int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := FreePorts(t, n)
		cmd, ready := build(ports)
		s, err := startServer(t, name, cmd, ready)
		if err == nil {
			return s, ports
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("%s: a port was taken before it bound it; starting it again on new ports", name)
	}
}

// StartServer runs cmd and waits (up to 30s) until ready reports true,
// failing the test if the process exits first or the time passes. The
// process is killed when the test ends; its output is logged if the test
// failed.
func StartServer(t testing.TB, name string, cmd *exec.Cmd, ready func() bool) *Server {
	t.Helper()
	s, err := startServer(t, name, cmd, ready)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer is StartServer returning why the server did not get ready.
func startServer(t testing.TB, name string, cmd *exec.Cmd, ready func() bool) (*Server, error) {
	t.Helper()
	s := &Server{Name: name, cmd: cmd, out: &lockedBuffer{limit: 1 << 20}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(s.Output(), 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited before it was ready:\n%s", name, tail(s.Output(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not ready after 30s:\n%s", name, tail(s.Output(), 4000))
		}
	}
	return s, nil
}

// Stop sends the server SIGTERM and waits up to timeout for it to exit; it
// fails the test (after killing it) if it does not.
func (s *Server) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("%s did not stop within %s of SIGTERM", s.Name, timeout)
	}
}

// HTTPReady is a readiness probe: GET url answers 2xx.
func HTTPReady(url string) func() bool {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode/100 == 2
	}
}

// TCPReady is a readiness probe: addr accepts a TCP connection.
func TCPReady(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// VictoriaMetrics is a running single-node VictoriaMetrics.
type VictoriaMetrics struct {
	URL          string // http://127.0.0.1:<port>
	GraphiteAddr string // 127.0.0.1:<port> of the Graphite listener, if asked for
}

// StartVictoriaMetrics starts victoria-metrics on a free loopback port with
// a temporary storage folder. With graphite set it also listens for Graphite
// plaintext on another free loopback port (GraphiteAddr).
func StartVictoriaMetrics(t testing.TB, graphite bool) *VictoriaMetrics {
	t.Helper()
	bin := NeedBinary(t, "victoria-metrics", "victoria-metrics")
	dataDir := filepath.Join(t.TempDir(), "vm")
	n := 1
	if graphite {
		n = 2
	}
	vm := &VictoriaMetrics{}
	StartServerOnPorts(t, "victoria-metrics", n, func(ports []int) (*exec.Cmd, func() bool) {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		args := []string{
			"-httpListenAddr", addr,
			"-storageDataPath", dataDir,
			"-retentionPeriod", "100y", // accept any timestamp a test sends
			"-loggerLevel", "ERROR",
		}
		vm.URL = "http://" + addr
		if graphite {
			vm.GraphiteAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
			args = append(args, "-graphiteListenAddr", vm.GraphiteAddr)
		}
		return exec.Command(bin, args...), HTTPReady(vm.URL + "/health")
	})
	return vm
}

// Series is one exported series: its labels (__name__ included) and samples.
type Series struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// Name is the series' __name__.
func (s Series) Name() string { return s.Metric["__name__"] }

// Sum adds the series' values.
func (s Series) Sum() float64 {
	var x float64
	for _, v := range s.Values {
		x += v
	}
	return x
}

// Key is the series as a selector names it: name{k="v",...}, the labels
// sorted.
func (s Series) Key() string {
	var parts []string
	for k, v := range s.Metric {
		if k != "__name__" {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(parts)
	return s.Name() + "{" + strings.Join(parts, ",") + "}"
}

// Keys are the Keys of series, sorted.
func Keys(series []Series) []string {
	out := make([]string, 0, len(series))
	for _, s := range series {
		out = append(out, s.Key())
	}
	sort.Strings(out)
	return out
}

// CheckSamples fails the test for every series of want (keyed by Key) that
// got lacks, or that does not hold exactly one sample, of the wanted value,
// at time at.
func CheckSamples(t testing.TB, got []Series, want map[string]float64, at time.Time) {
	t.Helper()
	have := make(map[string]Series, len(got))
	for _, s := range got {
		have[s.Key()] = s
	}
	for k, v := range want {
		s, ok := have[k]
		if !ok {
			t.Errorf("series %s missing; have %v", k, Keys(got))
			continue
		}
		if len(s.Values) != 1 || s.Values[0] != v || s.Timestamps[0] != at.UnixMilli() {
			t.Errorf("%s = %v at %v, want %v at %d", k, s.Values, s.Timestamps, v, at.UnixMilli())
		}
	}
}

// Export flushes VictoriaMetrics' buffers and returns every series matching
// the selector (e.g. `{__name__=~"app.*"}`), sorted by name and labels.
func (vm *VictoriaMetrics) Export(t testing.TB, selector string) []Series {
	t.Helper()
	resp, err := http.Get(vm.URL + "/internal/force_flush")
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	resp, err = http.PostForm(vm.URL+"/api/v1/export", url.Values{"match[]": {selector}})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("export %q: %s: %s", selector, resp.Status, b)
	}
	var out []Series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var s Series
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("export: %v", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func (s Series) key() string {
	keys := make([]string, 0, len(s.Metric))
	for k := range s.Metric {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + s.Metric[k] + ",")
	}
	return b.String()
}

// WaitExport polls Export until cond holds (or 20s pass) and returns the
// last result.
func (vm *VictoriaMetrics) WaitExport(t testing.TB, selector string, cond func([]Series) bool) []Series {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := vm.Export(t, selector)
		if cond(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// InfluxDB is a running InfluxDB 1.x.
type InfluxDB struct {
	URL string // http://127.0.0.1:<port>
}

// StartInfluxDB starts influxd (1.x) with a generated config: HTTP on a free
// loopback port, everything else off, data in a temporary folder.
func StartInfluxDB(t testing.TB) *InfluxDB {
	t.Helper()
	bin := NeedBinary(t, "influxd", "influxdb")
	dir := t.TempDir()
	db := &InfluxDB{}
	StartServerOnPorts(t, "influxd", 2, func(ports []int) (*exec.Cmd, func() bool) {
		port, rpc := ports[0], ports[1]
		conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
  logging-enabled = false
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[coordinator]
  log-queries-after = "0s"
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = false
  log-enabled = false
  flux-enabled = false
[logging]
  level = "error"
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
`, rpc, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), port)
		path := filepath.Join(dir, "influxdb.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-config", path)
		cmd.Env = append(os.Environ(), "INFLUXDB_CONFIG_PATH="+path)
		db.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
		return cmd, HTTPReady(db.URL + "/ping")
	})
	return db
}

// Query runs an InfluxQL statement against db and returns the decoded
// response. A statement error fails the test.
func (db *InfluxDB) Query(t testing.TB, database, q string) InfluxResult {
	t.Helper()
	resp, err := http.PostForm(db.URL+"/query", url.Values{"db": {database}, "q": {q}, "epoch": {"ms"}})
	if err != nil {
		t.Fatalf("influx query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != 200 {
		t.Fatalf("influx query %q: %s: %s", q, resp.Status, body)
	}
	var r InfluxResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("influx query %q: %v: %s", q, err, body)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			t.Fatalf("influx query %q: %s", q, res.Error)
		}
	}
	return r
}

// InfluxResult is the JSON answer of /query.
type InfluxResult struct {
	Results []struct {
		Error  string `json:"error"`
		Series []struct {
			Name    string            `json:"name"`
			Tags    map[string]string `json:"tags"`
			Columns []string          `json:"columns"`
			Values  [][]any           `json:"values"`
		} `json:"series"`
	} `json:"results"`
}

// Rows flattens the first statement's result into one map per row
// (column → value), with the series' name under "_measurement" and its tags
// (GROUP BY) merged in.
func (r InfluxResult) Rows() []map[string]any {
	var out []map[string]any
	if len(r.Results) == 0 {
		return nil
	}
	for _, s := range r.Results[0].Series {
		for _, v := range s.Values {
			row := map[string]any{"_measurement": s.Name}
			for k, tv := range s.Tags {
				row[k] = tv
			}
			for i, c := range s.Columns {
				if i < len(v) {
					row[c] = v[i]
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// Prometheus is a running Prometheus with the remote write receiver on.
type Prometheus struct {
	URL string // http://127.0.0.1:<port>
}

// StartPrometheus runs prometheus --web.enable-remote-write-receiver on a
// free loopback port with a temporary TSDB and a config without scrapes,
// with flags added (e.g. --enable-feature=native-histograms).
func StartPrometheus(t testing.TB, flags ...string) *Prometheus {
	t.Helper()
	return startPrometheus(t, "global:\n  scrape_interval: 1m\n", append([]string{"--web.enable-remote-write-receiver"}, flags...)...)
}

// startPrometheus runs prometheus with config yml on a free loopback port
// and a temporary TSDB, with flags added, and waits until it is ready.
func startPrometheus(t testing.TB, yml string, flags ...string) *Prometheus {
	t.Helper()
	bin := NeedBinary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{}
	StartServerOnPorts(t, "prometheus", 1, func(ports []int) (*exec.Cmd, func() bool) {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		cmd := exec.Command(bin, append([]string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
			"--web.listen-address=" + addr,
			"--log.level=warn",
		}, flags...)...)
		p.URL = "http://" + addr
		return cmd, HTTPReady(p.URL + "/-/ready")
	})
	return p
}

// StartPrometheusScraping runs prometheus on a free loopback port with a
// temporary TSDB, scraping http://<target><path> every second (job
// "garner"), so a test can read back what a real scrape stored.
func StartPrometheusScraping(t testing.TB, target, path string) *Prometheus {
	t.Helper()
	return startPrometheus(t, fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n- job_name: garner\n  metrics_path: %q\n  static_configs:\n  - targets: [%q]\n", path, target))
}

// Query runs an instant PromQL query now and returns each sample's labels
// (__name__ included when the result keeps it) and value.
func (p *Prometheus) Query(t testing.TB, q string) []Series {
	t.Helper()
	return p.QueryAt(t, q, time.Time{})
}

// QueryAt runs an instant PromQL query at time at (now when at is zero) and
// returns each sample's labels, value (Values[0]) and timestamp in
// milliseconds (Timestamps[0]).
func (p *Prometheus) QueryAt(t testing.TB, q string, at time.Time) []Series {
	t.Helper()
	params := url.Values{"query": {q}}
	if !at.IsZero() {
		params.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	resp, err := http.Get(p.URL + "/api/v1/query?" + params.Encode())
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %q: %v %s", q, err, body)
	}
	var out []Series
	for _, x := range r.Data.Result {
		ts, _ := x.Value[0].(float64)
		vs, _ := x.Value[1].(string)
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			t.Fatalf("query %q: value %q: %v", q, vs, err)
		}
		out = append(out, Series{Metric: x.Metric, Values: []float64{v}, Timestamps: []int64{int64(math.Round(ts * 1000))}})
	}
	return out
}
