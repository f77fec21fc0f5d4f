// Package graphite sends aggregates to carbon's plaintext TCP listener,
// named exactly as gostatsd names them in its three modes (tags, basic,
// legacy). Events are discarded: Graphite has no events.
//
// A flush is formatted in chunks of about chunkSize bytes, each written on a
// persistent connection as soon as it is full, so a flush of any size costs
// a few chunk buffers, not one buffer of its whole size. What cannot be
// written (carbon down, write timeout) is queued, oldest first, up to
// max_buffer_size bytes (the oldest queued chunks dropped and counted
// beyond), and is sent ahead of the next flush's data; after a partial write
// the rest is resent from the start of the line the write broke off in. A
// connection carbon has closed is noticed before writing and re-dialled. The
// connection is dialled at most once per flush, so a dead carbon costs one
// dial attempt per interval; after a failure the rest of that flush goes to
// the queue.
package graphite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/metrics"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Name is the backend's name in the backends key.
const Name = "graphite"

// chunkSize is how many bytes of lines are formatted before they are written
// (or queued): a chunk ends with the first whole series at or past it.
const chunkSize = 128 << 10

// chunkCap is the capacity of a pooled chunk buffer: room for the series
// that crosses chunkSize without growing, for all but huge series.
const chunkCap = chunkSize + 16<<10

// Client is the Graphite backend. Safe for concurrent use.
type Client struct {
	cfg                           config.Graphite
	counterNS, timerNS, gaugeNS   string
	setNS, suffix                 string
	legacy, tags                  bool
	log                           logrus.FieldLogger
	dropped, droppedBytes, dialed prometheus.Counter
	droppedSeries, skippedLines   prometheus.Counter
	bufs                          sync.Pool // *[]byte of cap chunkCap

	mu          sync.Mutex
	conn        net.Conn
	pending     []chunk // not yet written, oldest first
	pendLen     int     // bytes in pending
	seq         uint64  // flushes sent
	lastDropped uint64  // seq of the last flush of which a chunk was dropped
}

// chunk is queued data: the unwritten lines buf[off:] of one flush.
type chunk struct {
	buf    *[]byte // from Client.bufs
	off    int
	flush  uint64 // the flush's seq
	series int    // series in buf[off:] (a cut chunk's is estimated by its bytes)
}

func (ch *chunk) data() []byte { return (*ch.buf)[ch.off:] }

var (
	_ backends.Backend       = (*Client)(nil)
	_ backends.HealthChecker = (*Client)(nil)
)

// New builds the backend from the [graphite] section.
func New(cfg config.Graphite, deps backends.Deps) (*Client, error) {
	c := &Client{cfg: cfg, log: deps.Log, droppedSeries: deps.DroppedSeries}
	c.bufs.New = func() any {
		b := make([]byte, 0, chunkCap)
		return &b
	}
	reg := deps.Registerer
	switch cfg.Mode {
	case "legacy":
		c.legacy = true
		// gostatsd ignores global_prefix and the type prefixes in legacy mode.
		c.counterNS, c.timerNS, c.gaugeNS, c.setNS = "stats", "stats.timers", "stats.gauges", "stats.sets"
	case "basic", "tags":
		c.tags = cfg.Mode == "tags"
		c.counterNS = combine(cfg.GlobalPrefix, cfg.PrefixCounter)
		c.timerNS = combine(cfg.GlobalPrefix, cfg.PrefixTimer)
		c.gaugeNS = combine(cfg.GlobalPrefix, cfg.PrefixGauge)
		c.setNS = combine(cfg.GlobalPrefix, cfg.PrefixSet)
	default:
		return nil, fmt.Errorf("graphite mode %q: want tags, basic or legacy", cfg.Mode)
	}
	c.suffix = statsd.SanitizeName(strings.Trim(cfg.GlobalSuffix, "."))
	c.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_dropped_flushes_total", Help: "Flushes of which unsent data was dropped because the send buffer (graphite.max_buffer_size) was full."})
	c.droppedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_dropped_bytes_total", Help: "Bytes of unsent data dropped because the send buffer (graphite.max_buffer_size) was full."})
	c.dialed = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_connects_total", Help: "Connections made to carbon."})
	c.skippedLines = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_skipped_lines_total", Help: "Lines not sent because they are longer than carbon takes (16384 bytes): carbon would drop the connection."})
	reg.MustRegister(c.dropped, c.droppedBytes, c.dialed, c.skippedLines)
	return c, nil
}

func combine(prefix, suffix string) string {
	prefix, suffix = strings.Trim(prefix, "."), strings.Trim(suffix, ".")
	switch {
	case prefix != "" && suffix != "":
		return statsd.SanitizeName(prefix + "." + suffix)
	case prefix != "":
		return statsd.SanitizeName(prefix)
	}
	return statsd.SanitizeName(suffix)
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendEvent discards events.
func (c *Client) SendEvent(context.Context, *metrics.Event) error { return nil }

// send is the state of one SendMetrics call.
type send struct {
	ctx     context.Context
	seq     uint64
	checked bool  // the connection was checked (peerClosed) and its deadline set
	err     error // the first failure; everything after it is queued
	dial    bool  // err is a failed dial
	// dropped by the buffer bound during this call, for one log line
	droppedBytes, droppedChunks int
}

// SendMetrics writes what is queued from earlier flushes, then formats the
// snapshot and writes it chunk by chunk. What cannot be written is queued.
func (c *Client) SendMetrics(ctx context.Context, s *metrics.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	st := &send{ctx: ctx, seq: c.seq}
	c.writePendingLocked(st)

	buf := c.getBuf()
	rest, n, lines, series := c.format((*buf)[:0], s, func(full []byte, n int) []byte {
		*buf = full
		buf = c.putLocked(st, buf, n)
		return (*buf)[:0]
	})
	*buf = rest
	if len(rest) > 0 {
		buf = c.putLocked(st, buf, n)
	}
	c.releaseBuf(buf)

	if lines > 0 {
		c.skippedLines.Add(float64(lines))
		c.droppedSeries.Add(float64(series))
		c.log.WithFields(logrus.Fields{"lines": lines, "series": series}).Warn("graphite lines longer than carbon takes (16384 bytes) left out of this flush")
	}
	if st.droppedChunks > 0 {
		c.log.WithFields(logrus.Fields{"bytes": st.droppedBytes, "max_buffer_size": c.cfg.MaxBufferSize}).
			Warn("graphite send buffer full: dropped the oldest unsent data")
	}
	switch {
	case st.err == nil:
		return nil
	case st.dial:
		return fmt.Errorf("cannot connect to carbon at %q (%d bytes kept for the next flush): %w", c.cfg.Address, c.pendLen, st.err)
	}
	return fmt.Errorf("cannot write to carbon at %q (%d bytes kept for the next flush): %w", c.cfg.Address, c.pendLen, st.err)
}

func (c *Client) getBuf() *[]byte { return c.bufs.Get().(*[]byte) }

// releaseBuf returns a chunk buffer to the pool, unless a huge series grew it.
func (c *Client) releaseBuf(b *[]byte) {
	if cap(*b) <= 2*chunkCap {
		*b = (*b)[:0]
		c.bufs.Put(b)
	}
}

// putLocked writes a formatted chunk holding n series, or queues it after a
// failure. It returns the buffer for the next chunk: buf itself when it was
// written whole.
func (c *Client) putLocked(st *send, buf *[]byte, n int) *[]byte {
	b := *buf
	if st.err == nil {
		w := c.writeLocked(st, b)
		if w == len(b) {
			return buf
		}
		// Keep the rest from the start of the line the write broke off in:
		// carbon drops the unfinished line with this connection and gets it
		// whole on the next one. Resending only its tail would give carbon a
		// line with a wrong name.
		done := bytes.LastIndexByte(b[:w], '\n') + 1
		c.enqueueLocked(st, chunk{buf: buf, off: done, flush: st.seq, series: restSeries(n, done, len(b))})
		return c.getBuf()
	}
	c.enqueueLocked(st, chunk{buf: buf, flush: st.seq, series: n})
	return c.getBuf()
}

// restSeries estimates how many of a chunk's n series are not yet written
// when done of its size bytes were: by their share of the bytes, rounded up.
func restSeries(n, done, size int) int {
	if n <= 0 || size == 0 {
		return max(n, 0)
	}
	return (n*(size-done) + size - 1) / size
}

// writePendingLocked writes the queue, oldest first, until it is empty or a
// write fails.
func (c *Client) writePendingLocked(st *send) {
	for len(c.pending) > 0 && st.err == nil {
		ch := &c.pending[0]
		b := ch.data()
		w := c.writeLocked(st, b)
		if w < len(b) {
			done := bytes.LastIndexByte(b[:w], '\n') + 1
			ch.series = restSeries(ch.series, done, len(b))
			ch.off += done
			c.pendLen -= done
			return
		}
		c.pendLen -= len(b)
		c.releaseBuf(ch.buf)
		c.pending[0] = chunk{} // not kept alive by the backing array
		c.pending = c.pending[1:]
	}
	if len(c.pending) == 0 {
		c.pending = nil
	}
}

// enqueueLocked queues ch and drops the oldest queued chunks while the queue
// holds more than max_buffer_size bytes.
func (c *Client) enqueueLocked(st *send, ch chunk) {
	c.pending = append(c.pending, ch)
	c.pendLen += len(ch.data())
	for c.pendLen > c.cfg.MaxBufferSize && len(c.pending) > 0 {
		old := &c.pending[0]
		n := len(old.data())
		if old.flush != c.lastDropped {
			c.lastDropped = old.flush
			c.dropped.Inc()
		}
		c.droppedBytes.Add(float64(n))
		c.droppedSeries.Add(float64(old.series))
		st.droppedBytes += n
		st.droppedChunks++
		c.pendLen -= n
		c.releaseBuf(old.buf)
		c.pending[0] = chunk{}
		c.pending = c.pending[1:]
	}
}

// writeLocked writes b on the connection, dialling it first if needed, and
// returns how much of b was written. On a failure it records it in st and
// closes the connection.
func (c *Client) writeLocked(st *send, b []byte) int {
	if st.err != nil {
		return 0
	}
	if !st.checked {
		st.checked = true
		if c.conn != nil && peerClosed(c.conn) {
			// carbon closed it (a restart): a write would still succeed
			// into the socket and be lost.
			_ = c.conn.Close()
			c.conn = nil
		}
		if c.conn == nil {
			d := net.Dialer{Timeout: c.cfg.DialTimeout}
			conn, err := d.DialContext(st.ctx, "tcp", c.cfg.Address)
			if err != nil {
				st.err, st.dial = err, true
				return 0
			}
			c.dialed.Inc()
			c.conn = conn
		}
		deadline := time.Time{}
		if c.cfg.WriteTimeout > 0 {
			deadline = time.Now().Add(c.cfg.WriteTimeout)
		}
		if d, ok := st.ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
		_ = c.conn.SetWriteDeadline(deadline)
	}
	n, err := c.conn.Write(b)
	if err != nil {
		st.err = err
		_ = c.conn.Close()
		c.conn = nil
	}
	return n
}

// peerClosed reports whether the other end closed conn. carbon never writes
// on its plaintext port, so a read that does not time out at once means it
// has hung up (EOF) or reset the connection. Costs up to a millisecond.
func peerClosed(conn net.Conn) bool {
	if err := conn.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return true
	}
	var b [1]byte
	_, err := conn.Read(b[:])
	_ = conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// CheckHealth dials carbon (bounded by ctx and dial_timeout) and hangs up.
func (c *Client) CheckHealth(ctx context.Context) error {
	return backends.DialCheck(ctx, "tcp", c.cfg.Address, c.cfg.DialTimeout)
}

// Close closes the connection.
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

// MaxLineLength is the longest line (without its newline) carbon's
// plaintext receiver takes; on a longer one it drops the connection, and with
// it the rest of what was sent.
const MaxLineLength = 16384

// Format appends the snapshot's Graphite lines to dst. Invalid UTF-8 in tags
// and sources is replaced by U+FFFD (carbon drops the connection on it) and
// lines longer than MaxLineLength are left out.
func (c *Client) Format(dst []byte, s *metrics.Snapshot) []byte {
	f := formatter{c: c, dst: dst}
	f.run(s)
	return f.dst
}

// format appends the snapshot's lines to dst. Whenever dst holds chunkSize
// bytes or more at the end of a series, it hands dst and the number of
// series in it to emit and goes on with the slice emit returns. It returns
// what is left in dst and of how many series, and how many lines it left
// out, of how many series.
func (c *Client) format(dst []byte, s *metrics.Snapshot, emit func(dst []byte, series int) []byte) (out []byte, series, skippedLines, skippedSeries int) {
	f := formatter{c: c, dst: dst, emit: emit}
	f.run(s)
	return f.dst, f.series, f.skippedLines, f.skippedSeries
}

// formatter is the state of one format call.
type formatter struct {
	c    *Client
	dst  []byte
	emit func([]byte, int) []byte
	ts   []byte // the flush's timestamp, formatted
	v    []byte // scratch for a value

	name  string // the current series' sanitized name
	start int    // len(dst) at the start of the current series
	cut   bool   // a line of the current series was left out

	series                      int // series with lines in dst
	skippedLines, skippedSeries int
}

func (f *formatter) run(s *metrics.Snapshot) {
	var tsb [20]byte
	f.ts = strconv.AppendInt(tsb[:0], s.Time.Unix(), 10)
	var vb [32]byte
	f.v = vb[:0]
	c := f.c
	for i := range s.Counters {
		x := &s.Counters[i]
		f.begin(x.Name)
		if c.legacy {
			f.line("stats_counts", "", nil, "", "", appendCount(f.v[:0], x.Value))
			f.line(c.counterNS, "", nil, "", "", appendF6(f.v[:0], x.PerSecond))
		} else {
			f.line(c.counterNS, "count", x.Tags, "", x.Source, appendCount(f.v[:0], x.Value))
			f.line(c.counterNS, "rate", x.Tags, "", x.Source, appendF6(f.v[:0], x.PerSecond))
		}
		f.end()
	}
	for i := range s.Timers {
		t := &s.Timers[i]
		f.begin(t.Name)
		if t.Histogram != nil {
			for _, b := range t.Histogram {
				f.line(c.counterNS, "histogram", t.Tags, metrics.FormatBound(b.Le), t.Source, strconv.AppendUint(f.v[:0], b.Count, 10))
			}
			f.end()
			continue
		}
		for _, st := range metrics.TimerStats {
			if s.Disabled.Has(st.Sub) {
				continue
			}
			if st.Sub == metrics.SubCount {
				f.line(c.timerNS, st.Name, t.Tags, "", t.Source, appendCount(f.v[:0], t.Count))
			} else {
				f.line(c.timerNS, st.Name, t.Tags, "", t.Source, appendF6(f.v[:0], st.Value(t)))
			}
		}
		for _, p := range t.Percentiles {
			f.line(c.timerNS, p.Name, t.Tags, "", t.Source, appendF6(f.v[:0], p.Value))
		}
		f.end()
	}
	for i := range s.Gauges {
		g := &s.Gauges[i]
		f.begin(g.Name)
		f.line(c.gaugeNS, "", g.Tags, "", g.Source, appendF6(f.v[:0], g.Value))
		f.end()
	}
	for i := range s.Sets {
		st := &s.Sets[i]
		f.begin(st.Name)
		f.line(c.setNS, "", st.Tags, "", st.Source, strconv.AppendInt(f.v[:0], int64(len(st.Members)), 10))
		f.end()
	}
}

func (f *formatter) begin(name string) {
	f.name = statsd.SanitizeName(name)
	f.start = len(f.dst)
	f.cut = false
}

// end closes the current series: counts it, and hands a full chunk to emit.
func (f *formatter) end() {
	if f.cut {
		f.skippedSeries++
	}
	if len(f.dst) > f.start {
		f.series++
	}
	if f.emit != nil && len(f.dst) >= chunkSize {
		f.dst = f.emit(f.dst, f.series)
		f.series = 0
	}
}

// line appends one line of the current series, or leaves it out when it is
// longer than carbon takes.
func (f *formatter) line(ns, sub string, tags []string, le string, src string, val []byte) {
	c := f.c
	dst := f.dst
	start := len(dst)
	if ns != "" {
		dst = append(dst, ns...)
		dst = append(dst, '.')
	}
	dst = append(dst, f.name...)
	if sub != "" {
		dst = append(dst, '.')
		dst = append(dst, sub...)
	}
	if c.suffix != "" {
		dst = append(dst, '.')
		dst = append(dst, c.suffix...)
	}
	if c.tags {
		haveHost := false
		for _, t := range tags {
			dst = appendTag(dst, t)
			if strings.HasPrefix(t, "host:") {
				haveHost = true
			}
		}
		if le != "" {
			dst = append(dst, ";le="...)
			dst = append(dst, le...)
		}
		if !haveHost && src != "" {
			dst = append(dst, ";host="...)
			dst = appendUTF8(dst, src)
		}
	}
	dst = append(dst, ' ')
	dst = append(dst, val...)
	dst = append(dst, ' ')
	dst = append(dst, f.ts...)
	if len(dst)-start > MaxLineLength {
		f.dst = dst[:start]
		f.skippedLines++
		f.cut = true
		return
	}
	f.dst = append(dst, '\n')
}

// appendTag writes ;k=v for k:v (first ':' only) and ;unnamed=x for a bare tag.
func appendTag(dst []byte, t string) []byte {
	dst = append(dst, ';')
	if i := strings.IndexByte(t, ':'); i >= 0 {
		dst = appendUTF8(dst, t[:i])
		dst = append(dst, '=')
		return appendUTF8(dst, t[i+1:])
	}
	dst = append(dst, "unnamed="...)
	return appendUTF8(dst, t)
}

// appendUTF8 appends s with invalid UTF-8 replaced by U+FFFD: carbon decodes
// every line as UTF-8 and drops the connection on a line it cannot decode.
func appendUTF8(dst []byte, s string) []byte {
	if utf8.ValidString(s) {
		return append(dst, s...)
	}
	return append(dst, strings.ToValidUTF8(s, "\uFFFD")...)
}

// appendF6 formats like gostatsd's %f.
func appendF6(dst []byte, v float64) []byte { return strconv.AppendFloat(dst, v, 'f', 6, 64) }

// appendCount writes a count as an integer (as gostatsd's %d) when it is
// one, and in shortest decimal form when garner's float counters make it
// fractional (0.4|c twice is 0.8, not 0).
func appendCount(dst []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}
