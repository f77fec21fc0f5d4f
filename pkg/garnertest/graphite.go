package garnertest

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Graphite is a TCP listener that records every line it receives, as a
// carbon plaintext listener would get them.
type Graphite struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	conns int
	open  int // connections not read to their end yet
}

// NewGraphite listens on a loopback port until the test ends.
func NewGraphite(t testing.TB) *Graphite {
	t.Helper()
	g, err := ListenGraphite("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// ListenGraphite listens on addr (for a listener that must come back on the
// address an earlier one had). The caller closes it.
func ListenGraphite(addr string) (*Graphite, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &Graphite{ln: ln}
	go g.accept()
	return g, nil
}

func (g *Graphite) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.conns++
		g.open++
		g.mu.Unlock()
		go func() {
			defer func() {
				_ = c.Close()
				g.mu.Lock()
				g.open--
				g.mu.Unlock()
			}()
			sc := bufio.NewScanner(c)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				g.mu.Lock()
				g.lines = append(g.lines, sc.Text())
				g.mu.Unlock()
			}
		}()
	}
}

// WaitSent waits, up to timeout, until lines have arrived and every
// connection they came on has been read to its end: after the sender has
// exited, all it wrote is in Lines. It reports whether that happened.
func (g *Graphite) WaitSent(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		done := len(g.lines) > 0 && g.open == 0
		g.mu.Unlock()
		if done {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// Addr is the listener's host:port.
func (g *Graphite) Addr() string { return g.ln.Addr().String() }

// Close stops accepting connections.
func (g *Graphite) Close() { _ = g.ln.Close() }

// Lines returns a copy of every line received so far.
func (g *Graphite) Lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.lines...)
}

// Reset forgets the lines received so far.
func (g *Graphite) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lines = nil
}

// Point is one parsed Graphite line.
type Point struct {
	Name  string // including ;tags
	Value string
	Time  int64
}

// Points parses the received lines; malformed lines are returned as Name only.
func (g *Graphite) Points() []Point {
	var out []Point
	for _, l := range g.Lines() {
		f := strings.Fields(l)
		p := Point{Name: f[0]}
		if len(f) == 3 {
			p.Value = f[1]
			_, _ = fmt.Sscan(f[2], &p.Time)
		}
		out = append(out, p)
	}
	return out
}

// WaitFor polls until cond holds on the received lines or timeout passes,
// and reports whether it held.
func (g *Graphite) WaitFor(timeout time.Duration, cond func(lines []string) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond(g.Lines()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sums maps every Graphite name received (tags included) to the sum of its
// values over all the lines received so far; lines whose value does not
// parse are left out.
func (g *Graphite) Sums() map[string]float64 {
	out := map[string]float64{}
	for _, p := range g.Points() {
		if v, err := strconv.ParseFloat(p.Value, 64); err == nil {
			out[p.Name] += v
		}
	}
	return out
}
