package aggregator

import (
	"bytes"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/statsd"
)

const (
	batchRecords = 512       // records per batch before it is handed over
	batchBytes   = 32 * 1024 // key bytes per batch before it is handed over
)

// record is one sample. Its series key lives in the batch's arena at
// [off, off+klen): name \x00 tags (comma-joined, sorted) \x00 source.
type record struct {
	off, klen  uint32
	nlen, tlen uint32
	moff, mlen uint32 // set member in the arena
	val        float64
	rate       float64
	typ        statsd.Type
	delta      bool
}

// batch is what a Router hands to one shard.
type batch struct {
	recs  []record
	arena []byte
	now   int64 // unix nanos when the batch was started
}

var batchPool = sync.Pool{New: func() any {
	return &batch{recs: make([]record, 0, batchRecords), arena: make([]byte, 0, batchBytes+4096)}
}}

func putBatch(b *batch) {
	b.recs = b.recs[:0]
	b.arena = b.arena[:0]
	batchPool.Put(b)
}

type receiverMetrics struct {
	datagrams, lines, bytes, truncated, unknown *prometheus.CounterVec
	bad                                         *prometheus.CounterVec
	events                                      *prometheus.CounterVec
}

func newReceiverMetrics() receiverMetrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	return receiverMetrics{
		datagrams: cv("garner_receiver_datagrams_total", "Datagrams (or TCP reads) received.", "receiver"),
		lines:     cv("garner_receiver_lines_total", "Non-empty lines received, good and bad.", "receiver"),
		bytes:     cv("garner_receiver_bytes_total", "Bytes received.", "receiver"),
		truncated: cv("garner_receiver_truncated_datagrams_total", "Datagrams longer than the read buffer; their last line is dropped as bad.", "receiver"),
		unknown:   cv("garner_receiver_unknown_sections_total", "Unknown |sections skipped in otherwise good lines.", "receiver"),
		bad:       cv("garner_receiver_bad_lines_total", "Lines skipped because they do not parse, by reason.", "receiver", "reason"),
		events:    cv("garner_receiver_events_total", "Events and service checks received.", "receiver", "kind"),
	}
}

func (m receiverMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.datagrams, m.lines, m.bytes, m.truncated, m.unknown, m.bad, m.events)
}

// Router parses datagrams and routes their samples to the shards. Each
// reading goroutine owns one Router; it is not safe for concurrent use.
type Router struct {
	a       *Aggregator
	name    string
	m       statsd.Metric
	pending []*batch
	key     []byte
	tags    [][]byte
	srcAddr netip.Addr
	src     []byte
	srcOK   bool
	badRun  int // bad lines in a row

	rules  *filter.Rules  // what shaper was built from
	shaper *filter.Shaper // nil without filters, tag rules or mappings
	shaped filter.Metric  // the shaper's argument, kept to avoid an allocation

	// counts since the last Flush, added to the metrics there
	nDatagrams, nLines, nBytes, nUnknown, nTruncated, nDropped, nEvents, nChecks uint64
	nBad                                                                         map[string]uint64

	cDatagrams, cLines, cBytes, cUnknown, cTruncated prometheus.Counter
	cEvents, cChecks                                 prometheus.Counter
	cBad                                             map[string]prometheus.Counter
}

// NewRouter returns a Router whose counts are labelled receiver=name.
func (a *Aggregator) NewRouter(name string) *Router {
	rm := a.m.receiver
	r := &Router{
		a:          a,
		name:       name,
		pending:    make([]*batch, len(a.shards)),
		nBad:       make(map[string]uint64),
		cBad:       make(map[string]prometheus.Counter),
		cDatagrams: rm.datagrams.WithLabelValues(name),
		cLines:     rm.lines.WithLabelValues(name),
		cBytes:     rm.bytes.WithLabelValues(name),
		cUnknown:   rm.unknown.WithLabelValues(name),
		cTruncated: rm.truncated.WithLabelValues(name),
		cEvents:    rm.events.WithLabelValues(name, "event"),
		cChecks:    rm.events.WithLabelValues(name, "service_check"),
	}
	r.m.Limits = a.opts.Limits
	r.rules = a.rules.Load()
	r.shaper = r.rules.NewShaper(a.ns, a.defTags)
	for _, reason := range statsd.Reasons {
		r.cBad[reason] = rm.bad.WithLabelValues(name, reason)
	}
	return r
}

// HandleDatagram parses every line of buf, which came from source (the zero
// Addr when unknown, e.g. a unix socket). It may modify buf; buf may be
// reused once HandleDatagram returns. truncated says the datagram did not fit
// the read buffer: its last line is counted as bad instead of parsed.
func (r *Router) HandleDatagram(buf []byte, source netip.Addr, truncated bool) {
	r.refreshRules()
	r.nDatagrams++
	r.nBytes += uint64(len(buf))
	r.setSource(source)
	if truncated {
		r.nTruncated++
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			r.LineTooLong(buf[i+1:])
			buf = buf[:i]
		} else {
			r.LineTooLong(buf)
			return
		}
	}
	for len(buf) > 0 {
		var line []byte
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line, buf = buf[:i], buf[i+1:]
		} else {
			line, buf = buf, nil
		}
		r.HandleLine(line)
	}
}

// HandleLine parses one line (without '\n') from the source last given to
// HandleDatagram or SetSource.
func (r *Router) HandleLine(line []byte) {
	if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
		return
	}
	r.nLines++
	m := &r.m
	if err := m.Parse(line); err != nil {
		r.bad(err, line)
		return
	}
	r.badRun = 0
	switch m.Kind {
	case statsd.KindEvent:
		r.nEvents++
		r.handleEvent()
		return
	case statsd.KindServiceCheck:
		r.nChecks++
		r.handleCheck()
		return
	}
	r.nUnknown += uint64(m.Unknown)

	// Series key: name \x00 tags \x00 source.
	a := r.a
	var src []byte
	if r.srcOK {
		src = r.src
	}
	tags := r.tags[:0]
	hostTaken := !a.opts.IgnoreHost
	if !hostTaken {
		src = nil
	}
	for _, t := range m.Tags {
		if !hostTaken && len(t) >= 5 && string(t[:5]) == "host:" {
			src = t[5:]
			hostTaken = true
			continue
		}
		tags = append(tags, t)
	}
	key := r.key[:0]
	if r.shaper != nil { // filters, tag rules, mappings; namespace and default tags
		sm := &r.shaped
		sm.Name, sm.Tags, sm.Source = m.Name, tags, src
		var keep bool
		key, keep = r.shaper.Apply(key, sm)
		tags, src = sm.Tags, sm.Source
		*sm = filter.Metric{}
		if !keep { // dropped by a filter: no series
			r.key, r.tags = key, tags[:0]
			return
		}
	} else {
		key = append(key, a.ns...)
		key = append(key, m.Name...)
		tags = append(tags, a.defTags...)
	}
	nlen := len(key)
	key = append(key, 0)
	tags = sortDedup(tags)
	r.tags = tags
	for i, t := range tags {
		if i > 0 {
			key = append(key, ',')
		}
		key = append(key, t...)
	}
	tlen := len(key) - nlen - 1
	key = append(key, 0)
	key = append(key, src...)
	r.key = key

	si := a.shardIndex(key)
	b := r.pending[si]
	if b == nil {
		b = batchPool.Get().(*batch)
		b.now = time.Now().UnixNano()
		r.pending[si] = b
	}
	off := uint32(len(b.arena))
	b.arena = append(b.arena, key...)
	rec := record{off: off, klen: uint32(len(key)), nlen: uint32(nlen), tlen: uint32(tlen), rate: m.Rate, typ: m.Type}
	if m.Type == statsd.Set {
		rec.moff = uint32(len(b.arena))
		rec.mlen = uint32(len(m.Member))
		b.arena = append(b.arena, m.Member...)
		b.recs = append(b.recs, rec)
	} else {
		for i, v := range m.Values {
			rec.val = v
			rec.delta = m.Type == statsd.Gauge && a.opts.GaugeDeltas && m.Delta[i]
			b.recs = append(b.recs, rec)
		}
	}
	if len(b.recs) >= batchRecords || len(b.arena) >= batchBytes {
		r.send(si)
	}
}

// sortDedup sorts tags in place (insertion sort: lines carry few tags) and
// removes duplicates.
func sortDedup(tags [][]byte) [][]byte {
	for i := 1; i < len(tags); i++ {
		for j := i; j > 0 && bytes.Compare(tags[j], tags[j-1]) < 0; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
	out := tags[:0]
	for i, t := range tags {
		if i > 0 && bytes.Equal(t, tags[i-1]) {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (r *Router) setSource(addr netip.Addr) {
	addr = addr.Unmap()
	if addr == r.srcAddr && (r.srcOK || !addr.IsValid()) {
		return
	}
	r.srcAddr = addr
	r.srcOK = addr.IsValid()
	r.src = r.src[:0]
	if r.srcOK {
		r.src = addr.AppendTo(r.src)
	}
}

// SetSource sets the source of the lines that follow (for TCP connections).
func (r *Router) SetSource(addr netip.Addr) { r.setSource(addr) }

func (r *Router) send(si int) {
	b := r.pending[si]
	r.pending[si] = nil
	s := r.a.shards[si]
	n := int64(len(b.recs))
	if s.queued.Add(n) > int64(s.limit) {
		s.queued.Add(-n)
		r.nDropped += uint64(n)
		putBatch(b)
		return
	}
	select {
	case s.in <- b:
	default:
		s.queued.Add(-n)
		r.nDropped += uint64(n)
		putBatch(b)
	}
}

// Flush hands every pending batch to its shard and publishes the counts.
// Readers call it after each read (batch of datagrams), so nothing waits in a
// Router for long.
func (r *Router) Flush() {
	for i, b := range r.pending {
		if b != nil {
			r.send(i)
		}
	}
	add := func(c prometheus.Counter, n *uint64) {
		if *n > 0 {
			c.Add(float64(*n))
			*n = 0
		}
	}
	add(r.cDatagrams, &r.nDatagrams)
	add(r.cLines, &r.nLines)
	add(r.cBytes, &r.nBytes)
	add(r.cUnknown, &r.nUnknown)
	add(r.cTruncated, &r.nTruncated)
	add(r.cEvents, &r.nEvents)
	add(r.cChecks, &r.nChecks)
	add(r.a.m.queueDropped, &r.nDropped)
	if r.shaper != nil {
		r.shaper.Publish()
	}

	for reason, n := range r.nBad {
		if n > 0 {
			r.cBad[reason].Add(float64(n))
			r.nBad[reason] = 0
		}
	}
}

// refreshRules picks up rules given to SetRules: one atomic load per read.
func (r *Router) refreshRules() {
	if rules := r.a.rules.Load(); rules != r.rules {
		if r.shaper != nil {
			r.shaper.Publish()
		}
		r.rules = rules
		r.shaper = rules.NewShaper(r.a.ns, r.a.defTags)
	}
}

// CountRead counts one read of n bytes from a stream (TCP), in the
// datagrams and bytes counters.
func (r *Router) CountRead(n int) {
	r.refreshRules()
	r.nDatagrams++
	r.nBytes += uint64(n)
}

// BadRun is the number of bad lines in a row since the last good one.
func (r *Router) BadRun() int { return r.badRun }

// LineTooLong counts line as bad (longer than the limit) without parsing it.
func (r *Router) LineTooLong(line []byte) {
	r.nLines++
	r.bad(statsd.ErrLineTooLong, line)
}

func (r *Router) bad(err error, line []byte) {
	r.badRun++
	reason := "unknown"
	if pe, ok := err.(*statsd.Error); ok {
		reason = pe.Reason
	}
	r.nBad[reason]++
	src := ""
	if r.srcOK {
		src = string(r.src)
	}
	r.a.bad.add(r.name, src, reason, line)
	if ok, suppressed := r.a.badLog.allow(); ok {
		if len(line) > 256 {
			line = line[:256]
		}
		f := logrus.Fields{"receiver": r.name, "reason": reason, "line": string(line)}
		if r.srcOK {
			f["source"] = string(r.src)
		}
		if suppressed > 0 {
			f["suppressed"] = suppressed
		}
		r.a.log.WithFields(f).Warnf("skipping bad line: %v", err)
	}
}

func (r *Router) handleEvent() {
	e := r.m.Event
	if r.srcOK {
		e.Source = string(r.src)
	}
	if e.DateHappened == 0 {
		e.DateHappened = time.Now().Unix()
	}
	e.Tags = r.a.withDefaultTags(e.Tags)
	if r.a.events != nil {
		r.a.events.Event(e)
	}
}

func (r *Router) handleCheck() {
	c := r.m.Check
	if r.srcOK {
		c.Source = string(r.src)
	}
	if c.Timestamp == 0 {
		c.Timestamp = time.Now().Unix()
	}
	c.Tags = r.a.withDefaultTags(c.Tags)
	if r.a.events != nil {
		r.a.events.ServiceCheck(c)
	}
}
