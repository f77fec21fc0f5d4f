// Package httpsend is the HTTP plumbing shared by the backends that POST their
// flushes (influxdb, datadog, prometheus, otlp): split a flush into batches,
// encode and compress each batch, send them with a concurrency limit, a
// per-request timeout and retries with exponential backoff and jitter within
// a total time budget, and count what happens.
//
// # Concurrency contract
//
// A Sender is safe for concurrent use: several Send calls may run at once
// (a backend's SendMetrics and SendEvent, say). MaxRequests bounds the
// requests in flight across ALL of them, and a batch is only encoded once it
// holds one of those slots, so the memory a Sender uses for bodies is bounded
// by MaxRequests × (largest batch, raw and compressed) whatever the size of
// the flush. A batch keeps its slot while it waits to be retried.
//
// The Payload handed to Send is read from up to MaxRequests goroutines at
// once (each with a different batch index); Send returns only after every one
// of those goroutines has finished, so the payload (and the snapshot it
// reads) may be released as soon as Send returns.
//
// # What is retried
//
// Connection errors and request timeouts, 408, 429 and 5xx are retried with
// exponential backoff (×2 from InitialBackoff up to MaxBackoff, each wait
// drawn uniformly from [d/2, d]), honouring a Retry-After header, for at most
// MaxElapsed after the batch's first attempt and at most MaxRetries retries.
// Any other status (a 4xx) fails the batch at once: the destination refused
// it and would refuse it again. A batch that fails for good, or is never sent
// because ctx ended, adds its series to Options.DroppedSeries.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/version"
)

// Compression is a request body encoding.
type Compression string

// Supported body encodings; the value is the Content-Encoding header sent
// (none sends no header).
const (
	None    Compression = ""
	Gzip    Compression = "gzip"
	Deflate Compression = "deflate" // zlib stream (RFC 1950), what HTTP calls deflate
	Snappy  Compression = "snappy"  // snappy block format (Prometheus remote write)
	Zstd    Compression = "zstd"
)

// ParseCompression maps a config value to a Compression: "" / "none" /
// "identity" / "false" → None, "true" → def (for boolean compress_payload keys).
func ParseCompression(s string, def Compression) (Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none", "identity", "false":
		return None, nil
	case "true":
		return def, nil
	case "gzip":
		return Gzip, nil
	case "deflate", "zlib":
		return Deflate, nil
	case "snappy":
		return Snappy, nil
	case "zstd":
		return Zstd, nil
	}
	return None, fmt.Errorf("unknown compression %q (want none, gzip, deflate, snappy or zstd)", s)
}

// Options configures a Sender. Zero durations and counts take the defaults
// documented on each field.
type Options struct {
	// Subsystem names the self-metrics: garner_<Subsystem>_requests_total,
	// ... Usually the backend's name. Required.
	Subsystem string
	// MaxRequests bounds concurrent requests across all Send calls (default 4).
	MaxRequests int
	// Timeout bounds one request attempt, response included (default 10s).
	Timeout time.Duration
	// MaxElapsed bounds the time spent on one batch, retries and waits
	// included, from its first attempt (default 15s). ctx may end it sooner.
	MaxElapsed time.Duration
	// MaxRetries bounds retries of one batch; 0 = bounded by MaxElapsed
	// only; negative = never retry.
	MaxRetries int
	// InitialBackoff is the first wait before a retry (default 100ms);
	// MaxBackoff caps any one wait, Retry-After included (default 10s).
	InitialBackoff, MaxBackoff time.Duration
	// Compression of request bodies (default None).
	Compression Compression
	// UserAgent is sent with every request (default "garner/<version>").
	UserAgent string
	// Client sends the requests (default: a client with its own transport,
	// proxy from the environment, MaxRequests idle connections per host).
	// Its own Timeout should be zero: attempts are bounded by Timeout.
	Client *http.Client

	Log        logrus.FieldLogger    // required
	Registerer prometheus.Registerer // required
	// DroppedSeries counts the series of batches given up on (may be nil).
	DroppedSeries prometheus.Counter
}

// Request is what every batch of one Send call is posted with.
type Request struct {
	URL string
	// Header is added to every request (Content-Type, authentication).
	// Content-Encoding, Content-Length and User-Agent are set by the Sender.
	// It is not modified and may be shared between calls.
	Header http.Header
}

// Payload is a flush (or an event) cut into batches. Its methods are called
// concurrently for different batch indexes (see the package doc).
type Payload interface {
	// Batches is the number of batches; each becomes one request.
	Batches() int
	// Series is the number of series batch i carries, counted as dropped
	// if it cannot be delivered.
	Series(i int) int
	// Encode appends batch i's uncompressed body to dst. An error drops the
	// batch without sending it; an empty body is not sent.
	Encode(dst []byte, i int) ([]byte, error)
}

// Split cuts n items into batches of at most per items (per <= 0: one
// batch), each item counting as one series. encode appends the body of the
// items [lo, hi) to dst and is called concurrently for disjoint ranges.
func Split(n, per int, encode func(dst []byte, lo, hi int) ([]byte, error)) Payload {
	if per <= 0 || per > n {
		per = max(n, 1)
	}
	return split{n: n, per: per, encode: encode}
}

type split struct {
	n, per int
	encode func(dst []byte, lo, hi int) ([]byte, error)
}

func (s split) Batches() int { return (s.n + s.per - 1) / s.per }
func (s split) bounds(i int) (int, int) {
	lo := i * s.per
	return lo, min(lo+s.per, s.n)
}
func (s split) Series(i int) int { lo, hi := s.bounds(i); return hi - lo }
func (s split) Encode(dst []byte, i int) ([]byte, error) {
	lo, hi := s.bounds(i)
	return s.encode(dst, lo, hi)
}

// One returns a payload of a single body built by encode (an event, a
// service check), counting as series series when dropped.
func One(series int, encode func(dst []byte) ([]byte, error)) Payload {
	return one{series: series, encode: encode}
}

type one struct {
	series int
	encode func(dst []byte) ([]byte, error)
}

func (o one) Batches() int                             { return 1 }
func (o one) Series(int) int                           { return o.series }
func (o one) Encode(dst []byte, _ int) ([]byte, error) { return o.encode(dst) }

// Sender posts payloads. See the package doc for its concurrency contract.
type Sender struct {
	opts   Options
	client *http.Client
	slots  chan struct{} // one token per request in flight
	bufs   sync.Pool     // *buffers
	cw     sync.Pool     // compressor: *gzip.Writer, *zlib.Writer or *zstd.Encoder
	m      senderMetrics
	logLim *LogLimiter
}

type senderMetrics struct {
	ok, status4xx, status5xx, statusOther, netErr prometheus.Counter
	retries, failedBatches, sentBytes             prometheus.Counter
	duration                                      prometheus.Observer
}

type buffers struct{ raw, enc []byte }

// New builds a Sender and registers its self-metrics.
func New(opts Options) (*Sender, error) {
	if opts.Subsystem == "" || opts.Log == nil || opts.Registerer == nil {
		return nil, errors.New("httpsend: Subsystem, Log and Registerer are required")
	}
	switch opts.Compression {
	case None, Gzip, Deflate, Snappy, Zstd:
	default:
		return nil, fmt.Errorf("httpsend: unknown compression %q", opts.Compression)
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxElapsed <= 0 {
		opts.MaxElapsed = 15 * time.Second
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "garner/" + version.Get().Version
	}
	s := &Sender{opts: opts, client: opts.Client, slots: make(chan struct{}, opts.MaxRequests)}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.MaxRequests
		tr.ResponseHeaderTimeout = opts.Timeout
		s.client = &http.Client{Transport: tr}
	}
	s.bufs.New = func() any { return new(buffers) }
	switch opts.Compression {
	case Gzip:
		s.cw.New = func() any { return gzip.NewWriter(nil) }
	case Deflate:
		s.cw.New = func() any { return zlib.NewWriter(nil) }
	case Zstd:
		s.cw.New = func() any {
			w, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			return w
		}
	}
	s.logLim = NewLogLimiter(time.Minute, 5)

	sub := opts.Subsystem
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_" + sub + "_requests_total",
		Help: "HTTP requests (attempts, retries included) by result: 2xx, 4xx, 5xx, other (1xx/3xx), error (no response).",
	}, []string{"result"})
	retries := prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_" + sub + "_retries_total", Help: "Request attempts that were retries of a failed attempt."})
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_" + sub + "_failed_batches_total", Help: "Batches given up on: refused, retries or time budget exhausted, or not sent before the deadline."})
	sent := prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_" + sub + "_sent_bytes_total", Help: "Request body bytes sent (after compression), retries included."})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "garner_" + sub + "_request_duration_seconds", Help: "Duration of one request attempt.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	})
	for _, c := range []prometheus.Collector{reqs, retries, failed, sent, dur} {
		if err := opts.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("httpsend: cannot register self-metrics for %q: %w", sub, err)
		}
	}
	s.m = senderMetrics{
		ok: reqs.WithLabelValues("2xx"), status4xx: reqs.WithLabelValues("4xx"), status5xx: reqs.WithLabelValues("5xx"),
		statusOther: reqs.WithLabelValues("other"), netErr: reqs.WithLabelValues("error"),
		retries: retries, failedBatches: failed, sentBytes: sent, duration: dur,
	}
	return s, nil
}

// Options returns the options in effect, defaults filled in.
func (s *Sender) Options() Options { return s.opts }

// Client returns the HTTP client the Sender uses (for health probes).
func (s *Sender) Client() *http.Client { return s.client }

// Send posts every batch of p to req.URL and returns when each batch has
// been delivered or given up on. It returns nil when every batch was
// delivered, otherwise an error saying how many failed and why the first
// did. Batches not yet started when ctx ends are not sent (and counted as
// dropped); a request in flight is cancelled.
func (s *Sender) Send(ctx context.Context, req Request, p Payload) error {
	n := p.Batches()
	if n <= 0 {
		return nil
	}
	var (
		next     atomic.Int64
		failures atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(i int, err error) {
		failures.Add(1)
		s.m.failedBatches.Inc()
		if s.opts.DroppedSeries != nil {
			s.opts.DroppedSeries.Add(float64(p.Series(i)))
		}
		errOnce.Do(func() { firstErr = err })
	}
	for range min(n, s.opts.MaxRequests) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				select {
				case s.slots <- struct{}{}:
				case <-ctx.Done():
					fail(i, fmt.Errorf("not sent: %w", context.Cause(ctx)))
					continue
				}
				if err := s.sendBatch(ctx, req, p, i); err != nil {
					fail(i, err)
				}
				<-s.slots
			}
		}()
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		err := fmt.Errorf("%d of %d batches to %q failed, first: %w", f, n, redactURL(req.URL), firstErr)
		if ok, suppressed := s.logLim.Allow(); ok {
			s.opts.Log.WithError(err).WithField("suppressed_logs", suppressed).Warn("batches dropped")
		}
		return err
	}
	return nil
}

// sendBatch encodes, compresses and posts batch i, retrying as the package
// doc says. The caller holds a slot.
func (s *Sender) sendBatch(ctx context.Context, req Request, p Payload, i int) error {
	b := s.bufs.Get().(*buffers)
	defer s.putBuffers(b)
	raw, err := p.Encode(b.raw[:0], i)
	b.raw = raw // keep the grown buffer for reuse
	if err != nil {
		return fmt.Errorf("cannot encode batch %d: %w", i, err)
	}
	if len(raw) == 0 {
		return nil // nothing to send (every series of the batch was skipped)
	}
	body := raw
	if s.opts.Compression != None {
		b.enc, err = s.compress(b.enc[:0], raw)
		if err != nil {
			return fmt.Errorf("cannot compress batch %d: %w", i, err)
		}
		body = b.enc
	}

	start := time.Now()
	wait := s.opts.InitialBackoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.m.retries.Inc()
		}
		retryAfter, err := s.attempt(ctx, req, body)
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		}
		if s.opts.MaxRetries < 0 || (s.opts.MaxRetries > 0 && attempt >= s.opts.MaxRetries) {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		d := wait/2 + rand.N(wait/2+1)
		if retryAfter > 0 {
			d = retryAfter
		}
		d = min(d, s.opts.MaxBackoff)
		if time.Since(start)+d > s.opts.MaxElapsed {
			return fmt.Errorf("%w (gave up after %d attempts: max elapsed time %s reached)", err, attempt+1, s.opts.MaxElapsed)
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
			return fmt.Errorf("%w (gave up after %d attempts: deadline before the next retry)", err, attempt+1)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(wait*2, s.opts.MaxBackoff)
	}
}

func (s *Sender) putBuffers(b *buffers) {
	// Do not keep unusually large buffers alive between flushes.
	if cap(b.raw) > 16<<20 || cap(b.enc) > 16<<20 {
		return
	}
	s.bufs.Put(b)
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// attempt posts body once. It returns the Retry-After the server asked for
// (0 if none) and nil, a retryable error or a permanentError.
func (s *Sender) attempt(ctx context.Context, req Request, body []byte) (time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(actx, http.MethodPost, req.URL, bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{fmt.Errorf("cannot build request: %w", err)}
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	hr.Header.Set("User-Agent", s.opts.UserAgent)
	if s.opts.Compression != None {
		hr.Header.Set("Content-Encoding", string(s.opts.Compression))
	}
	start := time.Now()
	resp, err := s.client.Do(hr)
	s.m.duration.Observe(time.Since(start).Seconds())
	s.m.sentBytes.Add(float64(len(body)))
	if err != nil {
		s.m.netErr.Inc()
		return 0, fmt.Errorf("cannot post to %q: %w", redactURL(req.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		s.m.ok.Inc()
		// Drain (bounded) so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return 0, nil
	}
	msg := readSnippet(resp.Body)
	err = fmt.Errorf("%q answered %s: %q", redactURL(req.URL), resp.Status, msg)
	switch {
	case code >= 500:
		s.m.status5xx.Inc()
	case code >= 400:
		s.m.status4xx.Inc()
	default:
		s.m.statusOther.Inc()
	}
	if code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests {
		return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), err
	}
	return 0, permanentError{err}
}

// compress appends raw, compressed, to dst.
func (s *Sender) compress(dst, raw []byte) ([]byte, error) {
	switch s.opts.Compression {
	case Snappy:
		n := snappy.MaxEncodedLen(len(raw))
		if cap(dst)-len(dst) < n {
			dst = append(make([]byte, 0, len(dst)+n), dst...)
		}
		out := snappy.Encode(dst[len(dst):cap(dst)], raw)
		return dst[:len(dst)+len(out)], nil
	case Zstd:
		w := s.cw.Get().(*zstd.Encoder)
		defer s.cw.Put(w)
		return w.EncodeAll(raw, dst), nil
	case Gzip, Deflate:
		w := s.cw.Get().(streamWriter)
		defer s.cw.Put(w)
		sw := &sliceWriter{b: dst}
		w.Reset(sw)
		if _, err := w.Write(raw); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return sw.b, nil
	}
	return append(dst, raw...), nil
}

// streamWriter is a gzip or zlib writer.
type streamWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// sliceWriter appends to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
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

// Probe sends a GET (bounded by ctx and the Sender's Timeout) and returns
// the response status code; any response at all means the destination is
// reachable. Backends use it for their health checks.
func (s *Sender) Probe(ctx context.Context, url string, header http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot build probe request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", s.opts.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach %q: %w", redactURL(url), unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// LogLimiter lets through at most burst log lines per period and counts the
// rest. Safe for concurrent use.
type LogLimiter struct {
	mu         sync.Mutex
	period     time.Duration
	burst      int
	start      time.Time
	used       int
	suppressed int
}

// NewLogLimiter allows burst lines per period.
func NewLogLimiter(period time.Duration, burst int) *LogLimiter {
	return &LogLimiter{period: period, burst: burst}
}

// Allow reports whether a line may be logged now and, if so, how many were
// suppressed since the last one let through.
func (l *LogLimiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.start) >= l.period {
		l.start, l.used = now, 0
	}
	if l.used >= l.burst {
		l.suppressed++
		return false, 0
	}
	l.used++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
