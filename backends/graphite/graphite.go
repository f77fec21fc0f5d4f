// Package graphite sends aggregates to carbon's plaintext TCP listener,
// named exactly as gostatsd names them in its three modes (tags, basic,
// legacy). Events are discarded: Graphite has no events.
//
// Each flush is formatted into one payload and written on a persistent
// connection. A payload that cannot be written (carbon down, write timeout)
// stays queued, up to max_buffer_size bytes (oldest payload dropped and
// counted beyond), and is sent before the next flush's. The connection is
// re-dialled at most once per flush, so a dead carbon costs one dial attempt
// per interval.
package graphite

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
	droppedSeries                 prometheus.Counter

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
	reg.MustRegister(c.dropped, c.droppedBytes, c.dialed)
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
	payload := c.Format(nil, s)
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
		c.pending = c.pending[1:]
	}
	return c.writePendingLocked(ctx)
}

func (c *Client) writePendingLocked(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
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
			// Keep the unwritten rest; carbon may see a partial line, which
			// it drops, never a wrong value.
			c.pending[0].b = p[n:]
			c.pendLen -= n
			_ = c.conn.Close()
			c.conn = nil
			return fmt.Errorf("cannot write to carbon at %q (%d bytes kept for the next flush): %w", c.cfg.Address, c.pendLen, err)
		}
		c.pendLen -= len(p)
		c.pending = c.pending[1:]
	}
	c.pending = nil
	return nil
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

// Format appends the snapshot's Graphite lines to dst.
func (c *Client) Format(dst []byte, s *metrics.Snapshot) []byte {
	ts := strconv.AppendInt(nil, s.Time.Unix(), 10)
	line := func(ns, name, sub string, tags []string, le string, src string, val []byte) {
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
				dst = append(dst, src...)
			}
		}
		dst = append(dst, ' ')
		dst = append(dst, val...)
		dst = append(dst, ' ')
		dst = append(dst, ts...)
		dst = append(dst, '\n')
	}
	var v []byte
	for i := range s.Counters {
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
		g := &s.Gauges[i]
		line(c.gaugeNS, g.Name, "", g.Tags, "", g.Source, appendF6(v[:0], g.Value))
	}
	for i := range s.Sets {
		st := &s.Sets[i]
		line(c.setNS, st.Name, "", st.Tags, "", st.Source, strconv.AppendInt(v[:0], int64(len(st.Members)), 10))
	}
	return dst
}

// appendTag writes ;k=v for k:v (first ':' only) and ;unnamed=x for a bare tag.
func appendTag(dst []byte, t string) []byte {
	dst = append(dst, ';')
	if i := strings.IndexByte(t, ':'); i >= 0 {
		dst = append(dst, t[:i]...)
		dst = append(dst, '=')
		return append(dst, t[i+1:]...)
	}
	dst = append(dst, "unnamed="...)
	return append(dst, t...)
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
