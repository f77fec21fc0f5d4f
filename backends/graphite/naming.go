package graphite

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/garner-metrics/garner/backends/lineconn"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// naming is how a mode names series: the namespaces of each type, the
// suffix, and whether tags are written.
type naming struct {
	counterNS, timerNS, gaugeNS, setNS string
	suffix                             string
	legacy, tags                       bool
}

func newNaming(opts Options) (naming, error) {
	var n naming
	switch opts.Mode {
	case "legacy":
		n.legacy = true
		// gostatsd ignores global_prefix and the type prefixes in legacy mode.
		n.counterNS, n.timerNS, n.gaugeNS, n.setNS = "stats", "stats.timers", "stats.gauges", "stats.sets"
	case "basic", "tags":
		n.tags = opts.Mode == "tags"
		n.counterNS = combine(opts.GlobalPrefix, opts.PrefixCounter)
		n.timerNS = combine(opts.GlobalPrefix, opts.PrefixTimer)
		n.gaugeNS = combine(opts.GlobalPrefix, opts.PrefixGauge)
		n.setNS = combine(opts.GlobalPrefix, opts.PrefixSet)
	default:
		return n, fmt.Errorf("graphite mode %q: want tags, basic or legacy", opts.Mode)
	}
	n.suffix = statsd.SanitizeName(strings.Trim(opts.GlobalSuffix, "."))
	return n, nil
}

// combine joins two configured name components, either of which may be
// empty, sanitised as metric names are.
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

// MaxLineLength is the longest line (without its newline) carbon's
// plaintext receiver takes; on a longer one it drops the connection, and with
// it the rest of what was sent.
const MaxLineLength = 16384

// Format appends the snapshot's Graphite lines to dst. Invalid UTF-8 in tags
// and sources is replaced by U+FFFD (carbon drops the connection on it) and
// lines longer than MaxLineLength are left out.
func (c *Client) Format(dst []byte, s *model.Snapshot) []byte {
	f := formatter{n: &c.naming, dst: dst}
	f.run(s)
	return f.dst
}

// format appends the snapshot's lines to dst. Whenever dst holds ChunkSize
// bytes or more at the end of a series, it hands dst and the number of
// series in it to emit and goes on with the slice emit returns. It returns
// what is left in dst and of how many series, and how many lines it left
// out, of how many series.
func (c *Client) format(dst []byte, s *model.Snapshot, emit func(dst []byte, series int) []byte) (out []byte, series, skippedLines, skippedSeries int) {
	f := formatter{n: &c.naming, dst: dst, emit: emit}
	f.run(s)
	return f.dst, f.series, f.skippedLines, f.skippedSeries
}

// formatter is the state of one format call.
type formatter struct {
	n    *naming
	dst  []byte
	emit func([]byte, int) []byte
	ts   []byte // the current point's timestamp, formatted
	snap []byte // the flush's timestamp, formatted
	atb  [20]byte
	v    []byte // scratch for a value

	name  string // the current series' name
	start int    // len(dst) at the start of the current series
	cut   bool   // a line of the current series was left out

	series                      int // series with lines in dst
	skippedLines, skippedSeries int
}

func (f *formatter) run(s *model.Snapshot) {
	var tsb [20]byte
	f.snap = strconv.AppendInt(tsb[:0], s.Time.Unix(), 10)
	var vb [32]byte
	f.v = vb[:0]
	c := f.n
	for i := range s.Counters {
		x := &s.Counters[i]
		f.begin(x.Name)
		f.at(x.At)
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
				f.line(c.counterNS, "histogram", t.Tags, model.FormatBound(b.Le), t.Source, strconv.AppendUint(f.v[:0], b.Count, 10))
			}
			f.end()
			continue
		}
		for _, st := range model.TimerStats {
			if s.Disabled.Has(st.Sub) {
				continue
			}
			if st.Sub == model.SubCount {
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
		f.at(g.At)
		f.line(c.gaugeNS, "", g.Tags, "", g.Source, appendF6(f.v[:0], g.Value))
		f.end()
	}
	for i := range s.Sets {
		st := &s.Sets[i]
		f.begin(st.Name)
		f.line(c.setNS, "", st.Tags, "", st.Source, strconv.AppendInt(f.v[:0], int64(st.Count()), 10))
		f.end()
	}
}

// at sets the timestamp of the current series' lines to a past interval's
// end (model.Counter.At) for timestamped samples; at 0 they keep the
// flush's.
func (f *formatter) at(at int64) {
	if at != 0 {
		f.ts = strconv.AppendInt(f.atb[:0], at/int64(time.Second), 10)
	}
}

// begin starts a series, its lines at the flush's timestamp (see at). Its
// name is written as it is: every name reaching a backend was sanitised
// once, on the way in (pkg/statsd.SanitizeName).
func (f *formatter) begin(name string) {
	f.name = name
	f.ts = f.snap
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
	if f.emit != nil && len(f.dst) >= lineconn.ChunkSize {
		f.dst = f.emit(f.dst, f.series)
		f.series = 0
	}
}

// line appends one line of the current series, or leaves it out when it is
// longer than carbon takes.
func (f *formatter) line(ns, sub string, tags []string, le string, src string, val []byte) {
	c := f.n
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
