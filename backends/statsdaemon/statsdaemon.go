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
// stream) at a time, on a backends/lineconn.Conn, so memory is bounded
// whatever its size. What cannot be written (no connection, write error,
// deadline) is dropped and its series counted in
// garner_backend_dropped_series_total: nothing is kept for the next flush.
// A broken TCP connection is re-dialled at most once per flush, and one the
// server has closed is noticed before writing.
package statsdaemon

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/lineconn"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "statsdaemon"

// MaxUDPPacketSize is the largest datagram sent: a 1500-byte Ethernet MTU
// minus IP and UDP headers with room to spare, as gostatsd.
const MaxUDPPacketSize = 1432

// tcpChunk is how much TCP stream is formatted before it is written.
const tcpChunk = 64 << 10

// Options are the [statsdaemon] section: the statsd server the backend
// repeats aggregates to. Keys and defaults as gostatsd; each field is named
// after its key (tcp_transport → TCPTransport).
type Options struct {
	// Address is the statsd server, host:port. No default: required.
	Address string
	// TCPTransport sends newline-terminated lines over TCP instead of UDP
	// datagrams. Default false.
	TCPTransport bool
	// DisableTags leaves out |#tags. Default false.
	DisableTags bool
	// DialTimeout bounds one connect (and the health check). Default 5s;
	// 0 = only the flush's deadline.
	DialTimeout time.Duration
	// WriteTimeout bounds one flush's writes. Default 30s; 0 = only the
	// flush's deadline (backend-timeout).
	WriteTimeout time.Duration
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	conn := lineconn.DefaultOptions()
	return Options{DialTimeout: conn.DialTimeout, WriteTimeout: conn.WriteTimeout}
}

// Client is the statsdaemon backend. Safe for concurrent use; sends are
// serialised on its one connection.
type Client struct {
	opts  Options
	chunk int
	conn  *lineconn.Conn
	m     clientMetrics
	// pastGauges counts the gauges of past intervals left out (statsd
	// has no time to give them): garner_backend_dropped_series_total.
	pastGauges prometheus.Counter

	mu  sync.Mutex // serialises sends; guards buf
	buf []byte     // the chunk being packed
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
func New(opts Options, deps backends.Deps) (*Client, error) {
	if _, _, err := net.SplitHostPort(opts.Address); err != nil {
		return nil, fmt.Errorf("statsdaemon address %q: %w", opts.Address, err)
	}
	c := &Client{opts: opts, chunk: MaxUDPPacketSize, pastGauges: deps.DroppedSeries}
	if c.pastGauges == nil {
		c.pastGauges = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
	}
	network := "udp"
	if opts.TCPTransport {
		network, c.chunk = "tcp", tcpChunk
	}
	c.m = clientMetrics{
		packets:     prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_writes_total", Help: "Datagrams (UDP) or stream chunks (TCP) written."}),
		bytes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_sent_bytes_total", Help: "Bytes of statsd lines written."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_write_errors_total", Help: "Failed dials and writes; their data is dropped."}),
		connects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_statsdaemon_connects_total", Help: "Connections (TCP) or sockets (UDP) opened."}),
	}
	if err := deps.Register(Name, c.m.packets, c.m.bytes, c.m.writeErrors, c.m.connects); err != nil {
		return nil, err
	}
	var err error
	if c.m.nonFinite, err = deps.NonFinite(Name, "Values that were NaN (not sent) or ±Inf (sent as ±MaxFloat64)."); err != nil {
		return nil, err
	}
	// Nothing is kept for the next flush (MaxBufferSize 0): what cannot be
	// written is dropped and counted.
	c.conn, err = lineconn.New(lineconn.Options{
		Network: network, Address: opts.Address, DialTimeout: opts.DialTimeout, WriteTimeout: opts.WriteTimeout,
	}, lineconn.Counters{
		Connects: c.m.connects, Writes: c.m.packets, WrittenBytes: c.m.bytes, Errors: c.m.writeErrors,
		DroppedSeries: deps.DroppedSeries,
	}, deps.Log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendMetrics writes the snapshot's lines. It returns an error when some
// could not be written (they are dropped and counted).
func (c *Client) SendMetrics(ctx context.Context, s *model.Snapshot) error {
	if s.Len() == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.newWriter(ctx)
	f := formatter{tags: !c.opts.DisableTags, nonFinite: c.m.nonFinite}
	var line []byte
	for i := range s.Counters {
		x := &s.Counters[i]
		line = f.appendLine(line[:0], x.Name, x.Value, "c", "", x.Tags)
		w.put(line, true)
	}
	for i := range s.Timers {
		t := &s.Timers[i]
		vals := t.Values
		if t.Exp != nil && len(vals) == 0 {
			// timer-aggregation = histogram: the values the buckets stand
			// for, each within its bucket's relative width of a real one
			vals = t.Exp.AppendValues(nil)
		}
		rate := ""
		if n := float64(len(vals)); t.SampledCount > n && n > 0 {
			rate = strconv.FormatFloat(n/t.SampledCount, 'g', -1, 64)
		}
		for j, v := range vals {
			line = f.appendLine(line[:0], t.Name, v, "ms", rate, t.Tags)
			w.put(line, j == 0)
		}
	}
	for i := range s.Gauges {
		g := &s.Gauges[i]
		if g.At != 0 {
			// A past interval's value (timestamps = "honor"): sent now,
			// it would replace the current one downstream. Counters of
			// past intervals are sent above: their increments add up.
			c.pastGauges.Inc()
			continue
		}
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
		put := func(m string) {
			line = f.appendRaw(line[:0], st.Name, m, "s", st.Tags)
			w.put(line, first)
			first = false
		}
		for m := range st.Members {
			put(m)
		}
		if st.Sketch != nil {
			// set-aggregation = hll: strings standing for the members
			// (pkg/hll StandIns), as many as the estimate
			st.Sketch.StandIns(put)
		}
	}
	return c.finish(w, s.Len())
}

// SendEvent re-sends the event as a DogStatsD _e line.
func (c *Client) SendEvent(ctx context.Context, e *model.Event) error {
	return c.sendOne(ctx, appendEvent(nil, e, !c.opts.DisableTags))
}

// SendServiceCheck re-sends the check as a DogStatsD _sc line.
func (c *Client) SendServiceCheck(ctx context.Context, sc *model.ServiceCheck) error {
	return c.sendOne(ctx, appendServiceCheck(nil, sc, !c.opts.DisableTags))
}

func (c *Client) sendOne(ctx context.Context, line []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.newWriter(ctx)
	w.put(line, true)
	return c.finish(w, 1)
}

// CheckHealth dials the address (bounded by ctx and dial_timeout) and hangs
// up. Over UDP that only proves the address resolves: UDP has no handshake.
func (c *Client) CheckHealth(ctx context.Context) error { return c.conn.CheckHealth(ctx) }

// Close closes the connection. Safe to call more than once.
func (c *Client) Close() error { return c.conn.Close() }

// writer packs lines into chunks (datagrams for UDP) and sends them on one
// batch of the connection. Used with c.mu held.
type writer struct {
	c      *Client
	b      *lineconn.Batch
	buf    []byte
	series int // series that start in buf
}

// newWriter starts a batch on the connection. Called with c.mu held.
func (c *Client) newWriter(ctx context.Context) *writer {
	if c.buf == nil {
		c.buf = make([]byte, 0, c.chunk+1)
	}
	return &writer{c: c, b: c.conn.Begin(ctx), buf: c.buf[:0]}
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

// flush sends the current chunk; the connection drops (and counts) it when
// it cannot be written.
func (w *writer) flush() {
	if len(w.buf) == 0 {
		return
	}
	if w.c.opts.TCPTransport {
		w.buf = append(w.buf, '\n')
	}
	w.b.Send(w.buf, w.series)
	w.buf, w.series = w.buf[:0], 0
}

// finish sends the last chunk and ends the batch.
func (c *Client) finish(w *writer, total int) error {
	w.flush()
	if cap(w.buf) <= 2*(c.chunk+1) {
		c.buf = w.buf[:0] // unless a huge line grew it
	}
	r := w.b.End()
	if r.Err == nil {
		return nil
	}
	verb := "write to"
	if r.Dial {
		verb = "connect to"
	}
	return fmt.Errorf("statsdaemon: %d of %d series not sent: cannot %s %q: %w", r.DroppedSeries, total, verb, c.opts.Address, r.Err)
}

// formatter writes statsd lines.
type formatter struct {
	tags      bool
	nonFinite prometheus.Counter
}

// appendLine appends <name>:<v>|<typ>[|@<rate>][|#tags]; a NaN value
// appends nothing.
func (f *formatter) appendLine(dst []byte, name string, v float64, typ, rate string, tags []string) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		f.countNonFinite()
		if math.IsNaN(v) {
			return dst
		}
		v = math.Copysign(math.MaxFloat64, v)
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

// appendHost appends |h:<hostname>, or |h:<source> without a hostname, or
// nothing without either.
func appendHost(dst []byte, hostname, source string) []byte {
	if hostname == "" {
		hostname = source
	}
	if host := attr(hostname); host != "" {
		dst = append(dst, "|h:"...)
		dst = append(dst, host...)
	}
	return dst
}

// appendEvent appends _e{<title len>,<text len>}:<title>|<text>|d:|h:|k:|p:|s:|t:|#tags.
func appendEvent(dst []byte, e *model.Event, withTags bool) []byte {
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
	dst = appendHost(dst, e.Hostname, e.Source)
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
func appendServiceCheck(dst []byte, sc *model.ServiceCheck, withTags bool) []byte {
	dst = append(dst, "_sc|"...)
	dst = append(dst, attr(sc.Name)...)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(sc.Status), 10)
	if sc.Timestamp != 0 {
		dst = append(dst, "|d:"...)
		dst = strconv.AppendInt(dst, sc.Timestamp, 10)
	}
	dst = appendHost(dst, sc.Hostname, sc.Source)
	f := formatter{tags: withTags}
	dst = f.appendTags(dst, sc.Tags)
	if sc.Message != "" {
		dst = append(dst, "|m:"...)
		dst = append(dst, escapeText(sc.Message)...)
	}
	return dst
}
