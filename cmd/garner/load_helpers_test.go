package main_test

// Helpers of the load tests (overload, restarts, HTTP backend outage): garner
// and garner-load built without the race detector (garnertest.PlainBinary),
// a counter of what the Graphite listener received, and a loopback HTTP
// server that takes InfluxDB writes and can be told to fail, hang or answer
// late.

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// skipLoadUnderShort skips the load tests under -short: each runs a real
// garner flat out or at a steady rate for several seconds.
func skipLoadUnderShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("load test: skipped under -short")
	}
}

// startPlain runs the plain garner with args and waits until it started.
func startPlain(t *testing.T, args ...string) *garnertest.Process {
	t.Helper()
	return garnertest.StartBinaryReady(t, garnertest.PlainBinary(t, garnertest.GarnerPackage), args...)
}

// loadResult is the part of garner-load's JSON report the tests use.
type loadResult struct {
	Lines          int64   `json:"lines"`
	Datagrams      int64   `json:"datagrams"`
	Rate           float64 `json:"rate"`
	SendErrors     int64   `json:"send_errors"`
	MinLinesPerDgm int     `json:"min_lines_per_datagram"`
	MaxLinesPerDgm int     `json:"max_lines_per_datagram"`
}

// startLoad runs garner-load against the statsd address addr with args
// (which must bound it in time or lines).
func startLoad(t *testing.T, addr string, args ...string) *garnertest.Process {
	t.Helper()
	bin := garnertest.PlainBinary(t, garnertest.LoadPackage)
	return garnertest.StartBinary(t, bin, append([]string{"--addr", addr, "--progress", "0"}, args...)...)
}

// loadDone waits for garner-load to finish and returns its report.
func loadDone(t *testing.T, p *garnertest.Process, timeout time.Duration) loadResult {
	t.Helper()
	if code := p.Wait(timeout); code != 0 {
		t.Fatalf("garner-load exit %d:\n%s", code, p.Stderr())
	}
	var r loadResult
	if err := json.Unmarshal([]byte(p.Stdout()), &r); err != nil {
		t.Fatalf("garner-load report: %v\n%s", err, p.Stdout())
	}
	return r
}

// ingested is what garner kept of what it read, according to its
// self-metrics: lines read minus bad lines minus samples dropped on full
// shard queues (one sample per line for unpacked counters).
func ingested(m garnertest.Metrics) float64 {
	return m.Sum("garner_receiver_lines_total") - m.Sum("garner_receiver_bad_lines_total") -
		m.Sum("garner_aggregator_queue_dropped_lines_total")
}

// finalScrape waits for garner to log that its receivers have stopped
// ("shutting down: final flush"), then scrapes /metrics while the final
// flush runs (the admin server stays up until it is done). The counters it
// returns cover everything garner read.
func finalScrape(t *testing.T, p *garnertest.Process, admin string) garnertest.Metrics {
	t.Helper()
	if !p.WaitStderr("shutting down: final flush", 20*time.Second) {
		t.Fatalf("garner did not reach its final flush:\n%s", p.Stderr())
	}
	client := &http.Client{Timeout: time.Second}
	m, err := garnertest.Scrape(client, admin)
	if err != nil {
		t.Fatalf("scrape during the final flush: %v (the influxdb writes were held to keep it open)", err)
	}
	return m
}

// counterTotal adds every value the Graphite listener got for the counters
// under prefix (<prefix>.<name>.count): the sum over all flushes of every
// process that flushed to it.
func counterTotal(g *garnertest.Graphite, prefix string) float64 {
	var total float64
	for _, p := range g.Points() {
		name, _, _ := strings.Cut(p.Name, ";")
		if !strings.HasPrefix(name, "stats.counters."+prefix+".") || !strings.HasSuffix(name, ".count") {
			continue
		}
		v, _ := strconv.ParseFloat(p.Value, 64)
		total += v
	}
	return total
}

// Modes of influxServer.
const (
	influxOK   int32 = iota // 204
	influxFail              // 500
	influxHang              // never answers until the mode changes or the client gives up
)

// influxWrite is one write request answered 204.
type influxWrite struct {
	at    time.Time
	lines []string
}

// influxServer takes InfluxDB writes (v2, and v1's /write) on loopback. It stands in for a
// real InfluxDB where the test needs the failure on demand (a real one
// cannot be made to answer 500 or hang); it does not check the line
// protocol beyond splitting lines.
type influxServer struct {
	srv     *httptest.Server
	mode    atomic.Int32
	holdFor atomic.Int64 // answer 204 only after this many nanoseconds
	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the mode changes
	writes  []influxWrite
	failed  int // requests answered 500 or left hanging
}

func newInfluxServer(t *testing.T) *influxServer {
	t.Helper()
	return startInfluxServer(t, nil)
}

// newInfluxServerTLS is an influxServer that serves HTTPS with cfg (whose
// s.srv.URL is https://); it does not log the handshakes it refuses.
func newInfluxServerTLS(t *testing.T, cfg *tls.Config) *influxServer {
	t.Helper()
	return startInfluxServer(t, cfg)
}

func startInfluxServer(t *testing.T, cfg *tls.Config) *influxServer {
	t.Helper()
	s := &influxServer{changed: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	if cfg != nil {
		s.srv.Listener = tls.NewListener(s.srv.Listener, cfg)
		s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	}
	s.srv.Start()
	if cfg != nil {
		s.srv.URL = "https://" + s.srv.Listener.Addr().String()
	}
	t.Cleanup(func() {
		s.setMode(influxOK) // releases hanging requests
		s.holdFor.Store(0)
		s.srv.Close()
	})
	return s
}

func (s *influxServer) setMode(m int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode.Store(m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// hold makes every 204 wait d first (0 = answer at once).
func (s *influxServer) hold(d time.Duration) { s.holdFor.Store(int64(d)) }

func (s *influxServer) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || (r.URL.Path != "/api/v2/write" && r.URL.Path != "/write") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for {
		s.mu.Lock()
		mode, changed := s.mode.Load(), s.changed
		s.mu.Unlock()
		switch mode {
		case influxFail:
			s.mu.Lock()
			s.failed++
			s.mu.Unlock()
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		case influxHang:
			s.mu.Lock()
			s.failed++
			s.mu.Unlock()
			select {
			case <-changed:
				continue // answer as the new mode says
			case <-r.Context().Done():
				return
			}
		}
		break
	}
	if d := time.Duration(s.holdFor.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	s.mu.Lock()
	s.writes = append(s.writes, influxWrite{at: time.Now(), lines: lines})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// accepted returns the writes answered 204 so far, in order.
func (s *influxServer) accepted() []influxWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]influxWrite(nil), s.writes...)
}

func (s *influxServer) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// influxConfig is a config file with the graphite backend pointing at
// graphite (if not empty) and the influxdb backend at s, plus extra TOML
// for the [influxdb] section.
func influxConfig(t *testing.T, s *influxServer, graphite, influxExtra string) string {
	t.Helper()
	var b strings.Builder
	if graphite != "" {
		fmt.Fprintf(&b, "backends = \"graphite influxdb\"\n[graphite]\naddress = %q\n", graphite)
	} else {
		b.WriteString("backends = \"influxdb\"\n")
	}
	fmt.Fprintf(&b, "[influxdb]\napi-endpoint = %q\napi-version = 2\norg = \"o\"\nbucket = \"b\"\ncompress-payload = false\n%s", s.srv.URL, influxExtra)
	path := filepath.Join(t.TempDir(), "garner.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitReady polls admin's readiness until it answers 200.
func waitReady(t *testing.T, admin string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + admin + "/health/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/health/ready did not answer 200 within %s", admin, timeout)
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

var errNot2xx = errors.New("status not 2xx")

// timedGet GETs url and returns how long the whole answer took; a status
// other than 2xx is an error.
func timedGet(client *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		err = fmt.Errorf("%w: %s", errNot2xx, resp.Status)
	}
	return time.Since(start), err
}

const sigterm = syscall.SIGTERM
