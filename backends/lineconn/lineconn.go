// Package lineconn is the connection of the line-protocol backends
// (graphite, statsdaemon): one persistent TCP connection (or UDP socket) to
// one address, written in chunks of whole lines, with bounded losses.
//
// A caller formats a flush chunk by chunk (ChunkSize bytes is a good size)
// and hands each chunk to a Batch as soon as it is full, so a flush of any
// size costs a few chunk buffers. Over TCP:
//
//   - The connection is dialled (bounded by DialTimeout and the batch's
//     context) at most once per batch, when the first chunk is sent: a dead
//     peer costs one dial attempt per flush. After a failed dial or write, the
//     rest of the batch is not written.
//   - A connection the peer has closed (a restart) is noticed before the
//     batch's first write and re-dialled, so nothing is written into a dead
//     socket.
//   - The writes of a batch share one deadline: WriteTimeout from the first
//     write, or the context's deadline when that is sooner.
//   - What could not be written is queued, oldest first, and written ahead of
//     the next batch's chunks. After a partial write the rest is queued from
//     the start of the line the write broke off in: the peer drops an
//     unfinished line with the connection, and resending only its tail would
//     make a line with a wrong name. The queue holds at most MaxBufferSize
//     bytes: beyond it the oldest queued chunks are dropped and counted (0 =
//     nothing is kept: what cannot be written is dropped).
//
// Over UDP every chunk is one datagram; a datagram that cannot be sent is
// dropped and counted (nothing is queued), and a failed send does not stop
// the batch. Losses are counted in the owner's counters and logged,
// rate-limited.
package lineconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/ratelog"
)

// ChunkSize is how many bytes of lines a caller should format before it
// sends them: big enough for few writes, small enough to keep a flush's
// memory to a few chunks.
const ChunkSize = 128 << 10

// chunkCap is the capacity of a pooled queue buffer: room for a chunk that
// ran past ChunkSize to the end of its series.
const chunkCap = ChunkSize + 16<<10

// Options configure a Conn. The field names are the config keys of the
// backends that use it ([graphite] dial_timeout → DialTimeout).
type Options struct {
	// Network is "tcp" (a stream of lines) or "udp" (one datagram per
	// chunk). Default "tcp"; "" means "tcp".
	Network string
	// Address is the peer's host:port. No default: required.
	Address string
	// DialTimeout bounds one connect (the batch's context bounds it too).
	// Default 5s; 0 = only the context.
	DialTimeout time.Duration
	// WriteTimeout bounds the writes of one batch, from its first write.
	// Default 30s; 0 = only the context's deadline.
	WriteTimeout time.Duration
	// MaxBufferSize is how many bytes of unwritten lines are kept for the
	// next batch (TCP only); beyond it the oldest are dropped and counted.
	// Default 0: nothing is kept.
	MaxBufferSize int
	// WriteBuffer is the socket send buffer (SO_SNDBUF) asked for each new
	// connection, in bytes. Default 0: the kernel's (autotuned over TCP).
	WriteBuffer int
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	return Options{Network: "tcp", DialTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
}

// Counters are the owner's self-metrics, named as the owner's metrics are
// (garner_<backend>_...). A nil counter is not counted.
type Counters struct {
	Connects       prometheus.Counter // connections dialled
	Writes         prometheus.Counter // chunks written whole
	WrittenBytes   prometheus.Counter // bytes written
	Errors         prometheus.Counter // failed dials and writes
	DroppedBatches prometheus.Counter // batches of which any data was dropped
	DroppedBytes   prometheus.Counter // bytes dropped
	DroppedSeries  prometheus.Counter // series dropped (as counted by Send's callers)
}

// Conn is a reconnecting, bounded line connection. Safe for concurrent use:
// batches are serialised.
type Conn struct {
	opts   Options
	stream bool // TCP: partial writes, queue, peer-closed check
	ctr    Counters
	log    logrus.FieldLogger
	logLim *ratelog.Limiter
	bufs   sync.Pool // *[]byte of cap chunkCap, for the queue

	mu          sync.Mutex
	conn        net.Conn
	pending     []chunk // not yet written, oldest first
	pendLen     int     // bytes in pending
	seq         uint64  // batches begun
	lastDropped uint64  // seq of the last batch of which a chunk was dropped
	batch       Batch   // the current batch, reused
}

// chunk is queued data: the unwritten lines buf[off:] of one batch.
type chunk struct {
	buf    *[]byte // from Conn.bufs
	off    int
	batch  uint64 // the batch's seq
	series int    // series in buf[off:] (a cut chunk's is estimated by its bytes)
}

func (ch *chunk) data() []byte { return (*ch.buf)[ch.off:] }

// New returns a Conn for opts. It does not connect: the first Send does.
func New(opts Options, ctr Counters, log logrus.FieldLogger) (*Conn, error) {
	switch opts.Network {
	case "":
		opts.Network = "tcp"
	case "tcp", "udp":
	default:
		return nil, fmt.Errorf("network %q: want tcp or udp", opts.Network)
	}
	c := &Conn{opts: opts, stream: opts.Network == "tcp", ctr: ctr, log: log, logLim: ratelog.Every(time.Minute, 5)}
	c.bufs.New = func() any {
		b := make([]byte, 0, chunkCap)
		return &b
	}
	return c, nil
}

// Batch is one flush's sends. It holds the Conn's lock from Begin to End;
// it must not be used after End.
type Batch struct {
	c        *Conn
	ctx      context.Context
	seq      uint64
	checked  bool      // the connection was checked, dialled and its deadline set
	deadline time.Time // of this batch's writes
	err      error     // the first failure
	dialErr  bool      // err is a failed dial
	stopped  bool      // nothing more is written in this batch (TCP failure, dial, ctx)

	droppedBytes, droppedChunks, droppedSeries int
}

// Result is what a batch did.
type Result struct {
	// Err is the batch's first failure (a dial, a write, the context), nil
	// when everything was written.
	Err error
	// Dial reports that Err is a failed dial.
	Dial bool
	// Kept is how many bytes are queued for the next batch.
	Kept int
	// DroppedBytes and DroppedSeries are what this batch dropped: its own
	// data or older queued data.
	DroppedBytes, DroppedSeries int
}

// Begin locks the Conn, writes what is queued from earlier batches, and
// returns the batch on which to Send this flush's chunks.
func (c *Conn) Begin(ctx context.Context) *Batch {
	c.mu.Lock()
	c.seq++
	b := &c.batch
	*b = Batch{c: c, ctx: ctx, seq: c.seq}
	c.writePendingLocked(b)
	return b
}

// Send writes p, whole newline-terminated lines (over UDP: one datagram)
// holding series series, or queues (or drops) what could not be written.
// p is not retained: the caller may reuse it when Send returns.
func (b *Batch) Send(p []byte, series int) {
	if len(p) == 0 {
		return
	}
	c := b.c
	w := c.writeLocked(b, p)
	if w == len(p) {
		return
	}
	done := 0
	if c.stream {
		// Keep the rest from the start of the line the write broke off in.
		done = bytes.LastIndexByte(p[:w], '\n') + 1
	}
	c.enqueueLocked(b, p[done:], restSeries(series, done, len(p)))
}

// End finishes the batch, logs (rate-limited) what it dropped, unlocks the
// Conn and returns the batch's result.
func (b *Batch) End() Result {
	c := b.c
	r := Result{Err: b.err, Dial: b.dialErr, Kept: c.pendLen, DroppedBytes: b.droppedBytes, DroppedSeries: b.droppedSeries}
	dropped := b.droppedChunks > 0
	c.mu.Unlock() // b is the next batch's from here
	if dropped {
		if e := c.logLim.Entry(c.log); e != nil {
			e = e.WithFields(logrus.Fields{"address": c.opts.Address, "bytes": r.DroppedBytes, "series": r.DroppedSeries})
			if r.Err != nil {
				e = e.WithError(r.Err)
			}
			if c.stream && c.opts.MaxBufferSize > 0 {
				e.WithField("max_buffer_size", c.opts.MaxBufferSize).Warn("send buffer full: dropped the oldest unsent data")
			} else {
				e.Warn("dropped data that could not be sent")
			}
		}
	}
	return r
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
func (c *Conn) writePendingLocked(b *Batch) {
	for len(c.pending) > 0 && !b.stopped {
		ch := &c.pending[0]
		p := ch.data()
		w := c.writeLocked(b, p)
		if w < len(p) {
			done := bytes.LastIndexByte(p[:w], '\n') + 1
			ch.series = restSeries(ch.series, done, len(p))
			ch.off += done
			c.pendLen -= done
			return
		}
		c.pendLen -= len(p)
		c.popLocked()
	}
	if len(c.pending) == 0 {
		c.pending = nil
	}
}

// popLocked removes the oldest queued chunk and recycles its buffer.
func (c *Conn) popLocked() {
	ch := &c.pending[0]
	if cap(*ch.buf) <= 2*chunkCap { // unless a huge series grew it
		*ch.buf = (*ch.buf)[:0]
		c.bufs.Put(ch.buf)
	}
	c.pending[0] = chunk{} // not kept alive by the backing array
	c.pending = c.pending[1:]
}

// enqueueLocked queues a copy of p (series series) and drops the oldest
// queued chunks while the queue holds more than MaxBufferSize bytes.
func (c *Conn) enqueueLocked(b *Batch, p []byte, series int) {
	limit := c.opts.MaxBufferSize
	if !c.stream {
		limit = 0
	}
	if len(p) > limit {
		// It would go last and be dropped with everything before it.
		for len(c.pending) > 0 {
			c.dropOldestLocked(b)
		}
		c.countDropLocked(b, b.seq, len(p), series)
		return
	}
	buf := c.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], p...)
	c.pending = append(c.pending, chunk{buf: buf, batch: b.seq, series: series})
	c.pendLen += len(p)
	for c.pendLen > limit {
		c.dropOldestLocked(b)
	}
}

func (c *Conn) dropOldestLocked(b *Batch) {
	old := &c.pending[0]
	n := len(old.data())
	c.countDropLocked(b, old.batch, n, old.series)
	c.pendLen -= n
	c.popLocked()
}

// countDropLocked counts n bytes of series series of batch seq as dropped.
func (c *Conn) countDropLocked(b *Batch, seq uint64, n, series int) {
	if seq != c.lastDropped {
		c.lastDropped = seq
		inc(c.ctr.DroppedBatches, 1)
	}
	inc(c.ctr.DroppedBytes, n)
	inc(c.ctr.DroppedSeries, series)
	b.droppedBytes += n
	b.droppedSeries += series
	b.droppedChunks++
}

func inc(c prometheus.Counter, n int) {
	if c != nil && n > 0 {
		c.Add(float64(n))
	}
}

// writeLocked writes p on the connection, dialling it first if needed, and
// returns how much of p was written. It records a failure in b and, over
// TCP, closes the connection.
func (c *Conn) writeLocked(b *Batch, p []byte) int {
	if b.stopped {
		return 0
	}
	if err := b.ctx.Err(); err != nil {
		b.fail(err, false)
		return 0
	}
	if !b.checked {
		b.checked = true
		if err := c.connectLocked(b.ctx); err != nil {
			b.fail(err, true)
			return 0
		}
		if c.opts.WriteTimeout > 0 {
			b.deadline = time.Now().Add(c.opts.WriteTimeout)
		}
		if d, ok := b.ctx.Deadline(); ok && (b.deadline.IsZero() || d.Before(b.deadline)) {
			b.deadline = d
		}
		_ = c.conn.SetWriteDeadline(b.deadline)
	}
	n, err := c.conn.Write(p)
	inc(c.ctr.WrittenBytes, n)
	if err == nil {
		inc(c.ctr.Writes, 1)
		return n
	}
	inc(c.ctr.Errors, 1)
	if !c.stream {
		// A datagram socket is not broken by a failed send (an ICMP error
		// from an earlier one): the next datagram may go through.
		if b.err == nil {
			b.err = err
		}
		return n
	}
	b.fail(err, false)
	_ = c.conn.Close()
	c.conn = nil
	return n
}

// fail records the batch's failure: nothing more is written in it.
func (b *Batch) fail(err error, dial bool) {
	b.stopped = true
	if b.err == nil {
		b.err, b.dialErr = err, dial
	}
}

// connectLocked re-dials a connection the peer has closed, and dials when
// there is none.
func (c *Conn) connectLocked(ctx context.Context) error {
	if c.conn != nil && c.stream && peerClosed(c.conn) {
		_ = c.conn.Close()
		c.conn = nil
	}
	if c.conn != nil {
		return nil
	}
	d := net.Dialer{Timeout: c.opts.DialTimeout}
	conn, err := d.DialContext(ctx, c.opts.Network, c.opts.Address)
	if err != nil {
		inc(c.ctr.Errors, 1)
		return err
	}
	if c.opts.WriteBuffer > 0 {
		if sb, ok := conn.(interface{ SetWriteBuffer(int) error }); ok {
			_ = sb.SetWriteBuffer(c.opts.WriteBuffer)
		}
	}
	inc(c.ctr.Connects, 1)
	c.conn = conn
	return nil
}

// peerClosed reports whether the other end closed conn. The peers of a line
// connection never write, so a read that does not time out at once means it
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

// CheckHealth dials the address (bounded by ctx and DialTimeout) and hangs
// up. Over UDP that only proves the address resolves.
func (c *Conn) CheckHealth(ctx context.Context) error {
	return backends.DialCheck(ctx, c.opts.Network, c.opts.Address, c.opts.DialTimeout)
}

// Close closes the connection for good (garner is stopping): what is still
// queued will never be written, so it is counted as dropped and logged.
// Safe to call more than once.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 {
		var b Batch
		for len(c.pending) > 0 {
			c.dropOldestLocked(&b)
		}
		c.log.WithFields(logrus.Fields{"address": c.opts.Address, "bytes": b.droppedBytes, "series": b.droppedSeries}).
			Warn("closing with data still queued for a peer that did not take it: dropped")
	}
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
