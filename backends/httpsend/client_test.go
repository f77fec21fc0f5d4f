package httpsend

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackoffCurve(t *testing.T) {
	r := Retry{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for _, c := range []struct {
		n          int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{n: 1, lo: 50 * time.Millisecond, hi: 100 * time.Millisecond},
		{n: 2, lo: 100 * time.Millisecond, hi: 200 * time.Millisecond},
		{n: 4, lo: 400 * time.Millisecond, hi: 800 * time.Millisecond},
		{n: 10, lo: 500 * time.Millisecond, hi: time.Second},
		{n: 1, retryAfter: 700 * time.Millisecond, lo: 700 * time.Millisecond, hi: 700 * time.Millisecond},
		{n: 1, retryAfter: time.Hour, lo: time.Second, hi: time.Second},
	} {
		for range 50 {
			if d := r.Backoff(c.n, c.retryAfter); d < c.lo || d > c.hi {
				t.Fatalf("Backoff(%d, %s) = %s, want within [%s, %s]", c.n, c.retryAfter, d, c.lo, c.hi)
			}
		}
	}
}

// TestClientDoOutcomes: the errors Do returns say why it stopped, which is
// what the forwarder branches on.
func TestClientDoOutcomes(t *testing.T) {
	cases := []struct {
		name      string
		codes     []int
		retryable func(int) bool
		cont      func(calls int32) bool
		maxRetry  int
		wantIs    error
		wantCode  int
		wantCalls int32
	}{
		{name: "delivered after a 503", codes: []int{503, 202}, wantCalls: 2},
		{name: "404 not retryable by default", codes: []int{404}, wantCode: 404, wantCalls: 1},
		{name: "caller retries 400", codes: []int{400, 200}, retryable: func(int) bool { return true }, wantCalls: 2},
		{name: "retries exhausted", codes: []int{500}, maxRetry: 2, wantIs: ErrGaveUp, wantCode: 500, wantCalls: 3},
		{name: "no retries", codes: []int{500}, maxRetry: -1, wantIs: ErrGaveUp, wantCalls: 1},
		{name: "caller stops", codes: []int{500}, cont: func(int32) bool { return false }, wantIs: ErrStopped, wantCalls: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(calls.Add(1)) - 1
				if r.Header.Get("Content-Encoding") != "deflate" || r.Header.Get("User-Agent") != "ua" || r.Header.Get("X-A") != "b" {
					t.Errorf("headers %v", r.Header)
				}
				w.WriteHeader(c.codes[min(i, len(c.codes)-1)])
			}))
			defer srv.Close()
			cl := Client{Timeout: time.Second, UserAgent: "ua", Retry: Retry{InitialBackoff: time.Millisecond, MaxRetries: c.maxRetry}}
			var observed atomic.Int32
			p := Post{
				URL: srv.URL, Header: http.Header{"X-A": {"b"}}, Body: []byte("x"), Encoding: "deflate",
				Deadline: time.Now().Add(5 * time.Second), Retryable: c.retryable,
				Observe: func(int, time.Duration, error) { observed.Add(1) },
			}
			if c.cont != nil {
				p.Continue = func() bool { return c.cont(calls.Load()) }
			}
			err := cl.Do(context.Background(), p)
			if c.wantIs == nil && c.wantCode == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if c.wantIs != nil && !errors.Is(err, c.wantIs) {
					t.Fatalf("err = %v, want %v", err, c.wantIs)
				}
				var se *StatusError
				if c.wantCode != 0 && (!errors.As(err, &se) || se.Code != c.wantCode) {
					t.Fatalf("err = %v, want status %d", err, c.wantCode)
				}
			}
			if n := calls.Load(); n != c.wantCalls || observed.Load() != n {
				t.Fatalf("%d calls (%d observed), want %d", n, observed.Load(), c.wantCalls)
			}
		})
	}
}

func TestClientDeadlineEndsRetries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	cl := Client{}
	start := time.Now()
	// Waiting for the deadline would take 5s; giving up at once takes one
	// request, far less even on a loaded machine.
	err := cl.Do(context.Background(), Post{URL: srv.URL, Deadline: time.Now().Add(5 * time.Second)})
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("err = %v, want ErrGaveUp", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("took %s: a Retry-After past the deadline should give up at once", time.Since(start))
	}
}

func TestCompressorRoundTrip(t *testing.T) {
	raw := []byte("garner garner garner garner garner garner garner")
	for _, c := range []Compression{None, Gzip, Deflate, Snappy, Zstd} {
		for _, level := range []int{0, 1, 9} {
			z, err := NewCompressor(c, level)
			if err != nil {
				t.Fatal(err)
			}
			body, err := z.Compress(raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decompress(body, c)
			if err != nil || string(got) != string(raw) {
				t.Fatalf("%q level %d: %q, %v", c, level, got, err)
			}
		}
	}
	if _, err := NewCompressor(Deflate, 10); err == nil {
		t.Fatal("level 10 accepted")
	}
}
