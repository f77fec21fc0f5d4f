//go:build linux

package receiver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/statsd"
)

// TimestampMode is what a line's DogStatsD 1.3 timestamp (|T<unix
// seconds>) does (key timestamps).
type TimestampMode uint8

const (
	// TimestampsIgnore aggregates a timestamped line as if it had come
	// without one, now. The zero value and the default.
	TimestampsIgnore TimestampMode = iota
	// TimestampsHonor aggregates a timestamped counter or gauge into the
	// flush interval its timestamp falls in (aggregator.TimestampSlots);
	// one older than TimestampMaxAge or more than TimestampMaxAhead ahead
	// is skipped and counted. Timers and sets ignore their timestamp.
	TimestampsHonor
)

// timestampModeNames are the timestamps key's values, by mode.
var timestampModeNames = [...]string{TimestampsIgnore: "ignore", TimestampsHonor: "honor"}

// TimestampModes maps the timestamps key's values to theirs.
var TimestampModes = func() map[string]TimestampMode {
	m := make(map[string]TimestampMode, len(timestampModeNames))
	for mode, name := range timestampModeNames {
		m[name] = TimestampMode(mode)
	}
	return m
}()

// String is the mode's value of the timestamps key.
func (m TimestampMode) String() string {
	return timestampModeNames[min(int(m), len(timestampModeNames)-1)]
}

// TimestampMaxAhead is how far in the future a timestamp may be, for the
// sender's clock, with timestamps = "honor".
const TimestampMaxAhead = time.Minute

// tsOutcome is what happened to a timestamped line: the outcome label of
// garner_receiver_timestamped_lines_total.
type tsOutcome uint8

const (
	tsHonored      tsOutcome = iota // aggregated into its timestamp's interval
	tsIgnored                       // timestamps = "ignore": aggregated as received now
	tsIgnoredTimer                  // honor, but a timer: aggregated as received now
	tsIgnoredSet                    // honor, but a set: aggregated as received now
	tsTooOld                        // older than timestamp-max-age: dropped
	tsTooNew                        // more than a minute ahead: dropped
	nTsOutcomes
)

var tsOutcomeNames = [nTsOutcomes]string{"honored", "ignored", "ignored_timer", "ignored_set", "skipped_too_old", "skipped_too_new"}

func (o tsOutcome) String() string { return tsOutcomeNames[o] }

// dropReason is the reason label of
// garner_receiver_timestamp_dropped_lines_total for an outcome that drops
// the line, "" for the others.
func (o tsOutcome) dropReason() string {
	switch o {
	case tsTooOld:
		return "too_old"
	case tsTooNew:
		return "too_new"
	}
	return ""
}

// timestampCounters are the counters of timestamped lines: every outcome,
// and the drops again in a drop counter (the status page sums those).
type timestampCounters struct {
	outcomes, dropped *prometheus.CounterVec
}

// newTimestampCounters makes the counters with cv (newReceiverMetrics').
func newTimestampCounters(cv func(name, help string, labels ...string) *prometheus.CounterVec) timestampCounters {
	return timestampCounters{
		outcomes: cv("garner_receiver_timestamped_lines_total",
			"Metric lines with a DogStatsD timestamp (|T<unix seconds>), by what became of them: honored (aggregated into the flush interval of the timestamp), ignored (timestamps = \"ignore\"), ignored_timer and ignored_set (timestamps = \"honor\", aggregated as received now), skipped_too_old (older than timestamp-max-age) and skipped_too_new (more than 1m ahead): both dropped, also counted in garner_receiver_timestamp_dropped_lines_total.",
			"receiver", "outcome"),
		dropped: cv("garner_receiver_timestamp_dropped_lines_total",
			"Metric lines dropped with timestamps = \"honor\" for their DogStatsD timestamp, by reason: too_old (older than timestamp-max-age), too_new (more than 1m ahead). Forwarded points count with receiver=\"forwarded\".",
			"receiver", "reason"),
	}
}

// children returns the counters of receiver by outcome: the outcome's, and
// for a drop the drop counter's (nil for the others).
func (c timestampCounters) children(receiver string) (outcomes, dropped [nTsOutcomes]prometheus.Counter) {
	for o := range outcomes {
		outcomes[o] = c.outcomes.WithLabelValues(receiver, tsOutcome(o).String())
		if reason := tsOutcome(o).dropReason(); reason != "" {
			dropped[o] = c.dropped.WithLabelValues(receiver, reason)
		}
	}
	return outcomes, dropped
}

// countTimestamped adds n lines of outcome o to the children.
func countTimestamped(outcomes, dropped *[nTsOutcomes]prometheus.Counter, o tsOutcome, n uint64) {
	outcomes[o].Add(float64(n))
	if dropped[o] != nil {
		dropped[o].Add(float64(n))
	}
}

// lineTime is when a parsed metric line's samples are for: 0 (now), or
// its timestamp in unix nanoseconds with timestamps = "honor". ok is false
// when the line is to be dropped, its timestamp out of range (counted and
// logged here).
func (r *LineHandler) lineTime(line []byte) (at int64, ok bool) {
	m := &r.m
	if m.Timestamp == 0 {
		return 0, true
	}
	l := r.l
	switch {
	case l.opts.Timestamps != TimestampsHonor:
		r.nTimestamped[tsIgnored]++
		return 0, true
	case m.Type == statsd.Timer:
		r.nTimestamped[tsIgnoredTimer]++
		return 0, true
	case m.Type == statsd.Set:
		r.nTimestamped[tsIgnoredSet]++
		return 0, true
	}
	now := time.Now()
	ts := time.Unix(m.Timestamp, 0)
	if outcome := l.timeOutcome(ts, now); outcome != tsHonored {
		r.skipTimestamp(outcome, line, ts, now)
		return 0, false
	}
	r.nTimestamped[tsHonored]++
	return ts.UnixNano(), true
}

// timeOutcome says whether a timestamp ts is honored at now, or skipped
// as too old or too new.
func (l *Lines) timeOutcome(ts, now time.Time) tsOutcome {
	maxAge := l.opts.TimestampMaxAge
	if maxAge <= 0 {
		maxAge = DefaultOptions().TimestampMaxAge
	}
	switch {
	case ts.Before(now.Add(-maxAge)):
		return tsTooOld
	case ts.After(now.Add(TimestampMaxAhead)):
		return tsTooNew
	}
	return tsHonored
}

// forwardedReceiver is the receiver label of forwarded points' outcomes
// in garner_receiver_timestamped_lines_total.
const forwardedReceiver = "forwarded"

// forwardedTime is what a forwarded counter's or gauge's time (unix nanos;
// v3 time_unix_nano) becomes: itself with timestamps = "honor", 0 (now)
// with "ignore". ok is false for a point to drop, out of the same range as
// a line's timestamp (it may have waited in a forwarder's retry buffer).
// Counted with the receiver label "forwarded".
func (l *Lines) forwardedTime(at int64) (_ int64, ok bool) {
	if at == 0 {
		return 0, true
	}
	if l.opts.Timestamps != TimestampsHonor {
		countTimestamped(&l.fwdTs, &l.fwdTsDropped, tsIgnored, 1)
		return 0, true
	}
	now := time.Now()
	outcome := l.timeOutcome(time.Unix(0, at), now)
	countTimestamped(&l.fwdTs, &l.fwdTsDropped, outcome, 1)
	if outcome != tsHonored {
		if e := l.badLog.Entry(l.log); e != nil {
			e.WithFields(logrus.Fields{"receiver": forwardedReceiver, "reason": outcome.String(),
				"timestamp": time.Unix(0, at).UTC().Format(time.RFC3339)}).Warn("skipping a forwarded point whose time is out of range")
		}
		return 0, false
	}
	return at, true
}

// skipTimestamp counts and logs (rate-limited, with the bad lines) a line
// dropped for its timestamp, and keeps it with the recent bad lines.
func (r *LineHandler) skipTimestamp(outcome tsOutcome, line []byte, ts, now time.Time) {
	r.nTimestamped[outcome]++
	src := r.source()
	r.l.bad.add(r.name, src, "timestamp_"+outcome.String(), line)
	if e := r.l.badLog.Entry(r.l.log); e != nil {
		if len(line) > 256 {
			line = line[:256]
		}
		f := logrus.Fields{"receiver": r.name, "reason": outcome.String(), "line": string(line),
			"timestamp": ts.UTC().Format(time.RFC3339), "age": now.Sub(ts).Round(time.Second).String()}
		if src != "" {
			f["source"] = src
		}
		e.WithFields(f).Warnf("skipping a line whose timestamp is out of range (timestamp-max-age %s, at most %s ahead)",
			r.l.opts.TimestampMaxAge, TimestampMaxAhead)
	}
}
