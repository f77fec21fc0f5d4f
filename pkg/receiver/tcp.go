//go:build linux

package receiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// maxBadRun is how many bad lines in a row make a TCP client be disconnected:
// it is not speaking statsd.
const maxBadRun = 100

// TCPOptions configures the TCP receiver; start from DefaultTCPOptions.
type TCPOptions struct {
	// Addr is the host:port to listen on (key tcp-metrics-addr).
	Addr string
	// MaxLineLength is the longest line, bytes (key tcp-max-line-length);
	// a client that sends a longer one is disconnected. Less than 64 means
	// 64. Default 65536.
	MaxLineLength int
	// MaxConnections bounds the concurrent clients (key
	// tcp-max-connections); further ones are closed at once. Less than 1
	// means 1. Default 1024.
	MaxConnections int
	// IdleTimeout disconnects a client silent this long (key
	// tcp-idle-timeout); 0 = never. Default 5m.
	IdleTimeout time.Duration
	// TLS, when set, makes every client complete a TLS handshake first
	// (keys tcp-tls-*; built by tlsconf.ServerConfig); a failed handshake is
	// counted in garner_tls_handshake_errors_total{listener="tcp"} and
	// logged with a rate limit, and only that client is closed. Nil = plain
	// TCP. Default nil.
	TLS *tls.Config
}

// tlsHandshakeTimeout bounds a TLS client's handshake.
const tlsHandshakeTimeout = 10 * time.Second

// DefaultTCPOptions returns the options the keys default to (no Addr).
func DefaultTCPOptions() TCPOptions {
	return TCPOptions{MaxLineLength: 64 << 10, MaxConnections: 1024, IdleTimeout: 5 * time.Minute}
}

// TCP is the newline-delimited statsd listener.
type TCP struct {
	opts  TCPOptions
	lines *Lines
	log   logrus.FieldLogger
	ln    net.Listener
	sem   chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	refused, closedBad prometheus.Counter
	active             prometheus.Gauge
	handshakeErrs      map[string]prometheus.Counter // by tlsconf reason; TLS only
	handshakeLog       *ratelog.Limiter
	accepting          atomic.Bool // Run's accept loop is running (health.go)
}

// ListenTCP binds the listener.
func ListenTCP(opts TCPOptions, lines *Lines, log logrus.FieldLogger, reg prometheus.Registerer) (*TCP, error) {
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on tcp %q: %w", opts.Addr, err)
	}
	t := &TCP{
		opts: opts, lines: lines, log: log.WithField("receiver", "tcp"), ln: ln,
		sem:   make(chan struct{}, max(opts.MaxConnections, 1)),
		conns: make(map[net.Conn]struct{}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "garner_receiver_tcp_refused_connections_total", Help: "TCP clients closed at once because tcp-max-connections were open."}),
		closedBad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "garner_receiver_tcp_dropped_connections_total", Help: "TCP clients disconnected for an overlong line or a run of bad lines."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "garner_receiver_tcp_connections", Help: "Open TCP statsd connections."}),
	}
	reg.MustRegister(t.refused, t.closedBad, t.active)
	if opts.TLS != nil {
		vec := tlsconf.HandshakeErrors(reg)
		t.handshakeErrs = make(map[string]prometheus.Counter, len(tlsconf.Reasons))
		for _, r := range tlsconf.Reasons {
			t.handshakeErrs[r] = vec.WithLabelValues("tcp", r)
		}
		t.handshakeLog = ratelog.Every(time.Minute, 10)
	}
	return t, nil
}

// Addr is the bound address.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// Run accepts clients until ctx is cancelled; then it stops accepting, lets
// every connection read what is already buffered for a short drain period,
// and returns nil when all connection goroutines have finished.
func (t *TCP) Run(ctx context.Context) error {
	t.accepting.Store(true)
	defer t.accepting.Store(false)
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		_ = t.ln.Close()
		t.mu.Lock()
		for c := range t.conns {
			_ = c.SetReadDeadline(time.Now().Add(drainTime))
		}
		t.mu.Unlock()
	}()
	defer close(done)
	backoff := 5 * time.Millisecond
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				wg.Wait()
				return nil
			}
			t.log.WithError(err).Warn("accept failed; retrying")
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case t.sem <- struct{}{}:
		default:
			t.refused.Inc()
			_ = conn.Close()
			continue
		}
		t.mu.Lock()
		t.conns[conn] = struct{}{}
		if ctx.Err() != nil {
			_ = conn.SetReadDeadline(time.Now().Add(drainTime))
		}
		t.mu.Unlock()
		t.active.Inc()
		wg.Go(func() {
			t.serve(ctx, conn)
			t.mu.Lock()
			delete(t.conns, conn)
			t.mu.Unlock()
			_ = conn.Close()
			t.active.Dec()
			<-t.sem
		})
	}
}

func (t *TCP) serve(ctx context.Context, conn net.Conn) {
	if t.opts.TLS != nil {
		var ok bool
		if conn, ok = t.handshake(ctx, conn); !ok {
			return
		}
	}
	r := t.lines.NewHandler("tcp")
	defer r.Handoff()
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		r.SetSource(ip.Unmap())
	}
	maxLine := max(t.opts.MaxLineLength, 64)
	buf := make([]byte, max(64*1024, maxLine+1))
	start, end := 0, 0
	for {
		if ctx.Err() == nil && t.opts.IdleTimeout > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(t.opts.IdleTimeout))
		}
		n, err := conn.Read(buf[end:])
		end += n
		if n > 0 {
			r.CountRead(n)
		}
		// Complete lines.
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			r.HandleLine(buf[start : start+i])
			start += i + 1
		}
		if r.BadRun() >= maxBadRun {
			t.closedBad.Inc()
			t.log.WithField("remote", conn.RemoteAddr().String()).Warn("disconnecting tcp client: it sends only bad lines")
			return
		}
		if end-start > maxLine {
			r.LineTooLong(buf[start:end])
			t.closedBad.Inc()
			t.log.WithField("remote", conn.RemoteAddr().String()).Warnf("disconnecting tcp client: line longer than tcp-max-line-length (%d bytes)", maxLine)
			return
		}
		// Move the partial line to the front.
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		r.Handoff()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if end > 0 {
					r.HandleLine(buf[:end]) // last line without '\n'
				}
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				t.log.WithField("remote", conn.RemoteAddr().String()).Debug("disconnecting idle tcp client")
			}
			return
		}
	}
}

// handshake runs the TLS handshake of a new client, bounded by
// tlsHandshakeTimeout; a failure is counted, logged with a rate limit and
// reported as false (the caller closes conn).
func (t *TCP) handshake(ctx context.Context, conn net.Conn) (net.Conn, bool) {
	tc := tls.Server(conn, t.opts.TLS)
	_ = conn.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	_ = conn.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		// Shutting down: the drain deadline Run set was just cleared.
		_ = conn.SetReadDeadline(time.Now().Add(drainTime))
	}
	if err != nil {
		reason := tlsconf.HandshakeReason(err)
		t.handshakeErrs[reason].Inc()
		if e := t.handshakeLog.Entry(t.log); e != nil {
			e.WithError(err).WithFields(logrus.Fields{"remote": conn.RemoteAddr().String(), "reason": reason}).
				Warn("tls handshake with a tcp statsd client failed; closing it")
		}
		return nil, false
	}
	return tc, true
}
