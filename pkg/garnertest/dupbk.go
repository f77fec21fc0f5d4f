package garnertest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/garner-metrics/garner/backends"
)

// DecodedBody reads r's body and undoes its Content-Encoding: none, gzip,
// deflate (a zlib stream), snappy (the block format) or zstd. It uses the
// compression libraries directly, not garner's httpsend, so a test of what
// garner sends checks garner's encoding against a decoder of its own.
func DecodedBody(r *http.Request) ([]byte, error) {
	enc := r.Header.Get("Content-Encoding")
	var body io.Reader = r.Body
	var err error
	switch enc {
	case "", "snappy": // snappy's block format needs the whole body
	case "gzip":
		body, err = gzip.NewReader(r.Body)
	case "deflate":
		body, err = zlib.NewReader(r.Body)
	case "zstd":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(r.Body); err == nil {
			defer d.Close()
			body = d
		}
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
	var out []byte
	if err == nil {
		out, err = io.ReadAll(body)
	}
	if err == nil && enc == "snappy" {
		out, err = snappy.Decode(nil, out)
	}
	if err != nil {
		return nil, fmt.Errorf("%s body: %w", cmp.Or(enc, "read"), err)
	}
	return out, nil
}

// CheckReachableProbe checks the health check of an HTTP backend that
// counts any answer but an auth refusal (401, 403) or a server error (5xx)
// as reachable (httpsend's Sender.CheckReachable): against a loopback server
// answering 405 (a write endpoint's answer to a GET), 401, 403, 502 and 503
// in turn, and against a port nobody listens on. newChecker builds the
// backend with its endpoint under base (a URL without a path); probe, when
// not nil, is called with each probe request (to check its headers, say).
func CheckReachableProbe[B backends.HealthChecker](t *testing.T, newChecker func(t *testing.T, base string) B, probe func(t *testing.T, r *http.Request)) {
	t.Helper()
	// 405 is how a write endpoint answers a GET: reachable.
	for _, code := range []int{http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusForbidden, http.StatusBadGateway, http.StatusServiceUnavailable} {
		wantErr := code != http.StatusMethodNotAllowed
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if probe != nil {
					probe(t, r)
				}
				w.WriteHeader(code)
			}))
			defer srv.Close()
			if err := newChecker(t, srv.URL).CheckHealth(context.Background()); (err != nil) != wantErr {
				t.Fatalf("CheckHealth against a %d = %v, want error %v", code, err, wantErr)
			}
		})
	}
	if err := newChecker(t, "http://127.0.0.1:1").CheckHealth(context.Background()); err == nil {
		t.Fatal("nothing listens on port 1: want an error")
	}
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
