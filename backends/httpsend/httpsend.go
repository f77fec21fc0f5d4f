// Package httpsend is garner's one retrying HTTP sender. Client posts one
// body with retries (exponential backoff with jitter, Retry-After, a time
// budget); Compressor encodes bodies (gzip, deflate, snappy, zstd); Sender,
// on top of both, is what the backends that POST their flushes (influxdb,
// datadog, prometheus, otlp) use: split a flush into batches, encode and
// compress each batch, send them with a concurrency limit, a per-request
// timeout and retries, and count what happens. The forwarder's upstreams use
// Client and Compressor directly (they queue their own compressed batches).
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
// drawn uniformly from [d/2, d]; a longer Retry-After wins, capped at
// MaxBackoff), for at most MaxRequestElapsedTime after the batch's first
// attempt and at most MaxRetries retries. Any other status (a 4xx) fails the
// batch at once: the destination refused it and would refuse it again. A
// batch that fails for good, or is never sent because ctx ended, adds its
// series to Options.DroppedSeries.
package httpsend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/tlsconf"
	"github.com/garner-metrics/garner/pkg/version"
)

// Options configures a Sender. Zero durations and counts take the value of
// DefaultOptions, as each field says.
type Options struct {
	// Subsystem names the self-metrics: garner_<Subsystem>_requests_total,
	// ... Usually the backend's name. Required.
	Subsystem string
	// MaxRequests bounds concurrent requests across all Send calls, hence
	// the bodies in memory. Zero: the default, 4.
	MaxRequests int
	// Timeout bounds one request attempt, response included. Zero: the
	// default, 10s.
	Timeout time.Duration
	// MaxRequestElapsedTime bounds the time spent on one batch, retries and
	// waits included, from its first attempt (the backends'
	// max-request-elapsed-time keys). Zero: the default, 15s. ctx may end it
	// sooner.
	MaxRequestElapsedTime time.Duration
	// MaxRetries bounds retries of one batch; 0 = bounded by
	// MaxRequestElapsedTime only (the default); negative = never retry.
	MaxRetries int
	// InitialBackoff is the first wait before a retry (zero: the default,
	// 100ms); MaxBackoff caps any one wait, Retry-After included (zero: the
	// default, 10s).
	InitialBackoff, MaxBackoff time.Duration
	// Compression of request bodies; zero: None (the default).
	Compression Compression
	// UserAgent is sent with every request. Empty: the default,
	// "garner/<version>".
	UserAgent string
	// Client sends the requests. Nil (the default): a client with its own
	// transport, proxy from the environment, MaxRequests idle connections
	// per host. Its own Timeout should be zero: attempts are bounded by
	// Timeout.
	Client *http.Client
	// TLS configures the default client's https:// connections (the
	// backends' tls-ca-file, tls-cert-file, tls-key-file, tls-server-name):
	// a private CA and a client certificate, re-read when their files change
	// and on tlsconf.Reload (new connections use them). Zero (the default):
	// the system roots; TLS 1.2 at least either way. A request that fails
	// at the handshake is counted in
	// garner_tls_client_handshake_errors_total{client=Subsystem,reason}.
	// Ignored when Client is set.
	TLS tlsconf.ClientOptions

	// Deps are the backend's: Log and Registerer are required;
	// DroppedSeries (may be nil) counts the series of batches given up on.
	backends.Deps
}

// DefaultOptions returns the defaults of every field New fills in when it
// is zero (Subsystem, Log and Registerer have none: they are required).
func DefaultOptions() Options {
	return Options{
		MaxRequests:           4,
		Timeout:               10 * time.Second,
		MaxRequestElapsedTime: 15 * time.Second,
		InitialBackoff:        DefaultInitialBackoff,
		MaxBackoff:            DefaultMaxBackoff,
		UserAgent:             "garner/" + version.Get().Version,
	}
}

// Request is what every batch of one Send call is posted with.
type Request struct {
	URL string
	// Header is added to every request (Content-Type, authentication).
	// Content-Encoding, Content-Length and User-Agent are set by the Sender.
	// It is not modified and may be shared between calls.
	Header http.Header
}

// Sender posts payloads. See the package doc for its concurrency contract.
type Sender struct {
	opts   Options
	client Client
	comp   *Compressor
	slots  chan struct{} // one token per request in flight
	bufs   sync.Pool     // *buffers
	m      senderMetrics
	logLim *ratelog.Limiter
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
	comp, err := NewCompressor(opts.Compression, 0)
	if err != nil {
		return nil, fmt.Errorf("httpsend: %w", err)
	}
	def := DefaultOptions()
	opts.MaxRequests = positiveOr(opts.MaxRequests, def.MaxRequests)
	opts.Timeout = positiveOr(opts.Timeout, def.Timeout)
	opts.MaxRequestElapsedTime = positiveOr(opts.MaxRequestElapsedTime, def.MaxRequestElapsedTime)
	opts.InitialBackoff = positiveOr(opts.InitialBackoff, def.InitialBackoff)
	opts.MaxBackoff = positiveOr(opts.MaxBackoff, def.MaxBackoff)
	opts.UserAgent = cmp.Or(opts.UserAgent, def.UserAgent)
	hc := opts.Client
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.MaxRequests
		tr.ResponseHeaderTimeout = opts.Timeout
		tc, err := tlsconf.NewClient(opts.TLS, opts.Log)
		if err != nil {
			return nil, fmt.Errorf("httpsend: %s tls: %w", opts.Subsystem, err)
		}
		hc = &http.Client{Transport: tc.RoundTripper(tr, opts.Subsystem, tlsconf.ClientHandshakeErrors(opts.Registerer), opts.Log)}
	}
	s := &Sender{
		opts: opts, comp: comp, slots: make(chan struct{}, opts.MaxRequests),
		client: Client{HTTP: hc, Timeout: opts.Timeout, UserAgent: opts.UserAgent, Retry: Retry{
			InitialBackoff: opts.InitialBackoff, MaxBackoff: opts.MaxBackoff, MaxRetries: opts.MaxRetries,
		}},
		logLim: ratelog.Every(time.Minute, 5),
	}
	s.bufs.New = func() any { return new(buffers) }

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
	if err := opts.Register(sub+" HTTP sender", reqs, retries, failed, sent, dur); err != nil {
		return nil, err
	}
	s.m = senderMetrics{
		ok: reqs.WithLabelValues("2xx"), status4xx: reqs.WithLabelValues("4xx"), status5xx: reqs.WithLabelValues("5xx"),
		statusOther: reqs.WithLabelValues("other"), netErr: reqs.WithLabelValues("error"),
		retries: retries, failedBatches: failed, sentBytes: sent, duration: dur,
	}
	return s, nil
}

// positiveOr is v when it is positive, else def.
func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Options returns the options in effect, defaults filled in.
func (s *Sender) Options() Options { return s.opts }

// Client returns the HTTP client the Sender uses (for health probes).
func (s *Sender) Client() *http.Client { return s.client.HTTP }

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
		wg.Go(func() {
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
		})
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		err := fmt.Errorf("%d of %d batches to %q failed, first: %w", f, n, redactURL(req.URL), firstErr)
		if e := s.logLim.Entry(s.opts.Log); e != nil {
			e.WithError(err).Warn("batches dropped")
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
		b.enc, err = s.comp.Append(b.enc[:0], raw)
		if err != nil {
			return fmt.Errorf("cannot compress batch %d: %w", i, err)
		}
		body = b.enc
	}
	return s.client.Do(ctx, Post{
		URL: req.URL, Header: req.Header, Body: body, Encoding: string(s.opts.Compression),
		Deadline: time.Now().Add(s.opts.MaxRequestElapsedTime),
		Observe:  s.observe(len(body)),
	})
}

// observe counts one attempt of a body of n bytes.
func (s *Sender) observe(n int) func(int, time.Duration, error) {
	return func(attempt int, took time.Duration, err error) {
		if attempt > 0 {
			s.m.retries.Inc()
		}
		s.m.duration.Observe(took.Seconds())
		s.m.sentBytes.Add(float64(n))
		var se *StatusError
		switch {
		case err == nil:
			s.m.ok.Inc()
		case errors.As(err, &se) && se.Code >= 500:
			s.m.status5xx.Inc()
		case se != nil && se.Code >= 400:
			s.m.status4xx.Inc()
		case se != nil:
			s.m.statusOther.Inc()
		default:
			s.m.netErr.Inc()
		}
	}
}

func (s *Sender) putBuffers(b *buffers) {
	// Do not keep unusually large buffers alive between flushes.
	if cap(b.raw) > 16<<20 || cap(b.enc) > 16<<20 {
		return
	}
	s.bufs.Put(b)
}

// Probe sends a GET (bounded by ctx and the Sender's Timeout) and returns
// the response status code; any response at all means the destination is
// reachable. Backends use it for their health checks.
func (s *Sender) Probe(ctx context.Context, url string, header http.Header) (int, error) {
	return s.client.Probe(ctx, http.MethodGet, url, header)
}

// CheckReachable is the health check of a backend that posts to an endpoint
// which need not answer a GET (a write endpoint answers it with 405): it
// probes url and counts any answer but an auth refusal (401, 403) or a
// server error (5xx) as reachable. what names the endpoint in the error.
func (s *Sender) CheckReachable(ctx context.Context, url string, header http.Header, what string) error {
	code, err := s.Probe(ctx, url, header)
	if err != nil {
		return err
	}
	if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
		return fmt.Errorf("%s answered %d %s", what, code, http.StatusText(code))
	}
	return nil
}
