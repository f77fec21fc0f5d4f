package httpsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Retry is garner's one retry policy for HTTP requests: exponential backoff
// with jitter, honouring Retry-After, within a time budget.
type Retry struct {
	// InitialBackoff is the wait before the first retry. Zero: the default,
	// 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps any one wait, Retry-After included. Zero: the default,
	// 10s.
	MaxBackoff time.Duration
	// MaxRetries bounds the retries of one body: 0 = bounded by the time
	// budget only; negative = never retry.
	MaxRetries int
}

// Default retry policy values.
const (
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
)

func (r Retry) withDefaults() Retry {
	r.InitialBackoff = positiveOr(r.InitialBackoff, DefaultInitialBackoff)
	r.MaxBackoff = positiveOr(r.MaxBackoff, DefaultMaxBackoff)
	return r
}

// Backoff returns the wait before retry n (1, 2, ...): InitialBackoff
// doubled n-1 times, at most MaxBackoff, drawn uniformly from [d/2, d] so
// that senders do not retry in step. A Retry-After longer than that wins,
// still capped at MaxBackoff.
func (r Retry) Backoff(n int, retryAfter time.Duration) time.Duration {
	r = r.withDefaults()
	d := r.InitialBackoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return min(max(d, retryAfter), r.MaxBackoff)
}

// Client posts one body to one URL, retrying by its Retry policy. It is the
// retrying core under Sender and under the forwarder's upstreams. Safe for
// concurrent use; a zero Client works (http.DefaultClient, no attempt
// timeout, the default policy).
type Client struct {
	// HTTP sends the requests; nil = http.DefaultClient. Its own Timeout
	// should be zero: attempts are bounded by Timeout.
	HTTP *http.Client
	// Timeout bounds one attempt, response included; 0 = ctx only.
	Timeout time.Duration
	// UserAgent is sent with every request when not empty.
	UserAgent string
	Retry     Retry
}

// Post is one body to deliver.
type Post struct {
	URL string
	// Header is added to every attempt; it is not modified.
	Header http.Header
	Body   []byte // sent as is (already compressed)
	// Encoding is the Content-Encoding header; "" sends none.
	Encoding string
	// Deadline ends the retries: a retry that would start after it is not
	// made. Zero = no deadline but ctx's.
	Deadline time.Time
	// Retryable says which statuses are retried; nil = 5xx, 408 and 429
	// (RetryableStatus). Network errors and timeouts are always retried.
	Retryable func(code int) bool
	// Observe, when set, is called after every attempt (n = 0 for the
	// first) with its duration and its error (a *StatusError for a non-2xx
	// answer); nil err means delivered.
	Observe func(n int, took time.Duration, err error)
	// Continue, when set, is called before waiting for a retry and again
	// after the wait; false stops, and Do returns ErrStopped.
	Continue func() bool
}

// ErrStopped is returned (wrapped) by Do when Post.Continue refused a retry.
var ErrStopped = errors.New("retries stopped by the caller")

// ErrGaveUp is returned (wrapped) by Do when the retry count or the
// deadline ran out; the last attempt's error is wrapped too.
var ErrGaveUp = errors.New("gave up")

// StatusError is a non-2xx answer.
type StatusError struct {
	URL     string // without its query string
	Code    int
	Status  string
	Snippet string // the start of the response body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%q answered %s: %q", e.URL, e.Status, e.Snippet)
}

// RetryableStatus is the default Post.Retryable: 5xx, 408 and 429.
func RetryableStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// Do delivers p, retrying connection errors, timeouts and retryable
// statuses. It returns nil once the body was accepted (2xx); otherwise the
// last attempt's error: as is when it is not worth retrying (a *StatusError
// with a status p.Retryable refuses, or a request that cannot be built),
// wrapping ErrGaveUp when the retries or the deadline ran out, ErrStopped
// when p.Continue refused, or ctx's cause when ctx ended.
func (c *Client) Do(ctx context.Context, p Post) error {
	retryable := p.Retryable
	if retryable == nil {
		retryable = RetryableStatus
	}
	for n := 0; ; n++ {
		start := time.Now()
		retryAfter, err := c.attempt(ctx, &p)
		if p.Observe != nil {
			p.Observe(n, time.Since(start), err)
		}
		if err == nil {
			return nil
		}
		var se *StatusError
		var perm permanentError
		switch {
		case errors.As(err, &perm):
			return err
		case errors.As(err, &se) && !retryable(se.Code):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case c.Retry.MaxRetries < 0 || (c.Retry.MaxRetries > 0 && n >= c.Retry.MaxRetries):
			return fmt.Errorf("%w (%w after %d attempts)", err, ErrGaveUp, n+1)
		}
		wait := c.Retry.Backoff(n+1, retryAfter)
		next := time.Now().Add(wait)
		if !p.Deadline.IsZero() && next.After(p.Deadline) {
			return fmt.Errorf("%w (%w after %d attempts: max elapsed time reached before the next retry)", err, ErrGaveUp, n+1)
		}
		if dl, ok := ctx.Deadline(); ok && next.After(dl) {
			return fmt.Errorf("%w (%w after %d attempts: deadline before the next retry)", err, ErrGaveUp, n+1)
		}
		if p.Continue != nil && !p.Continue() {
			return fmt.Errorf("%w: %w", ErrStopped, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		if p.Continue != nil && !p.Continue() {
			return fmt.Errorf("%w: %w", ErrStopped, err)
		}
	}
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// attempt posts p's body once. It returns the Retry-After the server asked
// for (0 if none) and nil, a *StatusError, a network error or a
// permanentError.
func (c *Client) attempt(ctx context.Context, p *Post) (time.Duration, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return 0, permanentError{fmt.Errorf("cannot build request: %w", err)}
	}
	for k, v := range p.Header {
		hr.Header[k] = v
	}
	if c.UserAgent != "" {
		hr.Header.Set("User-Agent", c.UserAgent)
	}
	if p.Encoding != "" {
		hr.Header.Set("Content-Encoding", p.Encoding)
	}
	resp, err := c.httpClient().Do(hr)
	if err != nil {
		return 0, fmt.Errorf("cannot post to %q: %w", redactURL(p.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain (bounded) so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return 0, nil
	}
	se := &StatusError{URL: redactURL(p.URL), Code: resp.StatusCode, Status: resp.Status, Snippet: readSnippet(resp.Body)}
	return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), se
}

// Probe sends one request without a body (bounded by ctx and Timeout) and
// returns the response status code; any response at all means the
// destination is reachable. Health checks use it.
func (c *Client) Probe(ctx context.Context, method, url string, header http.Header) (int, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, http.NoBody)
	if err != nil {
		return 0, fmt.Errorf("cannot build probe request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach %q: %w", redactURL(url), unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// readSnippet reads the start of an error response for the error message.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	return strings.TrimSpace(string(b))
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// unwrapURLError drops the *url.Error layer (which repeats the URL, API
// keys in the query included) and keeps its cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// redactURL removes the query string (it may carry credentials) for logs
// and errors.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}
