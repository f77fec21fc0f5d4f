package httpsend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

type fixture struct {
	s       *Sender
	reg     *prometheus.Registry
	dropped prometheus.Counter
}

func newSender(t *testing.T, opts Options) fixture {
	t.Helper()
	deps, reg, dropped := garnertest.BackendDeps()
	opts.Subsystem = "test"
	opts.Deps = deps
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{s, reg, dropped}
}

// items encodes item k as "k\n".
func items(n, per int) Payload {
	return Split(n, per, func(dst []byte, lo, hi int) ([]byte, error) {
		for k := lo; k < hi; k++ {
			dst = strconv.AppendInt(dst, int64(k), 10)
			dst = append(dst, '\n')
		}
		return dst, nil
	})
}

func TestSendDeliversEveryBatchCompressed(t *testing.T) {
	for _, c := range []Compression{None, Gzip, Deflate, Snappy, Zstd} {
		t.Run("compression="+string(c), func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			var bodies int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Test") != "yes" || !strings.HasPrefix(r.Header.Get("User-Agent"), "garner/") {
					t.Errorf("headers: %v", r.Header)
				}
				body, err := garnertest.DecodedBody(r)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				bodies++
				got = append(got, strings.Fields(string(body))...)
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			f := newSender(t, Options{Compression: c, MaxRequests: 3})
			hdr := http.Header{"X-Test": {"yes"}}
			if err := f.s.Send(context.Background(), Request{URL: srv.URL, Header: hdr}, items(2500, 1000)); err != nil {
				t.Fatal(err)
			}
			if bodies != 3 {
				t.Errorf("requests = %d, want 3 (2500 items in batches of 1000)", bodies)
			}
			sort.Slice(got, func(i, j int) bool { a, _ := strconv.Atoi(got[i]); b, _ := strconv.Atoi(got[j]); return a < b })
			if len(got) != 2500 || got[0] != "0" || got[2499] != "2499" {
				t.Errorf("got %d items, first %v last %v", len(got), got[:1], got[len(got)-1:])
			}
			if v := testutil.ToFloat64(f.dropped); v != 0 {
				t.Errorf("dropped = %v", v)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		name       string
		n, per     int
		wantSeries []int
	}{
		{"exact", 4, 2, []int{2, 2}},
		{"remainder", 5, 2, []int{2, 2, 1}},
		{"per zero means one batch", 5, 0, []int{5}},
		{"per larger than n", 3, 10, []int{3}},
		{"empty", 0, 10, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := items(c.n, c.per)
			var got []int
			for i := range p.Batches() {
				got = append(got, p.Series(i))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.wantSeries) {
				t.Errorf("series per batch = %v, want %v", got, c.wantSeries)
			}
		})
	}
}

func TestConcurrencyLimitAcrossSendCalls(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	f := newSender(t, Options{MaxRequests: 2})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := f.s.Send(context.Background(), Request{URL: srv.URL}, items(8, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak requests in flight = %d, want ≤ 2 (max-requests)", p)
	}
	if v := testutil.ToFloat64(f.s.m.ok); v != 24 {
		t.Errorf("2xx requests = %v, want 24", v)
	}
}

// script answers each request with the next status of a list (the last one
// repeats), with optional Retry-After.
type script struct {
	mu         sync.Mutex
	codes      []int
	retryAfter string
	calls      int
	times      []time.Time
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	code := s.codes[min(s.calls, len(s.codes)-1)]
	s.calls++
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	if s.retryAfter != "" && code != 200 {
		w.Header().Set("Retry-After", s.retryAfter)
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "status %d", code)
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name        string
		codes       []int
		retryAfter  string
		opts        Options
		wantErr     string // "" = success
		wantCalls   int    // exact; -1 = at least 2
		wantDropped float64
		minGap      time.Duration // between the first two attempts
	}{
		{name: "503 then ok", codes: []int{503, 200}, wantCalls: 2},
		{name: "500 twice then ok", codes: []int{500, 502, 200}, wantCalls: 3},
		{name: "408 is retried", codes: []int{408, 200}, wantCalls: 2},
		{name: "429 honours Retry-After", codes: []int{429, 200}, retryAfter: "1", wantCalls: 2, minGap: 900 * time.Millisecond},
		{name: "400 is not retried", codes: []int{400}, wantErr: "400 Bad Request", wantCalls: 1, wantDropped: 5},
		{name: "413 is not retried", codes: []int{413}, wantErr: "413", wantCalls: 1, wantDropped: 5},
		{name: "max retries", codes: []int{500}, opts: Options{MaxRetries: 2}, wantErr: "gave up after 3 attempts", wantCalls: 3, wantDropped: 5},
		{name: "negative max retries never retries", codes: []int{500}, opts: Options{MaxRetries: -1}, wantErr: "gave up after 1 attempts", wantCalls: 1, wantDropped: 5},
		{name: "budget exhausted", codes: []int{500}, opts: Options{MaxRequestElapsedTime: 300 * time.Millisecond}, wantErr: "max elapsed time", wantCalls: -1, wantDropped: 5},
		{name: "Retry-After beyond budget gives up at once", codes: []int{429}, retryAfter: "5", opts: Options{MaxRequestElapsedTime: time.Second}, wantErr: "max elapsed time", wantCalls: 1, wantDropped: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := &script{codes: c.codes, retryAfter: c.retryAfter}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			opts := c.opts
			opts.InitialBackoff = 10 * time.Millisecond
			f := newSender(t, opts)
			err := f.s.Send(context.Background(), Request{URL: srv.URL}, items(5, 0))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, c.wantErr)
			}
			sc.mu.Lock()
			defer sc.mu.Unlock()
			if c.wantCalls >= 0 && sc.calls != c.wantCalls {
				t.Errorf("attempts = %d, want %d", sc.calls, c.wantCalls)
			}
			if c.wantCalls < 0 && sc.calls < 2 {
				t.Errorf("attempts = %d, want at least 2", sc.calls)
			}
			if got := testutil.ToFloat64(f.s.m.retries); got != float64(sc.calls-1) {
				t.Errorf("retries metric = %v, want %d", got, sc.calls-1)
			}
			if got := testutil.ToFloat64(f.dropped); got != c.wantDropped {
				t.Errorf("dropped series = %v, want %v", got, c.wantDropped)
			}
			if c.minGap > 0 && sc.times[1].Sub(sc.times[0]) < c.minGap {
				t.Errorf("retry after %s, want ≥ %s", sc.times[1].Sub(sc.times[0]), c.minGap)
			}
		})
	}
}

func TestConnectionRefusedIsRetriedThenDropped(t *testing.T) {
	addr := garnertest.FreeAddr(t) // nobody listens there
	f := newSender(t, Options{InitialBackoff: 10 * time.Millisecond, MaxRequestElapsedTime: 200 * time.Millisecond})
	err := f.s.Send(context.Background(), Request{URL: "http://" + addr + "/write?db=x&p=secret"}, items(7, 3))
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the query string: %v", err)
	}
	if !strings.Contains(err.Error(), "3 of 3 batches") {
		t.Errorf("error = %v", err)
	}
	if got := testutil.ToFloat64(f.dropped); got != 7 {
		t.Errorf("dropped series = %v, want 7", got)
	}
	if got := testutil.ToFloat64(f.s.m.retries); got < 3 {
		t.Errorf("retries = %v, want at least one per batch", got)
	}
	if got := testutil.ToFloat64(f.s.m.netErr); got < 6 {
		t.Errorf("error results = %v, want ≥ 6", got)
	}
}

func TestContextEndDropsUnsentBatches(t *testing.T) {
	srv := garnertest.HangingServer(t)
	f := newSender(t, Options{MaxRequests: 1, Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := f.s.Send(ctx, Request{URL: srv.URL}, items(10, 2))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %s after its deadline", d)
	}
	if got := testutil.ToFloat64(f.dropped); got != 10 {
		t.Errorf("dropped series = %v, want 10", got)
	}
}

func TestEncodeErrorDropsBatch(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	f := newSender(t, Options{})
	p := Split(4, 2, func(dst []byte, lo, hi int) ([]byte, error) {
		if lo == 2 {
			return dst, errors.New("boom")
		}
		return append(dst, 'x'), nil
	})
	err := f.s.Send(context.Background(), Request{URL: srv.URL}, p)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error = %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("requests = %d, want 1", calls.Load())
	}
	if got := testutil.ToFloat64(f.dropped); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name, in string
		want     time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"zero", "0", 0},
		{"negative", "-4", 0},
		{"http date", now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := parseRetryAfter(c.in, now); got != c.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestParseCompression(t *testing.T) {
	cases := []struct {
		in      string
		want    Compression
		wantErr bool
	}{
		{"", None, false}, {"none", None, false}, {"false", None, false}, {"true", Deflate, false},
		{"gzip", Gzip, false}, {"GZIP", Gzip, false}, {"deflate", Deflate, false}, {"zlib", Deflate, false},
		{"snappy", Snappy, false}, {"zstd", Zstd, false}, {"brotli", None, true},
		{" Zstd ", Zstd, false}, {"Deflate", Deflate, false}, {"SNAPPY", Snappy, false}, {"snappy2", None, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseCompression(c.in, Deflate)
			if (err != nil) != c.wantErr || got != c.want {
				t.Errorf("ParseCompression(%q) = %q, %v", c.in, got, err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("want an error without Subsystem/Log/Registerer")
	}
	deps, _, _ := garnertest.BackendDeps()
	opts := Options{Subsystem: "x", Deps: deps}
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	if _, err := New(opts); err == nil {
		t.Error("want an error registering the same subsystem twice")
	}
	opts.Registerer = prometheus.NewRegistry()
	opts.Compression = "lz4"
	if _, err := New(opts); err == nil {
		t.Error("want an error for an unknown compression")
	}
}

func TestEmptyBatchIsNotSent(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	f := newSender(t, Options{Compression: Gzip})
	p := Split(3, 1, func(dst []byte, lo, hi int) ([]byte, error) {
		if lo == 1 {
			return dst, nil
		}
		return append(dst, 'x'), nil
	})
	if err := f.s.Send(context.Background(), Request{URL: srv.URL}, p); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Errorf("requests = %d, want 2 (the empty batch skipped)", calls.Load())
	}
}
