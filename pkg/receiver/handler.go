//go:build linux

package receiver

import (
	"bytes"
	"context"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// LineHandler turns one reading goroutine's statsd lines into samples: it
// parses each line, takes the host, shapes it (filters, tag rules, name
// mappings, namespace, default tags), builds its series key and adds its
// values to an aggregator.Batcher, which never blocks (a full shard queue
// drops and counts). It counts what it sees in the garner_receiver_*
// counters. Not safe for concurrent use.
type LineHandler struct {
	l       *Lines
	b       *aggregator.Batcher
	name    string
	m       statsd.Metric
	key     []byte
	tags    [][]byte
	srcAddr netip.Addr
	src     []byte
	srcOK   bool
	badRun  int // bad lines in a row

	rules  *filter.Rules  // what shaper was built from
	shaper *filter.Shaper // nil without filters, tag rules or mappings
	shaped filter.Metric  // the shaper's argument, kept to avoid an allocation

	// counts since the last Handoff, added to the metrics there
	nDatagrams, nLines, nBytes, nUnknown, nTruncated, nEvents, nChecks uint64
	nBad                                                               map[string]uint64
	nTimestamped                                                       [nTsOutcomes]uint64

	cDatagrams, cLines, cBytes, cUnknown, cTruncated prometheus.Counter
	cEvents, cChecks                                 prometheus.Counter
	cBad                                             map[string]prometheus.Counter
	cTimestamped, cTsDropped                         [nTsOutcomes]prometheus.Counter
}

// NewHandler returns a LineHandler whose counts are labelled
// receiver=name.
func (l *Lines) NewHandler(name string) *LineHandler {
	rm := l.m
	r := &LineHandler{
		l:          l,
		b:          l.agg.NewBatcher(aggregator.NeverBlock),
		name:       name,
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
	r.m.Limits = l.opts.Limits
	r.m.DisabledTagFormats = l.opts.DisabledTagFormats
	r.rules = l.rules.Load()
	r.shaper = r.rules.NewShaper(l.ns, l.defTags)
	for _, reason := range statsd.Reasons {
		r.cBad[reason] = rm.bad.WithLabelValues(name, reason)
	}
	r.cTimestamped, r.cTsDropped = rm.timestamped.children(name)
	return r
}

// HandleDatagram parses every line of buf, which came from source (the zero
// Addr when unknown, e.g. a unix socket). It may modify buf; buf may be
// reused once HandleDatagram returns. truncated says the datagram did not fit
// the read buffer: its last line is counted as bad instead of parsed.
func (r *LineHandler) HandleDatagram(buf []byte, source netip.Addr, truncated bool) {
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
func (r *LineHandler) HandleLine(line []byte) {
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
	r.nUnknown += uint64(m.Unknown)
	switch m.Kind {
	case statsd.KindEvent:
		r.nEvents++
		r.l.event(m.Event, r.source())
		return
	case statsd.KindServiceCheck:
		r.nChecks++
		r.l.serviceCheck(m.Check, r.source())
		return
	}

	at, ok := r.lineTime(line)
	if !ok {
		return
	}

	// The host, once: the sender's address, or with ignore-host the first
	// host: tag, which then leaves the tags.
	l := r.l
	var src []byte
	if r.srcOK {
		src = r.src
	}
	tags := r.tags[:0]
	hostTaken := !l.opts.IgnoreHost
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
		key = append(key, l.ns...)
		key = append(key, m.Name...)
		tags = append(tags, l.defTags...)
	}
	key = aggregator.AppendKeyTail(key, tags, src)
	r.key, r.tags = key, tags[:0]

	b := r.b
	b.SeriesAt(key, at)
	if m.Type == statsd.Set {
		b.Member(m.Member, m.Rate)
		return
	}
	if m.Unscaled {
		for _, v := range m.Values {
			b.UnscaledTimer(v, m.Rate)
		}
		return
	}
	deltas := m.Type == statsd.Gauge && l.opts.GaugeDeltas
	for i, v := range m.Values {
		b.Sample(m.Type, v, m.Rate, deltas && m.Delta[i])
	}
}

func (r *LineHandler) setSource(addr netip.Addr) {
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

// source is the sender's address, "" when unknown. It allocates: for events
// and bad lines only.
func (r *LineHandler) source() string {
	if !r.srcOK {
		return ""
	}
	return string(r.src)
}

// SetSource sets the source of the lines that follow (for TCP connections).
func (r *LineHandler) SetSource(addr netip.Addr) { r.setSource(addr) }

// Handoff submits every pending batch to the shards (never blocking) and
// publishes the counts. Listeners call it after each read (batch of
// datagrams), so nothing waits in a LineHandler for long.
func (r *LineHandler) Handoff() {
	r.b.Send(context.Background()) // drops are counted by the aggregator
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
	if r.shaper != nil {
		r.shaper.Publish()
	}
	for reason, n := range r.nBad {
		if n > 0 {
			r.cBad[reason].Add(float64(n))
			r.nBad[reason] = 0
		}
	}
	for o, n := range r.nTimestamped {
		if n > 0 {
			countTimestamped(&r.cTimestamped, &r.cTsDropped, tsOutcome(o), n)
			r.nTimestamped[o] = 0
		}
	}
}

// refreshRules picks up rules given to SetRules: one atomic load per read.
func (r *LineHandler) refreshRules() {
	if rules := r.l.rules.Load(); rules != r.rules {
		if r.shaper != nil {
			r.shaper.Publish()
		}
		r.rules = rules
		r.shaper = rules.NewShaper(r.l.ns, r.l.defTags)
	}
}

// CountRead counts one read of n bytes from a stream (TCP), in the
// datagrams and bytes counters.
func (r *LineHandler) CountRead(n int) {
	r.refreshRules()
	r.nDatagrams++
	r.nBytes += uint64(n)
}

// BadRun is the number of bad lines in a row since the last good one.
func (r *LineHandler) BadRun() int { return r.badRun }

// LineTooLong counts line as bad (longer than the limit) without parsing it.
func (r *LineHandler) LineTooLong(line []byte) {
	r.nLines++
	r.bad(statsd.ErrLineTooLong, line)
}

func (r *LineHandler) bad(err error, line []byte) {
	r.badRun++
	reason := "unknown"
	if pe, ok := err.(*statsd.Error); ok {
		reason = pe.Reason
	}
	r.nBad[reason]++
	src := r.source()
	r.l.bad.add(r.name, src, reason, line)
	if e := r.l.badLog.Entry(r.l.log); e != nil {
		if len(line) > 256 {
			line = line[:256]
		}
		f := logrus.Fields{"receiver": r.name, "reason": reason, "line": string(line)}
		if src != "" {
			f["source"] = src
		}
		e.WithFields(f).Warnf("skipping bad line: %v", err)
	}
}
