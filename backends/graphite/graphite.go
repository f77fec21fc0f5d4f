// Package graphite sends aggregates to carbon's plaintext TCP listener,
// named exactly as gostatsd names them in its three modes (tags, basic,
// legacy). Events are discarded: Graphite has no events.
//
// Each flush is formatted into one payload and written on a persistent
// connection. A payload that cannot be written (carbon down, write timeout)
// stays queued, up to max_buffer_size bytes (oldest payload dropped and
// counted beyond), and is sent before the next flush's; after a partial
// write it is resent from the start of the line the write broke off in. A
// connection carbon has closed is noticed before writing and re-dialled. The
// connection is re-dialled at most once per flush, so a dead carbon costs one
// dial attempt per interval.
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

// Client is the Graphite backend. Safe for concurrent use.
type Client struct {
	cfg                           config.Graphite
	counterNS, timerNS, gaugeNS   string
	setNS, suffix                 string
	legacy, tags                  bool
	log                           logrus.FieldLogger
	dropped, droppedBytes, dialed prometheus.Counter
	droppedSeries, skippedLines   prometheus.Counter

	mu      sync.Mutex
	conn    net.Conn
	pending []pendingPayload // not yet written, oldest first
	pendLen int
}

var (
	_ backends.Backend       = (*Client)(nil)
	_ backends.HealthChecker = (*Client)(nil)
)

// New builds the backend from the [graphite] section.
func New(cfg config.Graphite, deps backends.Deps) (*Client, error) {
	c := &Client{cfg: cfg, log: deps.Log, droppedSeries: deps.DroppedSeries}
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
	c.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_dropped_flushes_total", Help: "Flush payloads dropped because the send buffer (graphite.max_buffer_size) was full."})
	c.droppedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_dropped_bytes_total", Help: "Bytes of dropped flush payloads."})
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

// SendMetrics formats the snapshot and writes it, after anything still
// pending from earlier flushes.
func (c *Client) SendMetrics(ctx context.Context, s *metrics.Snapshot) error {
	payload, lines, series := c.format(nil, s)
	if lines > 0 {
		c.skippedLines.Add(float64(lines))
		c.droppedSeries.Add(float64(series))
		c.log.WithFields(logrus.Fields{"lines": lines, "series": series}).Warn("graphite lines longer than carbon takes (16384 bytes) left out of this flush")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(payload) > 0 {
		c.pending = append(c.pending, pendingPayload{payload, s.Len()})
		c.pendLen += len(payload)
	}
	for c.pendLen > c.cfg.MaxBufferSize && len(c.pending) > 1 {
		old := c.pending[0]
		c.dropped.Inc()
		c.droppedBytes.Add(float64(len(old.b)))
		c.droppedSeries.Add(float64(old.series))
		c.log.WithField("bytes", len(old.b)).Warn("graphite send buffer full: dropping the oldest unsent flush")
		c.pendLen -= len(old.b)
		c.pending[0] = pendingPayload{} // not kept alive by the backing array
		c.pending = c.pending[1:]
	}
	return c.writePendingLocked(ctx)
}

func (c *Client) writePendingLocked(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
	}
	if c.conn != nil && peerClosed(c.conn) {
		// carbon closed it (a restart): a write would still succeed into
		// the socket and be lost.
		_ = c.conn.Close()
		c.conn = nil
	}
	if c.conn == nil {
		d := net.Dialer{Timeout: c.cfg.DialTimeout}
		conn, err := d.DialContext(ctx, "tcp", c.cfg.Address)
		if err != nil {
			return fmt.Errorf("cannot connect to carbon at %q (%d bytes kept for the next flush): %w", c.cfg.Address, c.pendLen, err)
		}
		c.dialed.Inc()
		c.conn = conn
	}
	deadline := time.Time{}
	if c.cfg.WriteTimeout > 0 {
		deadline = time.Now().Add(c.cfg.WriteTimeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	_ = c.conn.SetWriteDeadline(deadline)
	for len(c.pending) > 0 {
		p := c.pending[0].b
		n, err := c.conn.Write(p)
		if err != nil {
			// Keep the unwritten rest from the start of the line the write
			// broke off in: carbon drops the unfinished line with this
			// connection and gets it whole on the next one. Resending only
			// its tail would give carbon a line with a wrong name.
			done := bytes.LastIndexByte(p[:n], '\n') + 1
			c.pending[0].b = p[done:]
			c.pendLen -= done
			_ = c.conn.Close()
			c.conn = nil
			return fmt.Errorf("cannot write to carbon at %q (%d bytes kept for the next flush): %w", c.cfg.Address, c.pendLen, err)
		}
		c.pendLen -= len(p)
		c.pending[0] = pendingPayload{}
		c.pending = c.pending[1:]
	}
	c.pending = nil
	return nil
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

type pendingPayload struct {
	b      []byte
	series int
}

// CheckHealth dials carbon (bounded by ctx and dial_timeout) and hangs up.
func (c *Client) CheckHealth(ctx context.Context) error {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Address)
	if err != nil {
		return err
	}
	return conn.Close()
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
	dst, _, _ = c.format(dst, s)
	return dst
}

// format is Format that also returns how many lines it left out, and of how
// many series.
func (c *Client) format(dst []byte, s *metrics.Snapshot) (out []byte, skippedLines, skippedSeries int) {
	ts := strconv.AppendInt(nil, s.Time.Unix(), 10)
	cut := false // a line of the current series was left out
	endSeries := func() {
		if cut {
			skippedSeries++
			cut = false
		}
	}
	line := func(ns, name, sub string, tags []string, le string, src string, val []byte) {
		start := len(dst)
		if ns != "" {
			dst = append(dst, ns...)
			dst = append(dst, '.')
		}
		dst = append(dst, statsd.SanitizeName(name)...)
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
		dst = append(dst, ts...)
		if len(dst)-start > MaxLineLength {
			dst = dst[:start]
			skippedLines++
			cut = true
			return
		}
		dst = append(dst, '\n')
	}
	var v []byte
	for i := range s.Counters {
		endSeries()
		x := &s.Counters[i]
		if c.legacy {
			line("stats_counts", x.Name, "", nil, "", "", appendCount(v[:0], x.Value))
			line(c.counterNS, x.Name, "", nil, "", "", appendF6(v[:0], x.PerSecond))
			continue
		}
		line(c.counterNS, x.Name, "count", x.Tags, "", x.Source, appendCount(v[:0], x.Value))
		line(c.counterNS, x.Name, "rate", x.Tags, "", x.Source, appendF6(v[:0], x.PerSecond))
	}
	for i := range s.Timers {
		endSeries()
		t := &s.Timers[i]
		if t.Histogram != nil {
			for _, b := range t.Histogram {
				line(c.counterNS, t.Name, "histogram", t.Tags, metrics.FormatBound(b.Le), t.Source, strconv.AppendUint(v[:0], b.Count, 10))
			}
			continue
		}
		for _, st := range metrics.TimerStats {
			if s.Disabled.Has(st.Sub) {
				continue
			}
			if st.Sub == metrics.SubCount {
				line(c.timerNS, t.Name, st.Name, t.Tags, "", t.Source, appendCount(v[:0], t.Count))
			} else {
				line(c.timerNS, t.Name, st.Name, t.Tags, "", t.Source, appendF6(v[:0], st.Value(t)))
			}
		}
		for _, p := range t.Percentiles {
			line(c.timerNS, t.Name, p.Name, t.Tags, "", t.Source, appendF6(v[:0], p.Value))
		}
	}
	for i := range s.Gauges {
		endSeries()
		g := &s.Gauges[i]
		line(c.gaugeNS, g.Name, "", g.Tags, "", g.Source, appendF6(v[:0], g.Value))
	}
	for i := range s.Sets {
		endSeries()
		st := &s.Sets[i]
		line(c.setNS, st.Name, "", st.Tags, "", st.Source, strconv.AppendInt(v[:0], int64(len(st.Members)), 10))
	}
	endSeries()
	return dst, skippedLines, skippedSeries
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
