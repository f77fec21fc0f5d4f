package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/health"
)

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

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
	hr := health.New(health.Options{Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond}, quietLog(), reg)
	deps := Deps{Log: quietLog(), Registerer: reg, Gatherer: reg, Health: hr}
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

func TestHealthStatusCodes(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	var internalErr, hardErr, softErr atomicErr
	_ = env.hr.RegisterInternal("shards", internalErr.get)
	_ = env.hr.Register("upstream", health.Hard, func(context.Context) error { return hardErr.get() })
	_ = env.hr.Register("graphite", health.Soft, func(context.Context) error { return softErr.get() })
	base := "http://" + env.addrs["admin"]
	waitProbed := func(name string, wantUp bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			for _, d := range env.hr.Dependencies(health.EventQuery{}) {
				if d.Name == name && (d.Status == health.StatusUp || d.Status == health.StatusDegraded) == wantUp && d.Status != health.StatusUnknown {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s never became up=%v", name, wantUp)
	}
	type want struct{ healthcheck, deepcheck, full int }
	steps := []struct {
		name                 string
		internal, hard, soft error
		want                 want
		fullStatus           string
	}{
		{"all fine", nil, nil, nil, want{200, 200, 200}, "up"},
		{"soft dependency down", nil, nil, errors.New("refused"), want{200, 500, 200}, "degraded"},
		{"hard dependency down", nil, errors.New("refused"), nil, want{200, 500, 503}, "down"},
		{"internal check fails", errors.New("1 of 2 shards running"), nil, nil, want{500, 200, 503}, "down"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			internalErr.set(st.internal)
			hardErr.set(st.hard)
			softErr.set(st.soft)
			waitProbed("upstream", st.hard == nil)
			waitProbed("graphite", st.soft == nil)
			if a := do(t, "GET", base+"/healthcheck", "", nil); a.code != st.want.healthcheck {
				t.Errorf("/healthcheck %d, want %d: %s", a.code, st.want.healthcheck, a.body)
			}
			if a := do(t, "GET", base+"/deepcheck", "", nil); a.code != st.want.deepcheck {
				t.Errorf("/deepcheck %d, want %d: %s", a.code, st.want.deepcheck, a.body)
			}
			a := do(t, "GET", base+"/health", "", nil)
			var body struct{ Status string }
			_ = json.Unmarshal([]byte(a.body), &body)
			if a.code != st.want.full || body.Status != st.fullStatus {
				t.Errorf("/health %d %q, want %d %q", a.code, body.Status, st.want.full, st.fullStatus)
			}
			// Liveness never depends on checks.
			if a := do(t, "GET", base+"/health/live", "", nil); a.code != 204 {
				t.Errorf("/health/live %d", a.code)
			}
		})
	}
}

type atomicErr struct {
	mu  sync.Mutex
	err error
}

func (a *atomicErr) set(err error) { a.mu.Lock(); a.err = err; a.mu.Unlock() }
func (a *atomicErr) get() error    { a.mu.Lock(); defer a.mu.Unlock(); return a.err }

// TestHealthFastWhenDependencyHangs: answers come from recorded state.
func TestHealthFastWhenDependencyHangs(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	for _, n := range []string{"a", "b", "c"} {
		_ = env.hr.Register(n, health.Hard, func(ctx context.Context) error {
			<-hang // ignores ctx on purpose
			return nil
		})
	}
	base := "http://" + env.addrs["admin"]
	for _, p := range []string{"/deepcheck", "/health", "/health/dependencies", "/status", "/ui/data", "/healthcheck", "/health/ready"} {
		start := time.Now()
		a := do(t, "GET", base+p, "", nil)
		if el := time.Since(start); el > time.Second {
			t.Errorf("%s took %s with hanging dependencies", p, el)
		}
		if a.code == 0 {
			t.Errorf("%s: no answer", p)
		}
	}
}

func TestReadiness(t *testing.T) {
	var started, ready atomicErr
	started.set(errors.New("no"))
	env := start(t, Options{Listeners: []Listener{adminListener()}}, func(d *Deps) {
		d.Started = func() bool { return started.get() == nil }
		d.Ready = ready.get
	})
	base := "http://" + env.addrs["admin"]
	check := func(path string, code int, body string) {
		t.Helper()
		a := do(t, "GET", base+path, "", nil)
		if a.code != code || !strings.Contains(a.body, body) {
			t.Fatalf("%s: %d %q, want %d %q", path, a.code, a.body, code, body)
		}
	}
	check("/health/startup", 503, "STARTING")
	check("/health/ready", 503, "starting")
	started.set(nil)
	check("/health/startup", 200, "OK")
	check("/health/ready", 200, "OK")
	ready.set(errors.New("0 of 2 udp readers reading"))
	check("/health/ready", 503, "udp readers")
	ready.set(nil)
	env.srv.StartDraining()
	check("/health/ready", 503, "shutting down")
	check("/health/probes/readiness", 503, "shutting down")
	check("/health/live", 204, "")
	check("/healthcheck", 200, "ok")
}

func TestIngestion(t *testing.T) {
	env := start(t, Options{
		Listeners:   []Listener{adminListener(), {Name: "in", Ingestion: true}, {Name: "noin", Healthcheck: true}},
		MaxBodySize: 1024,
	}, nil)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	env.srv.HandleIngestion("POST /v2/raw", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.URL.Query().Get("slow") != "" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(strconv.FormatInt(n, 10)))
	}))
	if !env.srv.IngestionEnabled() {
		t.Fatal("IngestionEnabled = false")
	}
	post := func(addr, query string, size int) answer {
		return do(t, "POST", "http://"+addr+"/v2/raw"+query, "", strings.NewReader(strings.Repeat("x", size)))
	}
	if a := post(env.addrs["admin"], "", 10); a.code != 202 || a.body != "10" {
		t.Fatalf("admin: %d %q", a.code, a.body)
	}
	if a := post(env.addrs["in"], "", 1024); a.code != 202 {
		t.Fatalf("named ingestion server: %d", a.code)
	}
	if a := post(env.addrs["noin"], "", 10); a.code != 404 {
		t.Fatalf("server without ingestion: %d", a.code)
	}
	if a := post(env.addrs["in"], "", 1025); a.code != 413 {
		t.Fatalf("body over the limit: %d", a.code)
	}
	if a := do(t, "GET", "http://"+env.addrs["in"]+"/v2/raw", "", nil); a.code != 405 {
		t.Fatalf("GET on a POST route: %d", a.code)
	}

	// StopIngestion waits for the request in flight, then refuses.
	slow := make(chan answer, 1)
	go func() { slow <- post(env.addrs["admin"], "?slow=1", 5) }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- env.srv.StopIngestion(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("StopIngestion returned (%v) while a request was in its handler", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if a := <-slow; a.code != 202 {
		t.Fatalf("request in flight during StopIngestion: %d", a.code)
	}
	a := post(env.addrs["in"], "", 5)
	if a.code != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "shutting_down") {
		t.Fatalf("after StopIngestion: %d %q %v", a.code, a.body, a.header)
	}
}

func TestStopIngestionTimeout(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{{Name: "in", Ingestion: true}}}, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	env.srv.HandleIngestion("/v2/raw", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	go func() {
		req, _ := http.NewRequest("POST", "http://"+env.addrs["in"]+"/v2/raw", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := env.srv.StopIngestion(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StopIngestion = %v, want a deadline error", err)
	}
}

func TestProfileSingleFlight(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	base := "http://" + env.addrs["admin"]

	tests := []struct{ name, first, second string }{
		{"profile then profile", "/debug/pprof/profile?seconds=1", "/debug/pprof/profile?seconds=1"},
		{"profile then trace", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"},
		{"trace then delta heap", "/debug/pprof/trace?seconds=1", "/debug/pprof/heap?seconds=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := make(chan answer, 1)
			go func() { first <- do(t, "GET", base+tt.first, "", nil) }()
			waitBusy(t, env.srv)
			a := do(t, "GET", base+tt.second, "", nil)
			if a.code != http.StatusTooManyRequests {
				t.Fatalf("concurrent request: %d, want 429", a.code)
			}
			ra, err := strconv.Atoi(a.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 2 {
				t.Fatalf("Retry-After %q, want 1..2 seconds", a.header.Get("Retry-After"))
			}
			if f := <-first; f.code != 200 || len(f.body) == 0 {
				t.Fatalf("first request: %d, %d bytes", f.code, len(f.body))
			}
			// The slot is free again.
			if a := do(t, "GET", base+"/debug/pprof/trace?seconds=0.05", "", nil); a.code != 200 {
				t.Fatalf("after the first finished: %d", a.code)
			}
		})
	}

	t.Run("client going away frees the slot", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/debug/pprof/profile?seconds=60", nil)
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitBusy(t, env.srv)
		cancel()
		<-errc
		deadline := time.Now().Add(5 * time.Second)
		for env.srv.prof.isBusy() {
			if time.Now().After(deadline) {
				t.Fatal("slot still taken 5s after the client went away")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if a := do(t, "GET", base+"/debug/pprof/profile?seconds=1", "", nil); a.code != 200 {
			t.Fatalf("next profile: %d", a.code)
		}
	})
}

func waitBusy(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !s.prof.isBusy() {
		if time.Now().After(deadline) {
			t.Fatal("profile never started")
		}
		time.Sleep(2 * time.Millisecond)
	}
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
	}}, Deps{Log: quietLog(), Registerer: prometheus.NewRegistry()})
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

func TestDependenciesPagination(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{adminListener()}}, nil)
	var e atomicErr
	var n int
	var mu sync.Mutex
	_ = env.hr.Register("flappy", health.Soft, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%2 == 0 {
			return errors.New("down")
		}
		return e.get()
	})
	base := "http://" + env.addrs["admin"]
	type depsAnswer struct {
		Dependencies map[string]health.DependencyState
	}
	get := func(q string) health.DependencyState {
		a := do(t, "GET", base+"/health/dependencies"+q, "", nil)
		var d depsAnswer
		if err := json.Unmarshal([]byte(a.body), &d); err != nil {
			t.Fatalf("%s: %v", a.body, err)
		}
		return d.Dependencies["flappy"]
	}
	deadline := time.Now().Add(5 * time.Second)
	for get("?limit=100").EventsKept < 6 {
		if time.Now().After(deadline) {
			t.Fatal("not enough events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p1 := get("?limit=2")
	if len(p1.Events) != 2 || p1.NextBefore == nil {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := get("?limit=2&before=" + p1.NextBefore.Format(time.RFC3339Nano))
	if len(p2.Events) != 2 || !p2.Events[0].Started.Before(p1.Events[1].Started) {
		t.Fatalf("page 2 does not continue page 1: %+v then %+v", p1.Events, p2.Events)
	}
	if d := get("?limit=0"); len(d.Events) != 0 {
		t.Fatalf("limit=0: %d events", len(d.Events))
	}
	if d := get(""); len(d.Events) > defaultEventLimit {
		t.Fatalf("default limit: %d events", len(d.Events))
	}
}
