package main

import (
	"fmt"
	"strconv"
	"strings"
)

// knownTypes are the statsd types garner-load can send.
const knownTypes = "c,g,ms,h,s,d"

// Workload is what garner-load sends. Its content is a deterministic cycle
// of lines: line j of the cycle is of type Types[j%len(Types)] and series
// j/len(Types), so one cycle holds every series of every type exactly once,
// types interleaved. Senders send the cycle over and over, packed into
// datagrams, which makes the totals of any run computable from the number of
// lines sent and the position each sender started at.
//
// Line layout (tags only when Tags > 0):
//
//	<prefix>.<type>.s<series>:<value>|<type>|#t0:v<n>,t1:v<n>...
//
// Counters always send 1 (so a counter's flushed total is the number of its
// lines the server took in), gauges and timers send series%1000, sets send
// the member series%1000. A series' tags depend only on the series, so tags
// do not multiply the series count.
type Workload struct {
	Prefix       string
	Types        []string
	Series       int // distinct series per type
	Tags         int // tags per line
	DatagramSize int // a datagram holds as many whole lines as fit in this many bytes
	Newline      bool
}

// parseTypes checks a comma-separated type list.
func parseTypes(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !strings.Contains(","+knownTypes+",", ","+t+",") {
			return nil, fmt.Errorf("unknown statsd type %q (want some of %s)", t, knownTypes)
		}
		if seen[t] {
			return nil, fmt.Errorf("statsd type %q listed twice", t)
		}
		seen[t] = true
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no statsd type in %q", s)
	}
	return out, nil
}

func (w Workload) validate() error {
	switch {
	case w.Series < 1:
		return fmt.Errorf("series per type must be at least 1, not %d", w.Series)
	case w.Tags < 0:
		return fmt.Errorf("tags must not be negative, not %d", w.Tags)
	case len(w.Types) == 0:
		return fmt.Errorf("no statsd types")
	case w.Prefix == "" || strings.ContainsAny(w.Prefix, ":|@#\n "):
		return fmt.Errorf("prefix %q must be a non-empty metric name", w.Prefix)
	}
	return nil
}

// cycleLen is the number of lines in one cycle.
func (w Workload) cycleLen() int { return w.Series * len(w.Types) }

// name returns the metric name of series idx of type t.
func (w Workload) name(t string, idx int) string {
	return string(w.appendName(nil, t, idx))
}

func (w Workload) appendName(dst []byte, t string, idx int) []byte {
	width := len(strconv.Itoa(w.Series - 1))
	dst = append(dst, w.Prefix...)
	dst = append(dst, '.')
	dst = append(dst, t...)
	dst = append(dst, ".s"...)
	n := strconv.Itoa(idx)
	for i := len(n); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, n...)
}

// appendLine appends line j of the cycle.
func (w Workload) appendLine(dst []byte, j int) []byte {
	t := w.Types[j%len(w.Types)]
	idx := j / len(w.Types)
	dst = w.appendName(dst, t, idx)
	dst = append(dst, ':')
	if t == "c" {
		dst = append(dst, '1')
	} else {
		dst = strconv.AppendInt(dst, int64(idx%1000), 10)
	}
	dst = append(dst, '|')
	dst = append(dst, t...)
	for k := 0; k < w.Tags; k++ {
		if k == 0 {
			dst = append(dst, "|#"...)
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, 't')
		dst = strconv.AppendInt(dst, int64(k), 10)
		dst = append(dst, ":v"...)
		dst = strconv.AppendInt(dst, int64((idx>>k)%16), 10)
	}
	return dst
}

// pool is one cycle of the workload packed into datagrams, built once and
// only read while sending.
type pool struct {
	w      Workload
	dgrams [][]byte
	first  []int // first cycle line of each datagram; first[len(dgrams)] = cycleLen
	minLPD int   // fewest lines in a datagram
	maxLPD int   // most lines in a datagram
}

// buildPool packs the cycle into datagrams of at most w.DatagramSize bytes
// (lines separated by '\n'; with Newline every datagram also ends with one,
// as a TCP stream needs).
func buildPool(w Workload) (*pool, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	L := w.cycleLen()
	p := &pool{w: w, minLPD: int(^uint(0) >> 1)}
	buf := make([]byte, 0, 64*L)
	var line []byte
	start, startLine := 0, 0
	closeDgram := func(j int) {
		p.dgrams = append(p.dgrams, buf[start:len(buf):len(buf)])
		p.first = append(p.first, startLine)
		p.minLPD = min(p.minLPD, j-startLine)
		p.maxLPD = max(p.maxLPD, j-startLine)
		start, startLine = len(buf), j
	}
	for j := 0; j < L; j++ {
		line = w.appendLine(line[:0], j)
		need := len(line)
		if w.Newline {
			need++
		}
		if need > w.DatagramSize {
			return nil, fmt.Errorf("line %q is longer than the datagram size %d", line, w.DatagramSize)
		}
		cur := len(buf) - start
		sep := 0
		if cur > 0 && !w.Newline {
			sep = 1
		}
		if cur > 0 && cur+sep+need > w.DatagramSize {
			closeDgram(j)
			sep = 0
		}
		if sep == 1 {
			buf = append(buf, '\n')
		}
		buf = append(buf, line...)
		if w.Newline {
			buf = append(buf, '\n')
		}
	}
	closeDgram(L)
	p.first = append(p.first, L)
	return p, nil
}

// lines returns the number of lines of datagram d.
func (p *pool) lines(d int) int { return p.first[d+1] - p.first[d] }

// prefix returns datagram d cut to its first n lines.
func (p *pool) prefix(d, n int) []byte {
	b := p.dgrams[d]
	for i, seen := 0, 0; i < len(b); i++ {
		if b[i] == '\n' {
			seen++
			if seen == n {
				if p.w.Newline {
					return b[:i+1]
				}
				return b[:i]
			}
		}
	}
	return b
}

// span is a run of n consecutive lines of the endless repeated cycle,
// starting at cycle line start: what one sender sent.
type span struct {
	start int
	n     int64
}

// typeCount returns how many lines of type index ti the spans hold.
func (w Workload) typeCount(spans []span, ti int) int64 {
	T, L := len(w.Types), int64(w.cycleLen())
	below := func(n int64) int64 { // lines j < n (n <= L) of type ti
		return (n + int64(T) - 1 - int64(ti)) / int64(T)
	}
	var total int64
	for _, s := range spans {
		total += s.n / L * int64(w.Series)
		a, rem := int64(s.start), s.n%L
		if a+rem <= L {
			total += below(a+rem) - below(a)
		} else {
			total += below(L) - below(a) + below(a+rem-L)
		}
	}
	return total
}

// seriesCount returns how many lines of series idx of type index ti the
// spans hold.
func (w Workload) seriesCount(spans []span, ti, idx int) int64 {
	L := int64(w.cycleLen())
	j := int64(idx*len(w.Types) + ti)
	var total int64
	for _, s := range spans {
		total += s.n / L
		a, rem := int64(s.start), s.n%L
		// j is in [a, a+rem) modulo L
		if d := (j - a + L) % L; d < rem {
			total++
		}
	}
	return total
}
