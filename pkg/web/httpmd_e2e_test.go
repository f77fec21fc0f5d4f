package web_test

import (
	"bytes"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// docEndpoint is one path of HTTP.md's endpoint table, as documented.
type docEndpoint struct {
	path   string // with {base} = /health, {check} = receivers
	open   bool   // auth column "open"
	status int    // the first status the status column names (the healthy answer)
	body   string // the body column
}

var (
	codeRE  = regexp.MustCompile("`([1-5][0-9][0-9])`")
	tickRE  = regexp.MustCompile("`([^`]+)`")
	braceRE = regexp.MustCompile(`\{([a-z]+(?:,[a-z]+)+)\}`)
)

// readEndpointTable parses the "## Endpoints" table of HTTP.md.
func readEndpointTable(t *testing.T) []docEndpoint {
	t.Helper()
	b, err := os.ReadFile("../../HTTP.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Endpoints\n")
	if start < 0 {
		t.Fatal("HTTP.md has no ## Endpoints section")
	}
	section := doc[start+1:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	var out []docEndpoint
	for _, l := range strings.Split(section, "\n") {
		cells := strings.Split(l, " | ")
		if !strings.HasPrefix(l, "| `") || len(cells) < 4 {
			continue
		}
		m := codeRE.FindStringSubmatch(cells[2])
		if m == nil {
			t.Fatalf("HTTP.md endpoint row names no status: %s", l)
		}
		var status int
		for _, c := range m[1] {
			status = status*10 + int(c-'0')
		}
		open := strings.HasPrefix(strings.TrimSpace(cells[1]), "open")
		for _, tm := range tickRE.FindAllStringSubmatch(cells[0], -1) {
			p := tm[1]
			if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "{base}") {
				continue
			}
			p = strings.NewReplacer("{base}", "/health", "{check}", "receivers").Replace(p)
			p, _, _ = strings.Cut(p, "?")
			paths := []string{p}
			if bm := braceRE.FindStringSubmatchIndex(p); bm != nil {
				paths = nil
				for _, alt := range strings.Split(p[bm[2]:bm[3]], ",") {
					paths = append(paths, p[:bm[0]]+alt+p[bm[1]:])
				}
			}
			for _, p := range paths {
				out = append(out, docEndpoint{path: p, open: open, status: status, body: cells[3]})
			}
		}
	}
	if len(out) < 25 {
		t.Fatalf("read %d endpoints from HTTP.md's table: the parser lost some", len(out))
	}
	return out
}

// TestE2EHTTPDocAgrees walks HTTP.md's endpoint table against the running
// server: status, auth, content type, Cache-Control; then the error answers
// (401, 404, 405, ingestion errors) are the documented JSON.
func TestE2EHTTPDocAgrees(t *testing.T) {
	const token = "s3cret"
	g := startGarner(t, "--enable-prof", "--enable-expvar", "--enable-ingestion", "--admin-token="+token)
	for _, e := range readEndpointTable(t) {
		url := g.admin + e.path
		if strings.HasSuffix(e.path, "/profile") || strings.HasSuffix(e.path, "/trace") {
			url += "?seconds=1"
		}
		t.Run(e.path, func(t *testing.T) {
			r := get(t, "GET", url, token)
			if r.code != e.status {
				t.Fatalf("status %d, HTTP.md says %d\n%s", r.code, e.status, r.body)
			}
			ct := r.header.Get("Content-Type")
			pprof := strings.HasPrefix(e.path, "/debug/pprof")
			switch {
			case pprof:
			case strings.Contains(e.body, "Prometheus text"):
				if !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q for the Prometheus exposition", ct)
				}
			case strings.Contains(e.body, "text/plain"):
				if ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q, HTTP.md says text/plain", ct)
				}
			case strings.HasPrefix(strings.TrimSpace(e.body), "`{"):
				if ct != "application/json; charset=utf-8" {
					t.Errorf("Content-Type %q, HTTP.md says JSON (application/json; charset=utf-8)", ct)
				}
			case strings.Contains(e.body, "HTML"):
				if ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q for the status page", ct)
				}
			}
			if cc := r.header.Get("Cache-Control"); !pprof && !strings.Contains(e.path, "metrics") && cc != "no-store" {
				t.Errorf("Cache-Control %q, HTTP.md says no-store", cc)
			}
			if s := r.header.Get("Server"); s != "garner" {
				t.Errorf("Server %q", s)
			}
			if h := get(t, "HEAD", url, token); h.code != r.code || h.body != "" {
				t.Errorf("HEAD: %d with %d body bytes, GET %d", h.code, len(h.body), r.code)
			}
			anon := get(t, "GET", url, "")
			if e.open {
				if anon.code == http.StatusUnauthorized {
					t.Errorf("documented open, answers 401 without the token")
				}
				return
			}
			if anon.code != http.StatusUnauthorized || anon.header.Get("WWW-Authenticate") != `Bearer realm="garner"` {
				t.Fatalf("without the token: %d %v", anon.code, anon.header)
			}
			requireJSONError(t, anon, "unauthorized")
			if !strings.Contains(anon.body, `"Authorization: Bearer <admin-token>\"`) {
				t.Errorf("401 body is not HTTP.md's: %s", anon.body)
			}
		})
	}

	for _, tc := range []struct {
		name, method, path string
		body               []byte
		code               int
		kind               string
	}{
		{"no such path", "GET", "/nope", nil, 404, "not_found"},
		{"method", "POST", "/healthcheck", nil, 405, "method_not_allowed"},
		{"ingestion method", "GET", "/v2/raw", nil, 405, "method_not_allowed"},
		{"ingestion bad body", "POST", "/v2/raw", garnertest.Deflate(t, []byte("\xff\xff\xff not protobuf")), 400, "bad_request"},
		{"ingestion bad encoding", "POST", "/v3/raw", []byte("x"), 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, g.admin+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/x-protobuf")
			switch tc.code {
			case 400:
				req.Header.Set("Content-Encoding", "deflate")
			case 415:
				req.Header.Set("Content-Encoding", "br")
			}
			c := http.Client{Timeout: 10 * time.Second}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(res.Body)
			r := resp{res.StatusCode, res.Header, buf.String()}
			if r.code != tc.code {
				t.Fatalf("status %d, want %d: %s", r.code, tc.code, r.body)
			}
			requireJSONError(t, r, tc.kind)
			if tc.code == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

// requireJSONError checks garner's documented error answer.
func requireJSONError(t *testing.T, r resp, kind string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("error Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("error Cache-Control %q", cc)
	}
	if !strings.Contains(r.body, `"error": "`+kind+`"`) || !strings.Contains(r.body, `"message": "`) || strings.Contains(r.body, `\u00`) {
		t.Errorf("error body is not {\"error\":%q,\"message\":...} without escapes: %s", kind, r.body)
	}
}
