package exporter

import (
	"bufio"
	"compress/gzip"
	"io"
	"iter"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/garner-metrics/garner/pkg/mapping"
)

// A scrape copies, under the lock, one pointer and one value per series
// (and a classic histogram's counts; the rest of a series never changes
// once it exists, and client_golang's summaries and native histograms
// lock themselves), then writes the exposition outside the lock, straight
// from that copy: no client_golang message per counter, gauge or classic
// histogram, so such a scrape allocates nothing per series once its
// buffers have grown, and a slow scraper never holds up a flush.

// scrapeItem is one series as a scrape saw it.
type scrapeItem struct {
	s   *series
	v   float64 // counter total or gauge value at the time of the copy
	off int     // a classic histogram: its copy's offset in scrapeBuf.state
}

// scrapeFam is one family of a scrape: its items are the next n.
type scrapeFam struct {
	f *family
	n int
}

// scrapeBuf is the reusable memory of one scrape.
type scrapeBuf struct {
	fams  []scrapeFam
	items []scrapeItem
	state []uint64 // copies of the classic histograms (classicHist.appendState)
	bw    *bufio.Writer
	num   []byte
	m     dto.Metric // a summary's or histogram's state, written by client_golang
	body  []byte     // protobuf: the metrics of a summary or histogram family
	enc   []byte     // protobuf: one summary or histogram message
}

// getBuf returns the exporter's spare scrape buffer, or a new one while
// another scrape holds it; putBuf gives it back. One buffer is kept (not a
// sync.Pool, which the collector empties): its copy of the series is the
// largest memory of a scrape.
func (e *Exporter) getBuf() *scrapeBuf {
	if sb := e.spare.Swap(nil); sb != nil {
		return sb
	}
	return &scrapeBuf{bw: bufio.NewWriterSize(nil, 64<<10)}
}

// putBuf lets the series of the scrape go and keeps sb for the next.
func (e *Exporter) putBuf(sb *scrapeBuf) {
	clear(sb.fams)
	clear(sb.items)
	e.spare.Store(sb)
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// snapshot copies the exposed series into sb, families sorted by name,
// series in the order they came.
func (e *Exporter) snapshot(sb *scrapeBuf) {
	sb.fams, sb.items, sb.state = sb.fams[:0], sb.items[:0], sb.state[:0]
	e.mu.Lock()
	defer e.mu.Unlock()
	sb.items = slices.Grow(sb.items, e.st.nseries)
	for _, f := range e.st.sorted() {
		if len(f.list) == 0 {
			continue
		}
		sb.fams = append(sb.fams, scrapeFam{f, len(f.list)})
		for _, s := range f.list {
			it := scrapeItem{s: s, v: s.value}
			if s.hist != nil {
				it.off = len(sb.state)
				sb.state = s.hist.appendState(sb.state)
			}
			sb.items = append(sb.items, it)
		}
	}
}

// serveMetrics answers a scrape: the text format or, when the scraper
// prefers it, the delimited protobuf one (native histograms), written
// directly; gzip when accepted. Other negotiated formats (protobuf text
// and compact text) go through client_golang's encoder (fallback).
func (e *Exporter) serveMetrics(fallback http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
		typ := format.FormatType()
		switch typ {
		case expfmt.TypeTextPlain:
			e.m.scrapes[formatText].Inc()
		case expfmt.TypeProtoDelim:
			e.m.scrapes[formatProtobuf].Inc()
		default:
			e.m.scrapes[formatOther].Inc()
			fallback.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Accept")
		h.Add("Vary", "Accept-Encoding")
		h.Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close()
				gzipWriters.Put(gz)
			}()
			out = gz
		}
		sb := e.getBuf()
		defer e.putBuf(sb)
		e.snapshot(sb)
		sb.bw.Reset(out)
		var err error
		if typ == expfmt.TypeProtoDelim {
			err = e.writeProto(sb)
		} else {
			err = e.writeText(sb)
		}
		if err == nil {
			err = sb.bw.Flush()
		}
		sb.bw.Reset(nil)
		if err != nil {
			scrapeErrorLog{e}.Println("exporter: writing the scrape:", err)
		}
	}
}

// The format label of garner_exporter_scrapes_total.
const (
	formatText     = "text"
	formatProtobuf = "protobuf"
	formatOther    = "other"
)

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (present, and not with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}

// families yields each family of the scrape with its series.
func (sb *scrapeBuf) families() iter.Seq2[*family, []scrapeItem] {
	return func(yield func(*family, []scrapeItem) bool) {
		items := sb.items
		for _, sf := range sb.fams {
			if !yield(sf.f, items[:sf.n]) {
				return
			}
			items = items[sf.n:]
		}
	}
}

// classic is the copy of a classic histogram item's state.
func (sb *scrapeBuf) classic(it scrapeItem) classicState {
	return readClassic(it.s.hist, sb.state[it.off:])
}

// observed writes a summary's or histogram's current state into sb.m.
func (sb *scrapeBuf) observed(s *series) bool {
	sb.m.Reset()
	return s.obs.Write(&sb.m) == nil
}

// writeText writes sb in the Prometheus text format, byte for byte as
// client_golang's expfmt encoder writes the same families (a test
// compares them).
func (e *Exporter) writeText(sb *scrapeBuf) error {
	w := sb.bw
	for f, fitems := range sb.families() {
		w.WriteString("# HELP ")
		sb.writeName(f.name)
		w.WriteByte(' ')
		writeEscaped(w, f.help, false)
		w.WriteString("\n# TYPE ")
		sb.writeName(f.name)
		switch f.typ {
		case dto.MetricType_COUNTER:
			w.WriteString(" counter\n")
		case dto.MetricType_GAUGE:
			w.WriteString(" gauge\n")
		case dto.MetricType_SUMMARY:
			w.WriteString(" summary\n")
		case dto.MetricType_HISTOGRAM:
			w.WriteString(" histogram\n")
		}
		for _, it := range fitems {
			ls := it.s.labels
			switch f.typ {
			case dto.MetricType_COUNTER, dto.MetricType_GAUGE:
				sb.sample(f.name, "", ls, "", 0, it.v)
			case dto.MetricType_SUMMARY:
				if !sb.observed(it.s) {
					continue
				}
				sm := sb.m.GetSummary()
				for _, q := range sm.GetQuantile() {
					sb.sample(f.name, "", ls, "quantile", q.GetQuantile(), q.GetValue())
				}
				sb.sample(f.name, "_sum", ls, "", 0, sm.GetSampleSum())
				sb.sample(f.name, "_count", ls, "", 0, float64(sm.GetSampleCount()))
			case dto.MetricType_HISTOGRAM:
				if it.s.hist != nil {
					c := sb.classic(it)
					c.cumulative(func(le float64, n uint64) { sb.sample(f.name, "_bucket", ls, "le", le, float64(n)) })
					sb.sample(f.name, "_bucket", ls, "le", math.Inf(1), float64(c.count))
					sb.sample(f.name, "_sum", ls, "", 0, c.sum)
					sb.sample(f.name, "_count", ls, "", 0, float64(c.count))
					continue
				}
				if !sb.observed(it.s) {
					continue
				}
				hm := sb.m.GetHistogram()
				count := hm.GetSampleCountFloat()
				if count == 0 {
					count = float64(hm.GetSampleCount())
				}
				inf := false
				for _, b := range hm.GetBucket() {
					v := b.GetCumulativeCountFloat()
					if v == 0 {
						v = float64(b.GetCumulativeCount())
					}
					sb.sample(f.name, "_bucket", ls, "le", b.GetUpperBound(), v)
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
				}
				if !inf {
					sb.sample(f.name, "_bucket", ls, "le", math.Inf(1), count)
				}
				sb.sample(f.name, "_sum", ls, "", 0, hm.GetSampleSum())
				sb.sample(f.name, "_count", ls, "", 0, count)
			}
		}
	}
	// bufio.Writer keeps the first error and reports it on Flush.
	return nil
}

// sample writes one line: name+suffix{labels[,extra="x"]} value.
func (sb *scrapeBuf) sample(name, suffix string, ls []mapping.Label, extra string, extraValue, v float64) {
	w := sb.bw
	quoted := !isLegacyName(name) // suffixes are legacy characters: name decides
	sep := byte('{')
	if quoted {
		w.WriteByte('{')
		sep = ','
	}
	if quoted {
		sb.writeName(name + suffix)
	} else {
		w.WriteString(name)
		w.WriteString(suffix)
	}
	if len(ls) > 0 || extra != "" {
		for _, l := range ls {
			w.WriteByte(sep)
			sb.writeName(l.Name)
			w.WriteString(`="`)
			writeEscaped(w, l.Value, true)
			w.WriteByte('"')
			sep = ','
		}
		if extra != "" {
			w.WriteByte(sep)
			w.WriteString(extra)
			w.WriteString(`="`)
			sb.writeFloat(extraValue)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	} else if quoted {
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	sb.writeFloat(v)
	w.WriteByte('\n')
}

// writeName writes a metric or label name, in quotes when it is not a
// legacy Prometheus name (as expfmt does).
func (sb *scrapeBuf) writeName(name string) {
	if isLegacyName(name) {
		sb.bw.WriteString(name)
		return
	}
	sb.bw.WriteByte('"')
	writeEscaped(sb.bw, name, true)
	sb.bw.WriteByte('"')
}

// isLegacyName is [a-zA-Z_:][a-zA-Z0-9_:]*.
func isLegacyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// writeEscaped writes s with \ and newline escaped (and " when quoted).
func writeEscaped(w *bufio.Writer, s string, quoted bool) {
	start := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '\\':
			rep = `\\`
		case '\n':
			rep = `\n`
		case '"':
			if !quoted {
				continue
			}
			rep = `\"`
		default:
			continue
		}
		w.WriteString(s[start:i])
		w.WriteString(rep)
		start = i + 1
	}
	w.WriteString(s[start:])
}

// writeFloat formats as expfmt does: shortest 'g', +Inf, -Inf, NaN.
func (sb *scrapeBuf) writeFloat(f float64) {
	w := sb.bw
	switch {
	case f == 1:
		w.WriteByte('1')
	case f == 0:
		w.WriteByte('0')
	case f == -1:
		w.WriteString("-1")
	case math.IsNaN(f):
		w.WriteString("NaN")
	case math.IsInf(f, 1):
		w.WriteString("+Inf")
	case math.IsInf(f, -1):
		w.WriteString("-Inf")
	default:
		sb.num = strconv.AppendFloat(sb.num[:0], f, 'g', -1, 64)
		w.Write(sb.num)
	}
}
