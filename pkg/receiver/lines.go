//go:build linux

package receiver

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/filter"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Options configures what every listener and series writer does with what
// it receives. Each field names its config key; start from DefaultOptions.
type Options struct {
	// IgnoreHost takes a metric's host: tag as its source, and drops the
	// tag, instead of the sender's address (key ignore-host). Default false.
	IgnoreHost bool
	// Namespace prefixes every line's name as <Namespace>.<name> (key
	// namespace); "" = none, the default. It is sanitised as names are.
	Namespace string
	// DefaultTags are added to every metric, event and service check (key
	// default-tags). Default none.
	DefaultTags []string
	// GaugeDeltas makes a gauge value with a leading + or - relative to
	// the current value (key gauge-deltas). Default true.
	GaugeDeltas bool
	// BadLinesPerMinute bounds the bad-line log (burst 10; key
	// bad-lines-per-minute); every bad line is counted regardless; 0 =
	// never log. Default 60.
	BadLinesPerMinute float64
	// Limits bounds what one statsd line may carry (keys max-tags-per-line,
	// max-tag-length, max-packed-values); a zero field is the parser's
	// default (statsd.MaxTags, statsd.MaxTagLength, statsd.MaxValues).
	Limits statsd.Limits
	// DisabledTagFormats are the tag styles not read (key tag-formats
	// lists the others): their characters are sanitised out of names as
	// any other. Zero, the default, reads every style (statsd.TagFormats).
	DisabledTagFormats statsd.TagFormats
	// Timestamps is what a line's DogStatsD timestamp (|T<unix seconds>)
	// does (key timestamps): TimestampsIgnore, the zero value and the
	// default, or TimestampsHonor (timestamps.go).
	Timestamps TimestampMode
	// TimestampMaxAge is how old a timestamp may be with TimestampsHonor
	// (key timestamp-max-age); an older line is skipped and counted. 0
	// means the default, 10m.
	TimestampMaxAge time.Duration
	// Rules shape every line and forwarded series: filters, tag rules and
	// name mappings (package filter; the filters config section). nil =
	// none, the default.
	Rules *filter.Rules
}

// DefaultOptions returns the options every key defaults to.
func DefaultOptions() Options {
	return Options{
		GaugeDeltas:       true,
		BadLinesPerMinute: 60,
		TimestampMaxAge:   10 * time.Minute,
		Limits:            statsd.Limits{Tags: statsd.MaxTags, TagLength: statsd.MaxTagLength, Values: statsd.MaxValues},
	}
}

// EventSink receives events and service checks. It must not block: a full
// queue drops and counts.
type EventSink interface {
	Event(e *model.Event)
	ServiceCheck(c *model.ServiceCheck)
}

// Lines is the line handling the listeners share: the options, the shaping
// rules, the receiver counters, the bad-line log and the recent bad lines.
// Each reading goroutine gets its own LineHandler from it, each request its
// own SeriesWriter. Its methods are safe for concurrent use.
type Lines struct {
	opts    Options
	agg     *aggregator.Aggregator
	events  EventSink // nil: events and service checks are dropped
	log     logrus.FieldLogger
	ns      []byte
	defTags [][]byte
	rules   atomic.Pointer[filter.Rules] // swapped by SetRules (SIGHUP)
	m       receiverMetrics
	badLog  *ratelog.Limiter
	bad     badLines
	// forwarded points' timestamp counters (timestamps.go)
	fwdTs, fwdTsDropped [nTsOutcomes]prometheus.Counter
}

type receiverMetrics struct {
	datagrams, lines, bytes, truncated, unknown *prometheus.CounterVec
	bad                                         *prometheus.CounterVec
	events                                      *prometheus.CounterVec
	timestamped                                 timestampCounters
}

func newReceiverMetrics(reg prometheus.Registerer) receiverMetrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := receiverMetrics{
		datagrams: cv("garner_receiver_datagrams_total", "Datagrams (or TCP reads) received.", "receiver"),
		lines:     cv("garner_receiver_lines_total", "Non-empty lines received, good and bad.", "receiver"),
		bytes:     cv("garner_receiver_bytes_total", "Bytes received.", "receiver"),
		truncated: cv("garner_receiver_truncated_datagrams_total", "Datagrams longer than the read buffer; their last line is dropped as bad.", "receiver"),
		unknown:   cv("garner_receiver_unknown_sections_total", "Sections skipped in otherwise good lines: unknown ones, those no backend carries (|c:, |e:, |card:) and optional event or service check fields with a bad value (d:abc, p:urgent).", "receiver"),
		bad:       cv("garner_receiver_bad_lines_total", "Lines skipped because they do not parse, by reason.", "receiver", "reason"),
		events:    cv("garner_receiver_events_total", "Events and service checks received.", "receiver", "kind"),
	}
	m.timestamped = newTimestampCounters(cv)
	reg.MustRegister(m.datagrams, m.lines, m.bytes, m.truncated, m.unknown, m.bad, m.events, m.timestamped.outcomes, m.timestamped.dropped)
	return m
}

// NewLines builds the line handling that feeds agg and events, and
// registers the garner_receiver_* counters with reg.
func NewLines(opts Options, agg *aggregator.Aggregator, events EventSink, log logrus.FieldLogger, reg prometheus.Registerer) *Lines {
	l := &Lines{
		opts: opts, agg: agg, events: events, log: log,
		m:      newReceiverMetrics(reg),
		badLog: ratelog.New(opts.BadLinesPerMinute/60, 10),
	}
	if ns := statsd.SanitizeName(opts.Namespace); ns != "" {
		l.ns = []byte(ns + ".")
	}
	for _, t := range opts.DefaultTags {
		l.defTags = append(l.defTags, []byte(t))
	}
	l.rules.Store(opts.Rules)
	l.fwdTs, l.fwdTsDropped = l.m.timestamped.children(forwardedReceiver)
	return l
}

// SetRules replaces the filters, tag rules and name mappings. Every
// LineHandler picks the new rules up at its next read, every SeriesWriter at
// its next series.
func (l *Lines) SetRules(r *filter.Rules) { l.rules.Store(r) }

// withDefaultTags returns tags with the default tags added, without
// duplicates: for events and service checks.
func (l *Lines) withDefaultTags(tags []string) []string {
	for _, d := range l.opts.DefaultTags {
		dup := false
		for _, t := range tags {
			if t == d {
				dup = true
				break
			}
		}
		if !dup {
			tags = append(tags, d)
		}
	}
	return tags
}

// event hands an event to the sink with the default tags added, its source
// set to src unless src is "", and its date set when it had none.
func (l *Lines) event(e *model.Event, src string) {
	l.stamp(&e.DateHappened, &e.Tags, &e.Source, src)
	if l.events != nil {
		l.events.Event(e)
	}
}

// serviceCheck is event for a service check.
func (l *Lines) serviceCheck(c *model.ServiceCheck, src string) {
	l.stamp(&c.Timestamp, &c.Tags, &c.Source, src)
	if l.events != nil {
		l.events.ServiceCheck(c)
	}
}

func (l *Lines) stamp(when *int64, tags *[]string, source *string, src string) {
	if src != "" {
		*source = src
	}
	if *when == 0 {
		*when = time.Now().Unix()
	}
	*tags = l.withDefaultTags(*tags)
}
