package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/health"
)

type testEnv struct {
	srv   *Server
	reg   *prometheus.Registry
	hr    *health.Registry
	addrs map[string]string
	stop  func()
}

// start runs a Server with the given listeners (addresses are filled with
// 127.0.0.1:0) until the test ends.
func start(t *testing.T, opts Options, tweak func(*Deps)) *testEnv {
	t.Helper()
	for i := range opts.Listeners {
		if opts.Listeners[i].Address == "" {
			opts.Listeners[i].Address = "127.0.0.1:0"
		}
	}
	reg := prometheus.NewRegistry()
	hr := health.New(health.Options{Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond}, garnertest.QuietLog(), reg)
	deps := Deps{Log: garnertest.QuietLog(), Registerer: reg, Gatherer: reg, Health: hr}
	if tweak != nil {
		tweak(&deps)
	}
	srv, err := New(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hr.Run(ctx)
	}()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	env := &testEnv{srv: srv, reg: reg, hr: hr, addrs: srv.Addrs()}
	var once sync.Once
	env.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-runDone:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return")
			}
			<-done
		})
	}
	t.Cleanup(env.stop)
	return env
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, token string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func adminListener() Listener {
	return Listener{Name: "admin", Admin: true, Healthcheck: true, Prof: true, Expvar: true, Ingestion: true}
}

func TestRoutes(t *testing.T) {
	env := start(t, Options{
		Listeners: []Listener{
			adminListener(),
			{Name: "lb", Healthcheck: true},
			{Name: "bare"},
		},
		BasePath: "/hc/",
	}, func(d *Deps) {
		d.Flush = func() (time.Time, time.Duration) { return time.Now(), time.Millisecond }
	})
	if err := env.hr.RegisterInternal("shards", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	admin, lb, bare := "http://"+env.addrs["admin"], "http://"+env.addrs["lb"], "http://"+env.addrs["bare"]
	tests := []struct {
		name, method, url string
		code              int
		contains          string
	}{
		{"healthcheck", "GET", admin + "/healthcheck", 200, `"ok": [`},
		{"healthcheck head", "HEAD", admin + "/healthcheck", 200, ""},
		{"deepcheck no deps", "GET", admin + "/deepcheck", 200, `"failed": []`},
		{"full health at the base path", "GET", admin + "/hc", 200, `"response_time_ms"`},
		{"live", "GET", admin + "/hc/live", 204, ""},
		{"live head", "HEAD", admin + "/hc/live", 204, ""},
		{"liveness", "GET", admin + "/hc/probes/liveness", 200, "OK"},
		{"ready", "GET", admin + "/hc/ready", 200, "OK"},
		{"readiness", "GET", admin + "/hc/probes/readiness", 200, "OK"},
		{"startup", "GET", admin + "/hc/startup", 200, "OK"},
		{"startup probe", "GET", admin + "/hc/probes/startup", 200, "OK"},
		{"up", "GET", admin + "/hc/up", 200, `"service": "garner"`},
		{"dependencies", "GET", admin + "/hc/dependencies", 200, `"dependencies": {}`},
		{"dependencies bad limit", "GET", admin + "/hc/dependencies?limit=x", 400, `"bad_request"`},
		{"dependencies bad before", "GET", admin + "/hc/dependencies?before=yesterday", 400, `before`},
		{"status", "GET", admin + "/status", 200, `"name": "shards"`},
		{"status one", "GET", admin + "/status/shards", 200, `"status": "OK"`},
		{"status unknown", "GET", admin + "/status/nope", 404, `known: shards`},
		{"metrics", "GET", admin + "/metrics", 200, "garner_http_requests_total"},
		{"metrics under base", "GET", admin + "/hc/metrics", 200, "# TYPE"},
		{"expvar", "GET", admin + "/expvar", 200, `"memstats"`},
		{"pprof index", "GET", admin + "/debug/pprof/", 200, "goroutine"},
		{"pprof heap", "GET", admin + "/debug/pprof/heap?debug=1", 200, "heap profile"},
		{"status page", "GET", admin + "/", 200, "<title>garner status</title>"},
		{"status page alias", "GET", admin + "/ui", 200, "<!DOCTYPE html>"},
		{"page data", "GET", admin + "/ui/data", 200, `"totals"`},
		{"unknown path", "GET", admin + "/nope", 404, ""},
		{"wrong method", "POST", admin + "/healthcheck", 405, ""},
		{"profile seconds too long", "GET", admin + "/debug/pprof/profile?seconds=1000", 400, "at most"},
		{"profile seconds not a number", "GET", admin + "/debug/pprof/profile?seconds=x", 400, "positive"},
		{"profile seconds not whole", "GET", admin + "/debug/pprof/profile?seconds=0.5", 400, "whole number"},
		{"named server: healthcheck", "GET", lb + "/healthcheck", 200, `"ok"`},
		{"named server: ready", "GET", lb + "/hc/ready", 200, "OK"},
		{"named server: no metrics", "GET", lb + "/metrics", 404, ""},
		{"named server: no expvar", "GET", lb + "/expvar", 404, ""},
		{"named server: no pprof", "GET", lb + "/debug/pprof/", 404, ""},
		{"named server: no status page", "GET", lb + "/", 404, ""},
		{"bare server: no healthcheck", "GET", bare + "/healthcheck", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.method, tt.url, "", nil)
			if a.code != tt.code {
				t.Fatalf("status %d, want %d; body %s", a.code, tt.code, a.body)
			}
			if !strings.Contains(a.body, tt.contains) {
				t.Fatalf("body does not contain %q:\n%s", tt.contains, a.body)
			}
			if tt.method == "HEAD" && a.body != "" {
				t.Fatalf("HEAD answered a body: %q", a.body)
			}
			if got := a.header.Get("Server"); got != ServerHeader {
				t.Fatalf("Server header %q, want %q", got, ServerHeader)
			}
		})
	}
}

func TestToken(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}, Token: "s3cret"}, nil)
	env.srv.HandleIngestion("POST /v2/raw", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	base := "http://" + env.addrs["admin"]
	tests := []struct {
		name, method, path, token string
		code                      int
	}{
		{"probe open: live", "GET", "/health/live", "", 204},
		{"probe open: ready", "GET", "/health/ready", "", 200},
		{"probe open: startup", "GET", "/health/startup", "", 200},
		{"probe open: probes/liveness", "GET", "/health/probes/liveness", "", 200},
		{"probe open: probes/readiness", "HEAD", "/health/probes/readiness", "", 200},
		{"healthcheck open", "GET", "/healthcheck", "", 200},
		{"page html open", "GET", "/", "", 200},
		{"deepcheck needs it", "GET", "/deepcheck", "", 401},
		{"health needs it", "GET", "/health", "", 401},
		{"up needs it", "GET", "/health/up", "", 401},
		{"dependencies need it", "GET", "/health/dependencies", "", 401},
		{"metrics need it", "GET", "/metrics", "", 401},
		{"expvar needs it", "GET", "/expvar", "", 401},
		{"pprof needs it", "GET", "/debug/pprof/", "", 401},
		{"page data needs it", "GET", "/ui/data", "", 401},
		{"status needs it", "GET", "/status", "", 401},
		{"ingestion needs it", "POST", "/v2/raw", "", 401},
		{"wrong token", "GET", "/health", "s3cret-not", 401},
		{"prefix of the token", "GET", "/health", "s3cre", 401},
		{"right token", "GET", "/health", "s3cret", 200},
		{"right token: metrics", "GET", "/metrics", "s3cret", 200},
		{"right token: ingestion", "POST", "/v2/raw", "s3cret", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.method, base+tt.path, tt.token, nil)
			if a.code != tt.code {
				t.Fatalf("status %d, want %d; body %s", a.code, tt.code, a.body)
			}
			if tt.code != 401 {
				return
			}
			if got := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", got)
			}
			var e errorBody
			if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error != "unauthorized" {
				t.Fatalf("401 body %q: %v", a.body, err)
			}
		})
	}
	// Lower-case scheme is accepted (RFC 7235: case-insensitive).
	req, _ := http.NewRequest("GET", base+"/health", nil)
	req.Header.Set("Authorization", "bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("lower-case bearer: %d", resp.StatusCode)
	}
}

// TestSetTokens: new tokens apply to the next request, the old ones no
// longer open anything; turning a token on or off is refused.
func TestSetTokens(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}, Token: "admin-1", IngestionToken: "ingest-1"}, nil)
	env.srv.HandleIngestion("POST /v2/raw", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	base := "http://" + env.addrs["admin"]
	codes := func(step string, want map[[2]string]int) {
		t.Helper()
		for req, code := range want {
			method, token := "GET", req[1]
			if req[0] == "/v2/raw" {
				method = "POST"
			}
			if a := do(t, method, base+req[0], token, nil); a.code != code {
				t.Errorf("%s: %s %s with %q: %d, want %d", step, method, req[0], token, a.code, code)
			}
		}
	}
	codes("at start", map[[2]string]int{{"/health", "admin-1"}: 200, {"/v2/raw", "ingest-1"}: 202, {"/v2/raw", "admin-1"}: 401})
	if err := env.srv.SetTokens("admin-2", "ingest-2"); err != nil {
		t.Fatal(err)
	}
	codes("after SetTokens", map[[2]string]int{
		{"/health", "admin-2"}: 200, {"/health", "admin-1"}: 401,
		{"/v2/raw", "ingest-2"}: 202, {"/v2/raw", "ingest-1"}: 401, {"/health/live", ""}: 204,
	})
	for _, tc := range [][2]string{{"", "ingest-3"}, {"admin-3", ""}} {
		if err := env.srv.SetTokens(tc[0], tc[1]); err == nil {
			t.Errorf("SetTokens(%q, %q) turned a token off; want it refused", tc[0], tc[1])
		}
	}
	codes("after refused SetTokens", map[[2]string]int{{"/health", "admin-2"}: 200, {"/v2/raw", "ingest-2"}: 202})
}

func TestBindError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	_, err = New(Options{Listeners: []Listener{
		{Name: "admin", Address: freeAddr, Admin: true},
		{Name: "lb", Address: ln.Addr().String(), Healthcheck: true},
	}}, Deps{Log: garnertest.QuietLog(), Registerer: prometheus.NewRegistry()})
	var be *BindError
	if !errors.As(err, &be) || be.Listener != "lb" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err = %v, want a BindError for lb wrapping EADDRINUSE", err)
	}
	// The first listener was closed again.
	l2, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("first listener left open: %v", err)
	}
	l2.Close()
}
