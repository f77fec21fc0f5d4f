package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// carbon is a Graphite plaintext listener that sums what a statsd server
// flushed: the .count of every counter and every timer, by name prefix
// (the metric name without its last component, i.e. <prefix>.<type> for
// garner-load's series). It keeps nothing else, so a flush of millions of
// lines costs one pass over the bytes.
type carbon struct {
	ln                 net.Listener
	counterNS, timerNS []byte // "stats.counters.", "stats.timers."
	wg                 sync.WaitGroup

	// closing is set by close before it dials the sentinel connection, whose
	// local address it then sends on sentinel; accept stops when it accepts it.
	closing  atomic.Bool
	sentinel chan string

	mu        sync.Mutex
	counters  map[string]float64
	timers    map[string]float64
	lines     int64
	malformed int64
	open      map[net.Conn]bool
}

// newCarbon listens on a loopback port.
func newCarbon(counterNS, timerNS string) (*carbon, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &carbon{
		ln: ln, counterNS: []byte(counterNS), timerNS: []byte(timerNS),
		counters: map[string]float64{}, timers: map[string]float64{}, open: map[net.Conn]bool{},
		sentinel: make(chan string, 1),
	}
	c.wg.Add(1)
	go c.accept()
	return c, nil
}

func (c *carbon) addr() string { return c.ln.Addr().String() }

// accept serves connections until it accepts the sentinel connection close
// dials (or the listener fails). The kernel queues completed connections in
// the order they were established, so every connection made before the
// sentinel has been accepted by then: closing the listener earlier would
// reset the ones still queued and lose what they sent.
func (c *carbon) accept() {
	defer c.wg.Done()
	defer c.ln.Close()
	var sentinel string
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		if sentinel == "" && c.closing.Load() {
			sentinel = <-c.sentinel // close sends it as soon as its dial returns
		}
		if sentinel != "" && conn.RemoteAddr().String() == sentinel {
			_ = conn.Close()
			return
		}
		c.mu.Lock()
		c.open[conn] = true
		c.mu.Unlock()
		c.wg.Go(func() {
			c.read(conn)
			c.mu.Lock()
			delete(c.open, conn)
			c.mu.Unlock()
			_ = conn.Close()
		})
	}
}

func (c *carbon) read(conn net.Conn) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	counters, timers := map[string]float64{}, map[string]float64{}
	var lines, bad int64
	for sc.Scan() {
		lines++
		if !c.add(sc.Bytes(), counters, timers) {
			bad++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range counters {
		c.counters[k] += v
	}
	for k, v := range timers {
		c.timers[k] += v
	}
	c.lines += lines
	c.malformed += bad
}

// add parses "<name>[;tags] <value> <timestamp>" and adds the value of
// counter and timer .count lines; it returns false for a malformed line.
func (c *carbon) add(line []byte, counters, timers map[string]float64) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	name := line[:sp]
	if i := bytes.IndexByte(name, ';'); i >= 0 {
		name = name[:i]
	}
	var m map[string]float64
	switch {
	case bytes.HasPrefix(name, c.counterNS):
		name, m = name[len(c.counterNS):], counters
	case bytes.HasPrefix(name, c.timerNS):
		name, m = name[len(c.timerNS):], timers
	default:
		return true
	}
	name, ok := bytes.CutSuffix(name, []byte(".count"))
	if !ok {
		return true
	}
	rest := line[sp+1:]
	vs, _, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(string(vs), 64)
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	m[string(name)] += v
	return true
}

// close stops accepting once every connection made before it was called
// has been accepted, then waits up to timeout for the open connections to
// end (the server closes them when it exits); it reports whether they did.
// Connections still open then are closed, and what they sent is kept.
func (c *carbon) close(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	c.closing.Store(true)
	if s, err := net.DialTimeout("tcp", c.addr(), timeout); err == nil {
		c.sentinel <- s.LocalAddr().String()
		_ = s.Close()
	} else {
		c.sentinel <- "-" // matches no connection
		_ = c.ln.Close()  // cannot reach ourselves: stop now
	}
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(time.Until(deadline)):
	}
	_ = c.ln.Close()
	c.mu.Lock()
	for conn := range c.open {
		_ = conn.Close()
	}
	c.mu.Unlock()
	<-done
	return false
}

// totals returns copies of the sums so far (complete once close returned true).
func (c *carbon) totals() (counters, timers map[string]float64, lines, malformed int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counters, timers = map[string]float64{}, map[string]float64{}
	for k, v := range c.counters {
		counters[k] = v
	}
	for k, v := range c.timers {
		timers[k] = v
	}
	return counters, timers, c.lines, c.malformed
}
