package web_test

// End-to-end tests: the real garner binary, real datagrams, real HTTP.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// instance is a running garner with its admin and statsd addresses.
type instance struct {
	p      *garnertest.Process
	admin  string // http://127.0.0.1:port
	statsd string // 127.0.0.1:port
}

// startGarner runs garner on loopback ports it picks and waits until it is
// ready. extra flags go last, so they win.
func startGarner(t *testing.T, extra ...string) *instance {
	t.Helper()
	args := append([]string{
		"--admin-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--backends=null",
		"--max-readers=1", "--max-workers=1",
	}, extra...)
	in := &instance{p: garnertest.Start(t, args...)}
	in.admin, in.statsd = "http://"+in.p.AdminAddr(t), in.p.UDPAddr(t)
	waitStatus(t, in.p, in.admin+"/health/ready", 200, 20*time.Second)
	return in
}

type resp struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, method, url, token string) resp {
	t.Helper()
	r, err := tryGet(method, url, token, 10*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryGet(method, url, token string, timeout time.Duration) (resp, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return resp{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: timeout}
	res, err := c.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}, err
}

// waitStatus polls url until it answers code; it fails the test if p exits.
func waitStatus(t *testing.T, p *garnertest.Process, url string, code int, timeout time.Duration) resp {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last resp
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = tryGet("GET", url, "", 2*time.Second)
		if lastErr == nil && last.code == code {
			return last
		}
		if p != nil && p.Wait(0) >= 0 {
			t.Fatalf("garner exited while waiting for %s to answer %d:\n%s", url, code, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d (last %d %q, %v)", url, code, last.code, last.body, lastErr)
	return last
}

func TestE2EEndpoints(t *testing.T) {
	g := startGarner(t, "--enable-prof", "--enable-expvar")
	garnertest.SendUDP(t, g.statsd, "e2e.hits:3|c\ne2e.bad:x|c\ne2e.temp:21|g")
	garnertest.WaitFor(t, "lines counted", 10*time.Second, func() bool {
		return strings.Contains(get(t, "GET", g.admin+"/expvar", "").body, `"received_lines": 3`)
	})
	jsonHas := func(keys ...string) func(t *testing.T, body string) {
		return func(t *testing.T, body string) {
			t.Helper()
			var m map[string]any
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			for _, k := range keys {
				if _, ok := m[k]; !ok {
					t.Fatalf("no %q in %s", k, body)
				}
			}
		}
	}
	contains := func(s string) func(t *testing.T, body string) {
		return func(t *testing.T, body string) {
			t.Helper()
			if !strings.Contains(body, s) {
				t.Fatalf("body does not contain %q:\n%.2000s", s, body)
			}
		}
	}
	tests := []struct {
		path  string
		code  int
		ctype string
		check func(t *testing.T, body string)
	}{
		{"/healthcheck", 200, "application/json", contains(`"ok": [`)},
		{"/deepcheck", 200, "application/json", jsonHas("ok", "failed")},
		{"/health", 200, "application/json", jsonHas("status", "timestamp", "uptime", "uptime_seconds", "version", "checks", "response_time_ms")},
		{"/health/live", 204, "", nil},
		{"/health/probes/liveness", 200, "text/plain", contains("OK")},
		{"/health/ready", 200, "text/plain", contains("OK")},
		{"/health/probes/readiness", 200, "text/plain", contains("OK")},
		{"/health/startup", 200, "text/plain", contains("OK")},
		{"/health/probes/startup", 200, "text/plain", contains("OK")},
		{"/health/up", 200, "application/json", jsonHas("status", "version", "commit", "build_date", "hostname", "server_mode", "uptime")},
		{"/health/dependencies", 200, "application/json", jsonHas("status", "dependencies")},
		{"/status", 200, "application/json", contains(`"name": "receivers"`)},
		{"/status/flush", 200, "application/json", contains(`"status": "OK"`)},
		{"/status/nope", 404, "application/json", contains("known: flush, receivers, shards")},
		{"/metrics", 200, "text/plain", contains("garner_build_info{")},
		{"/health/metrics", 200, "text/plain", contains(`garner_receiver_lines_total{receiver="udp"} 3`)},
		{"/expvar", 200, "application/json", contains(`"bad_lines": 1`)},
		{"/debug/pprof/", 200, "text/html", contains("goroutine")},
		{"/debug/pprof/goroutine?debug=1", 200, "text/plain", contains("goroutine profile")},
		{"/debug/pprof/heap", 200, "application/octet-stream", nil},
		{"/debug/pprof/cmdline", 200, "text/plain", contains("--enable-prof")},
		{"/", 200, "text/html", contains("<title>garner status</title>")},
		{"/ui", 200, "text/html", contains("ui/data")},
		{"/ui/data", 200, "application/json", jsonHas("totals", "rates", "dependencies", "last_flush")},
		{"/nope", 404, "", nil},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			r := get(t, "GET", g.admin+tt.path, "")
			if r.code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tt.path, r.code, tt.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Fatalf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if s := r.header.Get("Server"); s != "garner" {
				t.Fatalf("Server header %q, want \"garner\" without a version", s)
			}
			if tt.check != nil {
				tt.check(t, r.body)
			}
			h := get(t, "HEAD", g.admin+tt.path, "")
			if h.code != tt.code || h.body != "" {
				t.Fatalf("HEAD %s: %d with %d body bytes, want %d and none", tt.path, h.code, len(h.body), tt.code)
			}
			if ct := h.header.Get("Content-Type"); ct != r.header.Get("Content-Type") {
				t.Fatalf("HEAD Content-Type %q, GET had %q", ct, r.header.Get("Content-Type"))
			}
		})
	}
	if r := get(t, "POST", g.admin+"/health", ""); r.code != 405 || r.header.Get("Allow") == "" {
		t.Fatalf("POST /health: %d, Allow %q", r.code, r.header.Get("Allow"))
	}
}

func TestE2EMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool (Debian package prometheus) is required in CI")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	g := startGarner(t, "--flush-interval=200ms", "--enable-prof")
	garnertest.SendUDP(t, g.statsd, "a:1|c", "b:2|ms", "bad line")
	_ = get(t, "GET", g.admin+"/health", "")
	_ = get(t, "GET", g.admin+"/debug/pprof/", "")
	garnertest.WaitFor(t, "two flushes and the bad line counted", 10*time.Second, func() bool {
		m := garnertest.MustScrape(t, strings.TrimPrefix(g.admin, "http://"))
		return m.Sum("garner_flush_total") >= 2 && m.Sum("garner_receiver_bad_lines_total") >= 1
	})
	for _, path := range []string{"/metrics", "/health/metrics"} {
		body := get(t, "GET", g.admin+path, "").body
		for _, want := range []string{
			"garner_build_info{", "garner_http_requests_total{", "go_goroutines ", "process_cpu_seconds_total ",
			"garner_flush_total ", "garner_receiver_bad_lines_total{",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s has no %q", path, want)
			}
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check metrics on %s: %v\n%s", path, err, out)
		}
	}
}

func TestE2EConcurrentProfiles(t *testing.T) {
	g := startGarner(t, "--enable-prof")
	url := g.admin + "/debug/pprof/profile?seconds=2"
	var wg sync.WaitGroup
	results := make([]resp, 2)
	for i := range results {
		wg.Go(func() {
			r, err := tryGet("GET", url, "", 30*time.Second)
			if err != nil {
				t.Errorf("profile %d: %v", i, err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	codes := []int{results[0].code, results[1].code}
	var ok, busy *resp
	for i := range results {
		switch results[i].code {
		case 200:
			ok = &results[i]
		case 429:
			busy = &results[i]
		}
	}
	if ok == nil || busy == nil {
		t.Fatalf("two concurrent CPU profiles answered %v, want one 200 and one 429", codes)
	}
	if len(ok.body) == 0 {
		t.Fatal("the profile that ran is empty")
	}
	if ra, err := strconv.Atoi(busy.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1..2", busy.header.Get("Retry-After"))
	}
	if !strings.Contains(busy.body, "profile_busy") {
		t.Fatalf("429 body: %s", busy.body)
	}
	// The slot is free again.
	if r := get(t, "GET", g.admin+"/debug/pprof/trace?seconds=0.1", ""); r.code != 200 {
		t.Fatalf("trace after the profiles: %d", r.code)
	}
}

func TestE2EToken(t *testing.T) {
	const token = "e2e-token-Zq9"
	g := startGarner(t, "--admin-token="+token, "--enable-expvar")
	tests := []struct {
		path, token string
		code        int
	}{
		{"/health/live", "", 204},
		{"/health/ready", "", 200},
		{"/health/startup", "", 200},
		{"/health/probes/liveness", "", 200},
		{"/health/probes/readiness", "", 200},
		{"/health/probes/startup", "", 200},
		{"/healthcheck", "", 200},
		{"/deepcheck", "", 401},
		{"/health", "", 401},
		{"/health/up", "", 401},
		{"/health/dependencies", "", 401},
		{"/metrics", "", 401},
		{"/expvar", "", 401},
		{"/status", "", 401},
		{"/ui/data", "", 401},
		{"/health", "wrong", 401},
		{"/health", token, 200},
		{"/metrics", token, 200},
		{"/expvar", token, 200},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_token=%q", tt.path, tt.token), func(t *testing.T) {
			r := get(t, "GET", g.admin+tt.path, tt.token)
			if r.code != tt.code {
				t.Fatalf("%d, want %d: %s", r.code, tt.code, r.body)
			}
			if tt.code != 401 {
				return
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error != "unauthorized" || e.Message == "" {
				t.Fatalf("401 body %q (%v)", r.body, err)
			}
		})
	}
}

// TestE2EShutdownGrace: on SIGTERM readiness is 503 at once, ingestion goes
// on for the grace period, then the final flush delivers what came in.
func TestE2EShutdownGrace(t *testing.T) {
	gr := garnertest.NewGraphite(t)
	cfg := filepath.Join(t.TempDir(), "g.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[graphite]\naddress = %q\nmode = \"basic\"\n", gr.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	// Long enough that a loaded machine still has most of it left after the
	// checks below; the test takes this long.
	const grace = 6 * time.Second
	g := startGarner(t, "--config-path="+cfg, "--backends=graphite", "--flush-interval=1h", "--shutdown-grace="+grace.String())
	garnertest.SendUDP(t, g.statsd, "grace.before:1|c")

	signalled := time.Now()
	g.p.Signal(syscall.SIGTERM)
	// "At once" means well inside the grace period, whatever the load.
	r := waitStatus(t, nil, g.admin+"/health/ready", 503, grace/2)
	if el := time.Since(signalled); el > grace/2 {
		t.Fatalf("readiness turned 503 only after %s of a %s grace period", el, grace)
	}
	if !strings.Contains(r.body, "shutting down") {
		t.Fatalf("503 body %q", r.body)
	}
	if r := get(t, "GET", g.admin+"/health/live", ""); r.code != 204 {
		t.Fatalf("liveness during the grace period: %d", r.code)
	}
	if r := get(t, "GET", g.admin+"/healthcheck", ""); r.code != 200 {
		t.Fatalf("/healthcheck during the grace period: %d %s", r.code, r.body)
	}
	var full struct{ Draining, Ready bool }
	if err := json.Unmarshal([]byte(get(t, "GET", g.admin+"/health", "").body), &full); err != nil || !full.Draining || full.Ready {
		t.Fatalf("/health during the grace period: %+v, %v", full, err)
	}
	// Still ingesting: these lines arrive after readiness went 503.
	garnertest.SendUDP(t, g.statsd, "grace.during:5|c")
	if code := g.p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, g.p.Stderr())
	}
	if el := time.Since(signalled); el < grace {
		t.Fatalf("garner exited %s after SIGTERM, before the %s grace period ended", el, grace)
	}
	if !gr.WaitFor(5*time.Second, func(lines []string) bool {
		var before, during bool
		for _, l := range lines {
			before = before || strings.HasPrefix(l, "stats.counters.grace.before.count 1 ")
			during = during || strings.HasPrefix(l, "stats.counters.grace.during.count 5 ")
		}
		return before && during
	}) {
		t.Fatalf("final flush lacks the lines sent before and during the grace period; got:\n%s", strings.Join(gr.Lines(), "\n"))
	}
}

// TestE2ESecondInstance: a second garner on a taken admin address exits 3 (a listen address cannot be bound)
// and says who holds it.
func TestE2ESecondInstance(t *testing.T) {
	first := startGarner(t)
	adminAddr := strings.TrimPrefix(first.admin, "http://")
	var up struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(get(t, "GET", first.admin+"/health/up", "").body), &up); err != nil || up.Version == "" {
		t.Fatalf("/health/up: %+v %v", up, err)
	}

	t.Run("garner holds it", func(t *testing.T) {
		second := garnertest.Start(t, "--admin-addr="+adminAddr, "--metrics-addr=127.0.0.1:0", "--backends=null")
		if code := second.Wait(20 * time.Second); code != 3 {
			t.Fatalf("exit code %d, want 3\n%s", code, second.Stderr())
		}
		for _, want := range []string{"another garner is already running", adminAddr, "version " + up.Version, up.Commit} {
			if !strings.Contains(second.Stderr(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, second.Stderr())
			}
		}
	})
	t.Run("statsd port not shared", func(t *testing.T) {
		// Same statsd port too: the second must not get to bind it.
		second := garnertest.Start(t, "--admin-addr="+adminAddr, "--metrics-addr="+first.statsd, "--backends=null")
		if code := second.Wait(20 * time.Second); code != 3 {
			t.Fatalf("exit code %d, want 3", code)
		}
		if strings.Contains(second.Stderr(), "listening for statsd") {
			t.Fatalf("the second instance bound the statsd port:\n%s", second.Stderr())
		}
	})
	t.Run("another process holds it", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() { // answers nothing useful
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
				_ = c.Close()
			}
		}()
		second := garnertest.Start(t, "--admin-addr="+ln.Addr().String(), "--metrics-addr=127.0.0.1:0", "--backends=null")
		if code := second.Wait(20 * time.Second); code != 3 {
			t.Fatalf("exit code %d, want 3\n%s", code, second.Stderr())
		}
		if !strings.Contains(second.Stderr(), "is taken by another process; another instance may already be running") {
			t.Fatalf("stderr:\n%s", second.Stderr())
		}
	})
}

// TestE2EDependencyDownThenUp: a Graphite backend whose server is down, then
// comes up.
func TestE2EDependencyDownThenUp(t *testing.T) {
	carbonPort := garnertest.FreePort(t)
	carbonAddr := fmt.Sprintf("127.0.0.1:%d", carbonPort)
	cfg := filepath.Join(t.TempDir(), "g.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[graphite]\naddress = %q\n", carbonAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGarner(t, "--config-path="+cfg, "--backends=graphite", "--flush-interval=300ms",
		"--dependency-check-interval=200ms", "--dependency-check-timeout=100ms")

	// /healthcheck must stay 200 the whole time.
	stop := make(chan struct{})
	hcDone := make(chan []int)
	go func() {
		var bad []int
		defer func() { hcDone <- bad }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if r, err := tryGet("GET", g.admin+"/healthcheck", "", 2*time.Second); err != nil || r.code != 200 {
				bad = append(bad, r.code)
			}
		}
	}()

	r := waitStatus(t, g.p, g.admin+"/deepcheck", 500, 10*time.Second)
	if !strings.Contains(r.body, `"graphite"`) {
		t.Fatalf("/deepcheck 500 body does not name graphite: %s", r.body)
	}
	garnertest.WaitFor(t, "graphite down", 10*time.Second, func() bool { return dependency(t, g, "graphite").Status == "down" })

	// Carbon comes up.
	carbon, err := garnertest.ListenGraphite(carbonAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer carbon.Close()
	waitStatus(t, g.p, g.admin+"/deepcheck", 200, 10*time.Second)
	d := dependency(t, g, "graphite")
	if d.Status != "up" && d.Status != "degraded" {
		t.Fatalf("graphite status %q after carbon came up", d.Status)
	}
	if d.Type != "soft" || d.LastCheck == nil || d.UptimePercent <= 0 || d.UptimePercent >= 100 {
		t.Fatalf("graphite = %+v", d)
	}
	if len(d.Events) < 2 {
		t.Fatalf("events = %+v, want an uptime after a downtime", d.Events)
	}
	if e := d.Events[0]; e.Event != "uptime" || e.DateEnded != nil {
		t.Fatalf("newest event = %+v, want an ongoing uptime", e)
	}
	if e := d.Events[1]; e.Event != "downtime" || e.DateEnded == nil || !e.DateEnded.Equal(d.Events[0].DateStarted) || !e.DateStarted.Before(*e.DateEnded) {
		t.Fatalf("previous event = %+v, want a downtime that ended when the uptime started", e)
	}
	var deps struct{ Status string }
	_ = json.Unmarshal([]byte(get(t, "GET", g.admin+"/health/dependencies", "").body), &deps)
	if deps.Status != "up" && deps.Status != "degraded" {
		t.Fatalf("overall dependency status %q", deps.Status)
	}
	close(stop)
	if bad := <-hcDone; len(bad) > 0 {
		t.Fatalf("/healthcheck was not 200 %d times while carbon was down: %v", len(bad), bad)
	}
	if m := get(t, "GET", g.admin+"/metrics", "").body; !strings.Contains(m, `garner_dependency_up{dependency="graphite",type="soft"} 1`) {
		t.Fatalf("garner_dependency_up not 1 in /metrics")
	}
}

type depEvent struct {
	Event       string     `json:"event"`
	DateStarted time.Time  `json:"date_started"`
	DateEnded   *time.Time `json:"date_ended"`
}

type depState struct {
	Name          string     `json:"name"`
	Type          string     `json:"type"`
	Status        string     `json:"status"`
	LastCheck     *time.Time `json:"last_check"`
	UptimePercent float64    `json:"uptime_percent"`
	AvgResponseMs float64    `json:"avg_response_time_ms"`
	Events        []depEvent `json:"events"`
}

func dependency(t *testing.T, g *instance, name string) depState {
	t.Helper()
	var body struct {
		Dependencies map[string]depState `json:"dependencies"`
	}
	r := get(t, "GET", g.admin+"/health/dependencies?limit=20", "")
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	d, ok := body.Dependencies[name]
	if !ok {
		t.Fatalf("no dependency %q in %s", name, r.body)
	}
	return d
}

// TestE2ENamedServers: gostatsd's http-servers with [http.<name>] sections.
func TestE2ENamedServers(t *testing.T) {
	// Fixed ports: garner refuses two listeners on one address, 127.0.0.1:0 included.
	lbPort, profPort := garnertest.FreePort(t), garnertest.FreePort(t)
	cfg := garnertest.WriteConfig(t, fmt.Sprintf(`
http-servers = "lb prof"
[http.lb]
address = "127.0.0.1:%d"
[http.prof]
address = "127.0.0.1:%d"
enable-prof = true
enable-expvar = true
enable-healthcheck = false
`, lbPort, profPort))
	g := startGarner(t, "--config-path="+cfg)
	lb, prof := fmt.Sprintf("http://127.0.0.1:%d", lbPort), fmt.Sprintf("http://127.0.0.1:%d", profPort)
	tests := []struct {
		url  string
		code int
	}{
		{lb + "/healthcheck", 200},
		{lb + "/deepcheck", 200},
		{lb + "/health/ready", 200},
		{lb + "/expvar", 404},
		{lb + "/debug/pprof/", 404},
		{lb + "/metrics", 404},
		{prof + "/debug/pprof/", 200},
		{prof + "/expvar", 200},
		{prof + "/healthcheck", 404},
		{g.admin + "/debug/pprof/", 404}, // enable-prof is off on admin-addr
		{g.admin + "/expvar", 404},
	}
	for _, tt := range tests {
		if r := get(t, "GET", tt.url, ""); r.code != tt.code {
			t.Errorf("GET %s: %d, want %d", tt.url, r.code, tt.code)
		}
	}
}
