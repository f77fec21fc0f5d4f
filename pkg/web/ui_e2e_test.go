package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// chromium returns the headless browser, skipping the test when it is not
// installed (failing it in CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI (apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

// renderDOM loads url in headless Chromium and returns the DOM after the
// page's scripts ran (its first data fetch included).
func renderDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
		"--disable-dev-shm-usage", "--disable-extensions", "--no-default-browser-check",
		"--user-data-dir="+filepath.Join(t.TempDir(), "chromium"),
		// Let the page run (fetch, render) for up to 3s of virtual time;
		// the refresh timer fires later than that.
		"--virtual-time-budget=3000",
		"--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

// text returns the text content of the element with the given id (the page
// fills leaf elements only).
func text(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no element #%s in the rendered page", id)
	}
	return m[1]
}

func TestE2EStatusPageChromium(t *testing.T) {
	browser := chromium(t)
	carbon := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)) // nothing listens: graphite is down
	cfg := filepath.Join(t.TempDir(), "g.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[graphite]\naddress = %q\n", carbon)), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGarner(t, "--config-path="+cfg, "--backends=graphite", "--flush-interval=500ms",
		"--dependency-check-interval=300ms", "--dependency-check-timeout=200ms")
	garnertest.SendUDP(t, g.statsd, "ui.a:1|c\nui.b:2|g\nui.c:3|ms\nui.d:x|s\nnot a line\nui.e:1|c|#env:prod")

	var up struct{ Version string }
	_ = json.Unmarshal([]byte(get(t, "GET", g.admin+"/health/up", "").body), &up)
	// Rates need two samples of the counters (5s apart).
	garnertest.WaitFor(t, "rates and the dependency probed", 10*time.Second, func() bool {
		var d struct {
			Rates        struct{ Valid bool }
			Dependencies []struct{ Status string }
			LastFlush    *time.Time `json:"last_flush"`
		}
		_ = json.Unmarshal([]byte(get(t, "GET", g.admin+"/ui/data", "").body), &d)
		return d.Rates.Valid && len(d.Dependencies) == 1 && d.Dependencies[0].Status == "down" && d.LastFlush != nil
	})

	dom := renderDOM(t, browser, g.admin+"/")
	if !strings.Contains(dom, `<body data-loaded="true">`) {
		t.Fatalf("the page's script did not render the data:\n%s", dom)
	}
	checks := []struct{ id, want string }{
		{"version", up.Version},
		{"status", "degraded"}, // graphite (soft) is down
		{"deps-status", "degraded"},
		{"lines-total", "6"},
		{"bad-lines", "1"},
		{"series-counter", "2"},
		{"series-gauge", "1"},
		{"series-timer", "1"},
		{"ready", "ready"},
		{"role", "standalone"},
	}
	for _, c := range checks {
		if got := text(t, dom, c.id); got != c.want {
			t.Errorf("#%s = %q, want %q", c.id, got, c.want)
		}
	}
	if ps, err := strconv.ParseFloat(text(t, dom, "lines-ps"), 64); err != nil || ps <= 0 {
		t.Errorf("lines/s = %q, want a positive number", text(t, dom, "lines-ps"))
	}
	if s := text(t, dom, "last-flush-age"); !strings.HasSuffix(s, " ago") {
		t.Errorf("last flush %q, want \"... ago\"", s)
	}
	if s := text(t, dom, "uptime"); !regexp.MustCompile(`^\d+[hms]`).MatchString(s) {
		t.Errorf("uptime %q", s)
	}
	for _, want := range []string{
		`<tr class="dep" data-name="graphite" data-status="down">`,
		`<li class="event downtime">downtime since `,
		`(ongoing)</li>`,
		`<tr class="check" data-name="receivers"><td>receivers</td><td><span class="badge OK">OK</span>`,
		`<tr class="check" data-name="shards">`,
		`<tr class="check" data-name="flush">`,
		`<td>garner_aggregator_queue_dropped_lines_total</td>`,
		`<th class="num">counters</th>`, // numbers right-aligned under their headers
		`<section id="ingestion" class="hidden">`,
		`<section id="forwarder" class="hidden">`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("rendered DOM:\n%s", dom)
	}
}

func TestE2EStatusPageChromiumToken(t *testing.T) {
	browser := chromium(t)
	const token = "ui-token-4Xw"
	g := startGarner(t, "--admin-token="+token)

	t.Run("without the token the page asks for it", func(t *testing.T) {
		dom := renderDOM(t, browser, g.admin+"/")
		if strings.Contains(dom, `data-loaded="true"`) {
			t.Fatal("page rendered data without the token")
		}
		if !strings.Contains(dom, `<form id="auth" style="display: block;">`) || !strings.Contains(dom, "unauthorized") {
			t.Fatalf("no token form or error shown:\n%s", dom)
		}
	})
	t.Run("token in the fragment", func(t *testing.T) {
		dom := renderDOM(t, browser, g.admin+"/#token="+token)
		if !strings.Contains(dom, `<body data-loaded="true">`) {
			t.Fatalf("page did not render with the token:\n%s", dom)
		}
		if got := text(t, dom, "status"); got != "up" {
			t.Fatalf("#status = %q", got)
		}
	})
}

// TestE2EStatusPageAggregator: an aggregator's page shows its role, the
// HTTP ingestion figures and the last hour's charts; the test keeps a
// screenshot (in $GARNER_TEST_ARTIFACTS, else the temp dir's
// garner-artifacts) for a human to look at.
func TestE2EStatusPageAggregator(t *testing.T) {
	browser := chromium(t)
	g := startGarner(t, "--enable-ingestion", "--flush-interval=500ms")
	for i := 0; i < 3; i++ { // empty /v2/raw: a forwarder's probe, a valid empty message
		if r := postEmpty(t, g.admin+"/v2/raw"); r != 202 {
			t.Fatalf("POST /v2/raw: %d", r)
		}
	}
	garnertest.SendUDP(t, g.statsd, "agg.a:1|c\nagg.b:2|g")
	// Two chart points need three samples, 5s apart.
	garnertest.WaitFor(t, "two points of history", 20*time.Second, func() bool {
		var d struct {
			History []struct{} `json:"history"`
		}
		_ = json.Unmarshal([]byte(get(t, "GET", g.admin+"/ui/data", "").body), &d)
		return len(d.History) >= 2
	})
	dom := renderDOM(t, browser, g.admin+"/")
	for _, c := range []struct{ id, want string }{
		{"role", "aggregator"}, {"ing-requests", "3"}, {"ing-rejects", "0"}, {"lines-total", "2"},
	} {
		if got := text(t, dom, c.id); got != c.want {
			t.Errorf("#%s = %q, want %q", c.id, got, c.want)
		}
	}
	for _, want := range []string{
		`<section id="ingestion" class="">`,
		`<section id="forwarder" class="hidden">`,
		`<polyline points="`, `data-name="lines"`, `data-name="series"`, `data-name="flush"`,
		`no drops in the last hour`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if s := text(t, dom, "updated"); !regexp.MustCompile(`\d{4}|\d+/\d+/\d+`).MatchString(s) || !regexp.MustCompile(`UTC|GMT|[A-Z]{3,4}$`).MatchString(s) {
		t.Errorf("last update %q: want a date, a time and a time zone", s)
	}
	if t.Failed() {
		t.Logf("rendered DOM:\n%s", dom)
	}

	dir := os.Getenv("GARNER_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "garner-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "status-page-aggregator.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-dev-shm-usage", "--user-data-dir="+filepath.Join(t.TempDir(), "chromium"),
		"--virtual-time-budget=3000", "--window-size=1280,1400", "--screenshot="+shot, g.admin+"/")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(b), err)
	}
	t.Logf("status page screenshot: %s", shot)
}

func postEmpty(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Post(url, "application/x-protobuf", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}
