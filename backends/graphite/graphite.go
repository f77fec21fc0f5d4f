// Package graphite sends aggregates to carbon's plaintext TCP listener,
// named exactly as gostatsd names them in its three modes (tags, basic,
// legacy). Events are discarded: Graphite has no events.
//
// naming.go builds the lines (names, tags, values); the connection is a
// backends/lineconn.Conn: a flush is formatted in chunks of about
// lineconn.ChunkSize bytes, each written on a persistent connection as soon
// as it is full, so a flush of any size costs a few chunk buffers. What
// cannot be written (carbon down, write timeout) is queued, oldest first, up
// to max_buffer_size bytes (the oldest queued chunks dropped and counted
// beyond), and is sent ahead of the next flush's data; after a partial write
// the rest is resent from the start of the line the write broke off in. A
// connection carbon has closed is noticed before writing and re-dialled.
// The connection is dialled at most once per flush, so a dead carbon costs
// one dial attempt per interval; after a failure the rest of that flush goes
// to the queue.
package graphite

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/lineconn"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "graphite"

// Options are the [graphite] section; keys and defaults as gostatsd, plus
// garner's max_buffer_size and write_buffer. Each field is named after its
// key (global_prefix → GlobalPrefix).
type Options struct {
	// Address is carbon's plaintext listener, host:port. Default
	// "localhost:2003".
	Address string
	// Mode is the naming: "tags" (;k=v tags), "basic" (no tags) or
	// "legacy" (stats_counts.<name>). Default "tags".
	Mode string
	// GlobalPrefix is the first name component. Default "stats"; "" = none.
	GlobalPrefix string
	// PrefixCounter, PrefixTimer, PrefixGauge and PrefixSet are the type
	// name components. Defaults "counters", "timers", "gauges", "sets"; "" =
	// none.
	PrefixCounter, PrefixTimer, PrefixGauge, PrefixSet string
	// GlobalSuffix is the last name component, before tags. Default "" = none.
	GlobalSuffix string
	// DialTimeout bounds one connect to carbon. Default 5s; 0 = only the
	// flush's deadline.
	DialTimeout time.Duration
	// WriteTimeout bounds one flush's writes. Default 30s; 0 = only the
	// flush's deadline (backend-timeout).
	WriteTimeout time.Duration
	// MaxBufferSize is how many bytes of unsent lines are kept while carbon
	// is unreachable or slow; beyond it the oldest are dropped and counted.
	// Default 64 MiB; 0 = nothing is kept.
	MaxBufferSize int
	// WriteBuffer is the socket send buffer (SO_SNDBUF) asked for the
	// connection to carbon, in bytes. Default 0 = the kernel's (autotuned).
	WriteBuffer int
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	conn := lineconn.DefaultOptions()
	return Options{
		Address: "localhost:2003", Mode: "tags",
		GlobalPrefix: "stats", PrefixCounter: "counters", PrefixTimer: "timers", PrefixGauge: "gauges", PrefixSet: "sets",
		DialTimeout: conn.DialTimeout, WriteTimeout: conn.WriteTimeout,
		MaxBufferSize: 64 << 20, WriteBuffer: conn.WriteBuffer,
	}
}

// chunkCap is the capacity of the chunk buffer: room for the series that
// crosses lineconn.ChunkSize without growing, for all but huge series.
const chunkCap = lineconn.ChunkSize + 16<<10

// Client is the Graphite backend. Safe for concurrent use.
type Client struct {
	backends.NoEvents // carbon has no events

	opts          Options
	naming        naming
	log           logrus.FieldLogger
	conn          *lineconn.Conn
	droppedSeries prometheus.Counter
	skippedLines  prometheus.Counter

	mu  sync.Mutex // serialises SendMetrics; guards buf
	buf []byte     // a chunk being formatted
}

var (
	_ backends.Backend       = (*Client)(nil)
	_ backends.HealthChecker = (*Client)(nil)
)

// New builds the backend from the [graphite] section. It does not connect:
// the first flush does.
func New(opts Options, deps backends.Deps) (*Client, error) {
	n, err := newNaming(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, naming: n, log: deps.Log, droppedSeries: deps.DroppedSeries}
	ctr := lineconn.Counters{
		Connects:       prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_connects_total", Help: "Connections made to carbon."}),
		DroppedBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_dropped_flushes_total", Help: "Flushes of which unsent data was dropped: the send buffer (graphite.max_buffer_size) was full, or garner stopped with it unsent."}),
		DroppedBytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_dropped_bytes_total", Help: "Bytes of unsent data dropped: the send buffer (graphite.max_buffer_size) was full, or garner stopped with it unsent."}),
		DroppedSeries:  deps.DroppedSeries,
	}
	c.skippedLines = prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_graphite_skipped_lines_total", Help: "Lines not sent because they are longer than carbon takes (16384 bytes): carbon would drop the connection."})
	if err := deps.Register(Name, ctr.DroppedBatches, ctr.DroppedBytes, ctr.Connects, c.skippedLines); err != nil {
		return nil, err
	}
	c.conn, err = lineconn.New(lineconn.Options{
		Network: "tcp", Address: opts.Address, DialTimeout: opts.DialTimeout, WriteTimeout: opts.WriteTimeout,
		MaxBufferSize: opts.MaxBufferSize, WriteBuffer: opts.WriteBuffer,
	}, ctr, deps.Log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendMetrics writes what is queued from earlier flushes, then formats the
// snapshot and writes it chunk by chunk. What cannot be written is queued.
func (c *Client) SendMetrics(ctx context.Context, s *model.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.conn.Begin(ctx)
	if c.buf == nil {
		c.buf = make([]byte, 0, chunkCap)
	}
	rest, n, lines, series := c.format(c.buf[:0], s, func(full []byte, n int) []byte {
		b.Send(full, n)
		return full[:0]
	})
	b.Send(rest, n)
	c.keepBuf(rest)
	r := b.End()

	if lines > 0 {
		c.skippedLines.Add(float64(lines))
		c.droppedSeries.Add(float64(series))
		c.log.WithFields(logrus.Fields{"lines": lines, "series": series}).Warn("graphite lines longer than carbon takes (16384 bytes) left out of this flush")
	}
	switch {
	case r.Err == nil:
		return nil
	case r.Dial:
		return fmt.Errorf("cannot connect to carbon at %q (%d bytes kept for the next flush): %w", c.opts.Address, r.Kept, r.Err)
	}
	return fmt.Errorf("cannot write to carbon at %q (%d bytes kept for the next flush): %w", c.opts.Address, r.Kept, r.Err)
}

// keepBuf keeps the chunk buffer for the next flush, unless a huge series
// grew it.
func (c *Client) keepBuf(b []byte) {
	if cap(b) <= 2*chunkCap {
		c.buf = b[:0]
	}
}

// CheckHealth dials carbon (bounded by ctx and dial_timeout) and hangs up.
func (c *Client) CheckHealth(ctx context.Context) error { return c.conn.CheckHealth(ctx) }

// Close closes the connection; what is still queued is dropped and counted.
func (c *Client) Close() error { return c.conn.Close() }
