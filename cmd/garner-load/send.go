package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Options is one load run.
type Options struct {
	Workload
	Proto    string        // udp | tcp
	Addr     string        // host:port of the statsd server
	Rate     float64       // lines per second over all senders; 0 = flat out
	Duration time.Duration // stop after this long; 0 = no time bound
	Lines    int64         // stop after exactly this many lines; 0 = no count bound
	Senders  int           // goroutines, each with its own socket
	Batch    int           // datagrams per sendmmsg (UDP) or writev (TCP)
	Progress time.Duration // interval of the progress line; 0 = none
	PerName  bool          // report every counter's total, not only per prefix
}

func (o *Options) validate() error {
	if o.Proto != "udp" && o.Proto != "tcp" {
		return fmt.Errorf("protocol %q: want udp or tcp", o.Proto)
	}
	if o.Duration <= 0 && o.Lines <= 0 {
		return errors.New("unbounded run: give a duration, a line count or both")
	}
	if o.Duration < 0 || o.Lines < 0 || o.Rate < 0 {
		return errors.New("duration, line count and rate must not be negative")
	}
	if o.Senders < 1 || o.Batch < 1 {
		return fmt.Errorf("senders (%d) and batch (%d) must be at least 1", o.Senders, o.Batch)
	}
	if o.DatagramSize < 16 || (o.Proto == "udp" && o.DatagramSize > 65507) {
		return fmt.Errorf("datagram size %d: want 16..65507", o.DatagramSize)
	}
	return nil
}

// Result is what a run sent, printed as JSON.
type Result struct {
	Proto         string   `json:"proto"`
	Addr          string   `json:"addr"`
	Types         []string `json:"types"`
	SeriesPerType int      `json:"series_per_type"`
	Tags          int      `json:"tags"`
	DatagramSize  int      `json:"datagram_size"`
	Senders       int      `json:"senders"`
	TargetRate    float64  `json:"target_rate"` // lines/s; 0 = flat out

	Seconds        float64 `json:"duration_seconds"`
	Lines          int64   `json:"lines"`
	Datagrams      int64   `json:"datagrams"`
	Bytes          int64   `json:"bytes"`
	Rate           float64 `json:"rate"` // lines/s achieved
	LinesPerDgram  float64 `json:"lines_per_datagram"`
	MinLinesPerDgm int     `json:"min_lines_per_datagram"`
	MaxLinesPerDgm int     `json:"max_lines_per_datagram"`
	SendErrors     int64   `json:"send_errors"`
	LastError      string  `json:"last_error,omitempty"`

	LinesByType map[string]int64 `json:"lines_by_type"`
	// CounterIncrements is the expected flushed total of the counters of
	// each name prefix (<prefix>.c): every counter line is :1|c.
	CounterIncrements map[string]int64 `json:"counter_increments"`
	// TimerSamples is the expected flushed count of the timers (ms, h, d)
	// of each name prefix.
	TimerSamples map[string]int64 `json:"timer_samples"`
	// CounterPerName is every counter's expected total (with --per-name).
	CounterPerName map[string]int64 `json:"counter_increments_per_name,omitempty"`
}

// progress is updated by the senders once per batch.
type progress struct {
	lines, dgrams, bytes, errs atomic.Int64
}

type sender struct {
	p        *pool
	o        *Options
	pos      int   // next datagram
	budget   int64 // lines left; <0 = unbounded
	rate     float64
	startPos int

	lines, dgrams, bytes, errs int64
	lastErr                    error
}

// Run sends the load and returns what was sent. It stops at the first of:
// the duration passed, the line count sent, ctx cancelled. Progress lines go
// to progressOut every o.Progress.
func Run(ctx context.Context, o Options, progressOut io.Writer) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.Newline = o.Proto == "tcp"
	p, err := buildPool(o.Workload)
	if err != nil {
		return nil, err
	}
	conns := make([]net.Conn, o.Senders)
	for i := range conns {
		c, err := net.Dial(o.Proto, o.Addr)
		if err != nil {
			for _, c := range conns[:i] {
				_ = c.Close()
			}
			return nil, fmt.Errorf("cannot connect to %s %q: %w", o.Proto, o.Addr, err)
		}
		conns[i] = c
	}

	var deadline time.Time
	start := time.Now()
	if o.Duration > 0 {
		deadline = start.Add(o.Duration)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A write blocked on a server that stopped reading (TCP) ends a second
	// after the run's deadline, or at once when ctx is cancelled.
	if !deadline.IsZero() {
		for _, c := range conns {
			_ = c.SetWriteDeadline(deadline.Add(time.Second))
		}
	}
	go func() {
		<-ctx.Done()
		for _, c := range conns {
			_ = c.SetWriteDeadline(time.Unix(1, 0))
		}
	}()

	var prog progress
	senders := make([]*sender, o.Senders)
	for i := range senders {
		s := &sender{p: p, o: &o, budget: -1, rate: o.Rate / float64(o.Senders)}
		s.pos = i * len(p.dgrams) / o.Senders
		s.startPos = s.pos
		if o.Lines > 0 {
			s.budget = o.Lines / int64(o.Senders)
			if int64(i) < o.Lines%int64(o.Senders) {
				s.budget++
			}
		}
		senders[i] = s
	}
	var wg sync.WaitGroup
	for i, s := range senders {
		wg.Go(func() {
			s.run(ctx, conns[i], start, deadline, &prog)
		})
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		reportProgress(progressOut, o.Progress, start, &prog, stopProgress)
	}()
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	for _, c := range conns {
		_ = c.Close()
	}
	return result(&o, p, senders, elapsed), nil
}

func reportProgress(w io.Writer, every time.Duration, start time.Time, prog *progress, stop <-chan struct{}) {
	if every <= 0 || w == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var prevLines int64
	prevT := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			lines := prog.lines.Load()
			rate := float64(lines-prevLines) / now.Sub(prevT).Seconds()
			fmt.Fprintf(w, "garner-load: %6.1fs %12d lines %10.0f lines/s %10d datagrams %6d errors\n",
				now.Sub(start).Seconds(), lines, rate, prog.dgrams.Load(), prog.errs.Load())
			prevLines, prevT = lines, now
		}
	}
}

func result(o *Options, p *pool, senders []*sender, elapsed time.Duration) *Result {
	r := &Result{
		Proto: o.Proto, Addr: o.Addr, Types: o.Types, SeriesPerType: o.Series, Tags: o.Tags,
		DatagramSize: o.DatagramSize, Senders: o.Senders, TargetRate: o.Rate,
		Seconds:        elapsed.Seconds(),
		MinLinesPerDgm: p.minLPD, MaxLinesPerDgm: p.maxLPD,
		LinesByType:       map[string]int64{},
		CounterIncrements: map[string]int64{},
		TimerSamples:      map[string]int64{},
	}
	spans := make([]span, len(senders))
	for i, s := range senders {
		r.Lines += s.lines
		r.Datagrams += s.dgrams
		r.Bytes += s.bytes
		r.SendErrors += s.errs
		if s.lastErr != nil {
			r.LastError = s.lastErr.Error()
		}
		spans[i] = span{start: p.first[s.startPos], n: s.lines}
	}
	if r.Seconds > 0 {
		r.Rate = float64(r.Lines) / r.Seconds
	}
	if r.Datagrams > 0 {
		r.LinesPerDgram = float64(r.Lines) / float64(r.Datagrams)
	}
	for ti, t := range o.Types {
		n := o.typeCount(spans, ti)
		r.LinesByType[t] = n
		switch t {
		case "c":
			r.CounterIncrements[o.Prefix+".c"] = n
		case "ms", "h", "d":
			r.TimerSamples[o.Prefix+"."+t] = n
		}
		if t == "c" && o.PerName {
			r.CounterPerName = make(map[string]int64, o.Series)
			for idx := 0; idx < o.Series; idx++ {
				r.CounterPerName[o.name(t, idx)] = o.seriesCount(spans, ti, idx)
			}
		}
	}
	return r
}

type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// item is one datagram of a batch: its bytes and its number of lines.
type item struct {
	b     []byte
	lines int64
}

// run sends until the deadline, the budget or ctx ends it.
func (s *sender) run(ctx context.Context, c net.Conn, start, deadline time.Time, prog *progress) {
	var bw batchWriter
	uc, isUDP := c.(*net.UDPConn)
	if isUDP {
		if ra, ok := uc.RemoteAddr().(*net.UDPAddr); ok && ra.IP.To4() == nil {
			bw = ipv6.NewPacketConn(uc)
		} else {
			bw = ipv4.NewPacketConn(uc)
		}
	}
	p := s.p
	items := make([]item, 0, s.o.Batch)
	msgs := make([]ipv4.Message, s.o.Batch)
	for i := range msgs {
		msgs[i].Buffers = make([][]byte, 1)
	}
	bufs := make(net.Buffers, 0, s.o.Batch)
	for {
		if ctx.Err() != nil || s.budget == 0 {
			return
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return
		}
		due := int64(-1) // lines allowed now; -1 = any
		if s.rate > 0 {
			due = int64(s.rate*now.Sub(start).Seconds()) - s.lines
			next := int64(p.lines(s.pos))
			if s.budget > 0 {
				next = min(next, s.budget)
			}
			if due < next {
				wait := start.Add(time.Duration(float64(s.lines+next) / s.rate * 1e9)).Sub(now)
				if !deadline.IsZero() {
					wait = min(wait, deadline.Sub(now))
				}
				sleep(ctx, wait)
				continue
			}
		}
		items = s.nextBatch(items[:0], due)
		var sent int
		var err error
		if isUDP {
			for i, it := range items {
				msgs[i].Buffers[0] = it.b
			}
			sent, err = bw.WriteBatch(msgs[:len(items)], 0)
		} else {
			bufs = bufs[:0]
			for _, it := range items {
				bufs = append(bufs, it.b)
			}
			sent, err = writeTCP(c, bufs, items)
		}
		var nb, nl int64
		for _, it := range items[:max(sent, 0)] {
			nb += int64(len(it.b))
			nl += it.lines
		}
		s.pos = (s.pos + max(sent, 0)) % len(p.dgrams)
		s.lines += nl
		s.dgrams += int64(sent)
		s.bytes += nb
		if s.budget > 0 {
			s.budget -= nl
		}
		prog.lines.Add(nl)
		prog.dgrams.Add(int64(sent))
		prog.bytes.Add(nb)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.errs++
			s.lastErr = err
			prog.errs.Add(1)
			if !isUDP {
				return // the stream is broken; what was written whole is counted
			}
			sleep(ctx, time.Millisecond) // e.g. ECONNREFUSED: nobody listens yet
		}
	}
}

// nextBatch appends the next datagrams from s.pos to items: at most Batch,
// and whole datagrams only while they fit in due lines (due < 0: no limit).
// When the line budget is what limits, the last datagram is cut so that the
// run sends exactly the budget.
func (s *sender) nextBatch(items []item, due int64) []item {
	p := s.p
	if s.budget > 0 && (due < 0 || s.budget < due) {
		due = s.budget
	}
	var lines int64
	pos := s.pos
	for len(items) < s.o.Batch {
		b, n := p.dgrams[pos], int64(p.lines(pos))
		if due >= 0 && lines+n > due {
			if len(items) > 0 || due != s.budget {
				break
			}
			n = due - lines
			b = p.prefix(pos, int(n))
		}
		items = append(items, item{b, n})
		lines += n
		pos = (pos + 1) % len(p.dgrams)
		if due >= 0 && lines == due {
			break
		}
	}
	return items
}

// writeTCP writes the datagrams (newline-terminated line groups) and returns
// how many were written whole.
func writeTCP(c net.Conn, bufs net.Buffers, items []item) (int, error) {
	n, err := bufs.WriteTo(c)
	sent := 0
	for _, it := range items {
		if n < int64(len(it.b)) {
			break
		}
		n -= int64(len(it.b))
		sent++
	}
	return sent, err
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
