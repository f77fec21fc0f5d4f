// Package statsdaemon repeats aggregates to another statsd server (a
// gostatsd, a garner, an etsy statsd) as statsd lines, as gostatsd's
// statsdaemon backend does: over UDP in datagrams of at most 1432 bytes, or
// over a persistent TCP connection as newline-terminated lines.
//
// Mapping: a counter is re-sent as <name>:<interval total>|c; a timer as one
// <name>:<v>|ms line per value, with |@<rate> when it was sampled so that the
// receiver counts the same Σ 1/rate (rate = values / sampled count); a gauge
// as <name>:<v>|g, preceded by <name>:0|g in the same datagram when v is
// negative (a leading '-' is a delta to statsd); a set as one <name>:<m>|s
// line per member. Tags follow as |#t1,t2 unless disable_tags. The source is
// not sent: the receiver sees this server's address. Events and service
// checks are re-sent in DogStatsD form (_e{...} and _sc|...).
//
// NaN has no statsd form and is not sent; ±Inf is sent as ±MaxFloat64; both
// are counted in garner_statsdaemon_nonfinite_values_total.
//
// A flush is written as it is formatted, one datagram (or 64 KiB of TCP
// stream) at a time, so memory is bounded whatever its size. What cannot be
// written (no connection, write error, deadline) is dropped and its series
// counted in garner_backend_dropped_series_total: nothing is kept for the
// next flush. A broken TCP connection is re-dialled at most once per flush.
package statsdaemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/metrics"
	"github.com/garner-metrics/garner/pkg/ratelog"
)

// Name is the backend's name in the backends key.
const Name = "statsdaemon"

// MaxUDPPacketSize is the largest datagram sent: a 1500-byte Ethernet MTU
// minus IP and UDP headers with room to spare, as gostatsd.
const MaxUDPPacketSize = 1432

// tcpChunk is how much TCP stream is formatted before it is written.
const tcpChunk = 64 << 10

// Client is the statsdaemon backend. Safe for concurrent use; sends are
// serialised on its one connection.
type Client struct {
	cfg     config.Statsdaemon
	network string
	chunk   int
	log     logrus.FieldLogger
	logLim  *ratelog.Limiter
	dropped prometheus.Counter
	m       clientMetrics

	mu   sync.Mutex
	conn net.Conn
}

type clientMetrics struct {
	packets, bytes, writeErrors, connects, nonFinite prometheus.Counter
}

var (
	_ backends.Backend            = (*Client)(nil)
	_ backends.ServiceCheckSender = (*Client)(nil)
	_ backends.HealthChecker      = (*Client)(nil)
)

// New builds the backend from the [statsdaemon] section. It does not
// connect: the first flush does.
func New(cfg config.Statsdaemon, deps backends.Deps) (*Client, error) {
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("statsdaemon address %q: %w", cfg.Address, err)
	}
	c := &Client{cfg: cfg, network: "udp", chunk: MaxUDPPacketSize, log: deps.Log, dropped: deps.DroppedSeries,
		logLim: ratelog.Every(time.Minute, 5)}
	if cfg.TCPTransport {
		c.network, c.chunk = "tcp", tcpChunk
	}
	if c.cfg.DialTimeout <= 0 {
		c.cfg.DialTimeout = 5 * time.Second
	}
	c.m = clientMetrics{
		packets:     prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_writes_total", Help: "Datagrams (UDP) or stream chunks (TCP) written."}),
		bytes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_sent_bytes_total", Help: "Bytes of statsd lines written."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_write_errors_total", Help: "Failed dials and writes; their data is dropped."}),
		connects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_connects_total", Help: "Connections (TCP) or sockets (UDP) opened."}),
		nonFinite:   prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_nonfinite_values_total", Help: "Values that were NaN (not sent) or ±Inf (sent as ±MaxFloat64)."}),
	}
	for _, col := range []prometheus.Collector{c.m.packets, c.m.bytes, c.m.writeErrors, c.m.connects, c.m.nonFinite} {
		if err := deps.Registerer.Register(col); err != nil {
			return nil, fmt.Errorf("cannot register statsdaemon self-metrics: %w", err)
		}
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendMetrics writes the snapshot's lines. It returns an error when some
// could not be written (they are dropped and counted).
func (c *Client) SendMetrics(ctx context.Context, s *metrics.Snapshot) error {
	if s.Len() == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.newWriter(ctx)
	f := formatter{tags: !c.cfg.DisableTags, nonFinite: c.m.nonFinite}
	var line []byte
	for i := range s.Counters {
		x := &s.Counters[i]
		line = f.appendLine(line[:0], x.Name, x.Value, "c", "", x.Tags)
		w.put(line, true)
	}
	for i := range s.Timers {
		t := &s.Timers[i]
		rate := ""
		if n := float64(len(t.Values)); t.SampledCount > n && n > 0 {
			rate = strconv.FormatFloat(n/t.SampledCount, 'g', -1, 64)
		}
		for j, v := range t.Values {
			line = f.appendLine(line[:0], t.Name, v, "ms", rate, t.Tags)
			w.put(line, j == 0)
		}
	}
	for i := range s.Gauges {
		g := &s.Gauges[i]
		line = line[:0]
		if g.Value < 0 {
			// "-5|g" is a delta to statsd: set 0 first, in the same datagram.
			line = f.appendLine(line, g.Name, 0, "g", "", g.Tags)
		}
		line = f.appendLine(line, g.Name, g.Value, "g", "", g.Tags)
		w.put(line, true)
	}
	for i := range s.Sets {
		st := &s.Sets[i]
		first := true
		for m := range st.Members {
			line = f.appendRaw(line[:0], st.Name, m, "s", st.Tags)
			w.put(line, first)
			first = false
		}
	}
	return c.finish(w, s.Len())
}

// SendEvent re-sends the event as a DogStatsD _e line.
func (c *Client) SendEvent(ctx context.Context, e *metrics.Event) error {
	line := appendEvent(nil, e, !c.cfg.DisableTags)
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.newWriter(ctx)
	w.put(line, true)
	return c.finish(w, 1)
}

// SendServiceCheck re-sends the check as a DogStatsD _sc line.
func (c *Client) SendServiceCheck(ctx context.Context, sc *metrics.ServiceCheck) error {
	line := appendServiceCheck(nil, sc, !c.cfg.DisableTags)
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.newWriter(ctx)
	w.put(line, true)
	return c.finish(w, 1)
}

// CheckHealth dials the address (bounded by ctx and dial_timeout) and hangs
// up. Over UDP that only proves the address resolves: UDP has no handshake.
func (c *Client) CheckHealth(ctx context.Context) error {
	return backends.DialCheck(ctx, c.network, c.cfg.Address, c.cfg.DialTimeout)
}

// Close closes the connection. Safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// writer packs lines into chunks (datagrams for UDP) and writes them. Used
// with c.mu held.
type writer struct {
	c        *Client
	ctx      context.Context
	buf      []byte
	series   int // series that start in buf
	failed   int // series dropped
	firstErr error
	deadline time.Time
}

func (c *Client) newWriter(ctx context.Context) *writer {
	w := &writer{c: c, ctx: ctx, buf: make([]byte, 0, c.chunk)}
	if c.cfg.WriteTimeout > 0 {
		w.deadline = time.Now().Add(c.cfg.WriteTimeout)
	}
	if d, ok := ctx.Deadline(); ok && (w.deadline.IsZero() || d.Before(w.deadline)) {
		w.deadline = d
	}
	if err := c.connectLocked(ctx); err != nil {
		w.firstErr = err
	}
	return w
}

// put adds one unit of lines (newline-separated, no trailing newline);
// startsSeries says whether it is the first unit of a series.
func (w *writer) put(unit []byte, startsSeries bool) {
	if len(unit) == 0 {
		return // a NaN value
	}
	if len(w.buf) > 0 && len(w.buf)+1+len(unit) > w.c.chunk {
		w.flush()
	}
	if len(w.buf) > 0 {
		w.buf = append(w.buf, '\n')
	}
	w.buf = append(w.buf, unit...)
	if startsSeries {
		w.series++
	}
}

// flush writes the current chunk, or drops it (counting its series) when
// there is no connection or the write fails.
func (w *writer) flush() {
	if len(w.buf) == 0 {
		return
	}
	c := w.c
	err := w.ctx.Err()
	if err == nil && c.conn == nil {
		err = w.firstErr
		if err == nil {
			err = errors.New("not connected")
		}
	}
	if err == nil {
		if c.network == "tcp" {
			w.buf = append(w.buf, '\n')
		}
		_ = c.conn.SetWriteDeadline(w.deadline)
		var n int
		n, err = c.conn.Write(w.buf)
		c.m.bytes.Add(float64(n))
		if err == nil {
			c.m.packets.Inc()
		} else {
			c.m.writeErrors.Inc()
			err = fmt.Errorf("cannot write to %q: %w", c.cfg.Address, err)
			if c.network == "tcp" {
				// The stream is broken (maybe mid-line): reconnect next time.
				_ = c.conn.Close()
				c.conn = nil
			}
		}
	}
	if err != nil {
		w.failed += w.series
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
	w.buf, w.series = w.buf[:0], 0
}

// finish writes the last chunk and accounts for the drops.
func (c *Client) finish(w *writer, total int) error {
	w.flush()
	if w.failed == 0 {
		return nil
	}
	if c.dropped != nil {
		c.dropped.Add(float64(w.failed))
	}
	err := fmt.Errorf("statsdaemon: %d of %d series not sent: %w", w.failed, total, w.firstErr)
	if ok, suppressed := c.logLim.Allow(); ok {
		c.log.WithError(err).WithField("suppressed_logs", suppressed).Warn("series dropped")
	}
	return err
}

// connectLocked dials when there is no connection.
func (c *Client) connectLocked(ctx context.Context) error {
	if c.conn != nil {
		return nil
	}
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, c.network, c.cfg.Address)
	if err != nil {
		c.m.writeErrors.Inc()
		return fmt.Errorf("cannot connect to %q: %w", c.cfg.Address, err)
	}
	c.m.connects.Inc()
	c.conn = conn
	return nil
}

// formatter writes statsd lines.
type formatter struct {
	tags      bool
	nonFinite prometheus.Counter
}

// appendLine appends <name>:<v>|<typ>[|@<rate>][|#tags]; a NaN value
// appends nothing.
func (f *formatter) appendLine(dst []byte, name string, v float64, typ, rate string, tags []string) []byte {
	switch {
	case math.IsNaN(v):
		f.countNonFinite()
		return dst
	case math.IsInf(v, 1):
		f.countNonFinite()
		v = math.MaxFloat64
	case math.IsInf(v, -1):
		f.countNonFinite()
		v = -math.MaxFloat64
	}
	if len(dst) > 0 {
		dst = append(dst, '\n')
	}
	dst = append(dst, name...)
	dst = append(dst, ':')
	dst = appendFloat(dst, v)
	dst = append(dst, '|')
	dst = append(dst, typ...)
	if rate != "" {
		dst = append(dst, "|@"...)
		dst = append(dst, rate...)
	}
	return f.appendTags(dst, tags)
}

func (f *formatter) countNonFinite() {
	if f.nonFinite != nil {
		f.nonFinite.Inc()
	}
}

// appendRaw appends <name>:<value>|<typ>[|#tags] with a literal value (a set member).
func (f *formatter) appendRaw(dst []byte, name, value, typ string, tags []string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	dst = append(dst, value...)
	dst = append(dst, '|')
	dst = append(dst, typ...)
	return f.appendTags(dst, tags)
}

func (f *formatter) appendTags(dst []byte, tags []string) []byte {
	if !f.tags || len(tags) == 0 {
		return dst
	}
	dst = append(dst, "|#"...)
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t...)
	}
	return dst
}

// appendFloat writes v in the shortest form that parses back exactly.
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(dst, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'e', -1, 64)
}

// escapeText writes newlines as the two characters \n (DogStatsD's form).
func escapeText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", `\n`)
}

// attr cleans an attribute value: no '|' nor line break.
func attr(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '|' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}

// appendEvent appends _e{<title len>,<text len>}:<title>|<text>|d:|h:|k:|p:|s:|t:|#tags.
func appendEvent(dst []byte, e *metrics.Event, withTags bool) []byte {
	title, text := escapeText(e.Title), escapeText(e.Text)
	dst = append(dst, "_e{"...)
	dst = strconv.AppendInt(dst, int64(len(title)), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(len(text)), 10)
	dst = append(dst, "}:"...)
	dst = append(dst, title...)
	dst = append(dst, '|')
	dst = append(dst, text...)
	if e.DateHappened != 0 {
		dst = append(dst, "|d:"...)
		dst = strconv.AppendInt(dst, e.DateHappened, 10)
	}
	host := e.Hostname
	if host == "" {
		host = e.Source
	}
	if host = attr(host); host != "" {
		dst = append(dst, "|h:"...)
		dst = append(dst, host...)
	}
	if k := attr(e.AggregationKey); k != "" {
		dst = append(dst, "|k:"...)
		dst = append(dst, k...)
	}
	dst = append(dst, "|p:"...)
	dst = append(dst, e.Priority.String()...)
	if s := attr(e.SourceTypeName); s != "" {
		dst = append(dst, "|s:"...)
		dst = append(dst, s...)
	}
	dst = append(dst, "|t:"...)
	dst = append(dst, e.AlertType.String()...)
	f := formatter{tags: withTags}
	return f.appendTags(dst, e.Tags)
}

// appendServiceCheck appends _sc|<name>|<status>|d:<ts>|h:<host>|#tags|m:<message>.
func appendServiceCheck(dst []byte, sc *metrics.ServiceCheck, withTags bool) []byte {
	dst = append(dst, "_sc|"...)
	dst = append(dst, attr(sc.Name)...)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(sc.Status), 10)
	if sc.Timestamp != 0 {
		dst = append(dst, "|d:"...)
		dst = strconv.AppendInt(dst, sc.Timestamp, 10)
	}
	host := sc.Hostname
	if host == "" {
		host = sc.Source
	}
	if host = attr(host); host != "" {
		dst = append(dst, "|h:"...)
		dst = append(dst, host...)
	}
	f := formatter{tags: withTags}
	dst = f.appendTags(dst, sc.Tags)
	if sc.Message != "" {
		dst = append(dst, "|m:"...)
		dst = append(dst, escapeText(sc.Message)...)
	}
	return dst
}
