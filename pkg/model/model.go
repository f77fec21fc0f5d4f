// Package model is garner's data model between aggregation and output:
// the aggregates of one flush (Snapshot), events and service checks.
//
// Everything reachable from a Snapshot is immutable once the flusher hands it
// to the backends: backends may read it from several goroutines at once and
// must not modify it.
package model

import (
	"strconv"
	"strings"
	"time"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
)

// Series identifies one aggregated series: name, sorted de-duplicated tags
// and source (the sender's IP, or with ignore-host the value of its host: tag).
type Series struct {
	Name   string
	Tags   []string // "key:value" or bare "value", sorted, no duplicates
	Source string   // may be empty
}

// HasTag reports whether the series has a tag that starts with prefix.
func (s *Series) HasTag(prefix string) bool {
	for _, t := range s.Tags {
		if strings.HasPrefix(t, prefix) {
			return true
		}
	}
	return false
}

// Counter is a counter's aggregate over one flush interval.
type Counter struct {
	Series
	Value     float64 // sum of value/sample-rate of every sample
	PerSecond float64 // Value divided by the measured flush interval in seconds (by flush-interval for a past interval)
	// At is when this point is for, in unix nanoseconds, when it is not the
	// snapshot's Time: a past flush interval's end, for samples that came
	// with a DogStatsD timestamp (timestamps = "honor"). 0 = Snapshot.Time.
	// A series may then appear more than once in a snapshot, once per
	// interval; Snapshot.PastInterval is that interval's length.
	At int64
}

// Gauge is a gauge's value at the end of one flush interval.
type Gauge struct {
	Series
	Value float64
	At    int64 // as Counter.At
}

// Set is a set's aggregate over one flush interval.
type Set struct {
	Series
	// Members holds the unique values seen this interval; len(Members) is
	// the set's value when Sketch is nil. Never nil.
	Members map[string]struct{}
	// Sketch is the interval's HyperLogLog with set-aggregation = "hll"
	// (Members is then empty); nil otherwise.
	Sketch *hll.Sketch
	// Estimate is Sketch's estimated count of distinct members (exact
	// while the sketch is sparse); 0 without a Sketch.
	Estimate uint64
}

// Count is the set's value: the number of distinct members, or the
// sketch's estimate of it.
func (s Set) Count() int {
	if s.Sketch != nil {
		return int(s.Estimate)
	}
	return len(s.Members)
}

// Percentile is one named percentile sub-metric, e.g. {"upper_90", 12.5}.
type Percentile struct {
	Name  string
	Value float64
}

// Bucket is one cumulative histogram bucket: the number of values ≤ Le.
// The last bucket of a histogram has Le = +Inf.
type Bucket struct {
	Le    float64
	Count uint64
}

// Timer is a timer's (ms, h, d) aggregate over one flush interval. A timer
// with no samples this interval has all statistics zero and no percentiles.
type Timer struct {
	Series
	Values       []float64 // every sample, sorted ascending
	SampledCount float64   // Σ 1/rate over the samples
	Count        float64   // SampledCount rounded to the nearest integer
	PerSecond    float64   // SampledCount / measured flush interval in seconds
	Lower        float64
	Upper        float64
	Mean         float64
	Median       float64
	Std          float64 // population standard deviation
	Sum          float64
	SumSquares   float64
	Percentiles  []Percentile // in percent-threshold order; disabled sub-metrics left out
	// Histogram is set instead of the statistics above when the series has a
	// gsd_histogram:<b1>_<b2>_... tag.
	Histogram []Bucket
	// Exp is the interval's exponential histogram with timer-aggregation =
	// "histogram" (Values is then nil, and Median and the percentiles are
	// estimated from it); nil otherwise. Count, Lower, Upper, Sum and
	// SumSquares stay exact.
	Exp *histogram.Histogram
	// Unscaled says the series' last value came as h or d rather than ms
	// (from a statsd listener; false off the forwarding wire): the exporter
	// observes such values as they are, as statsd_exporter does, and ms
	// values ÷ 1000. Other backends treat all three alike.
	Unscaled bool
}

// Snapshot is everything one flush hands to the backends.
type Snapshot struct {
	Time     time.Time     // when the flush started
	Interval time.Duration // measured time since the previous flush
	// PastInterval is the length of the past flush intervals that points
	// with an At are for (timestamps = "honor"): flush-interval.
	PastInterval time.Duration
	Counters     []Counter
	Gauges       []Gauge
	Sets         []Set
	Timers       []Timer
	// Disabled lists the timer sub-metrics the operator switched off
	// (disabled-sub-metrics); backends leave them out.
	Disabled SubMetrics
}

// Len is the number of series in the snapshot.
func (s *Snapshot) Len() int {
	return len(s.Counters) + len(s.Gauges) + len(s.Sets) + len(s.Timers)
}

// SubMetrics is a set of timer sub-metrics, used for disabled-sub-metrics.
type SubMetrics uint32

// Timer sub-metrics that can be disabled, named as the disabled-sub-metrics keys.
const (
	SubLower SubMetrics = 1 << iota
	SubLowerPct
	SubUpper
	SubUpperPct
	SubCount
	SubCountPct
	SubCountPerSecond
	SubMean
	SubMeanPct
	SubMedian
	SubStd
	SubSum
	SubSumPct
	SubSumSquares
	SubSumSquaresPct
)

// SubMetricKeys maps each disabled-sub-metrics config key to its bit.
var SubMetricKeys = map[string]SubMetrics{
	"lower": SubLower, "lower-pct": SubLowerPct, "upper": SubUpper, "upper-pct": SubUpperPct,
	"count": SubCount, "count-pct": SubCountPct, "count-per-second": SubCountPerSecond,
	"mean": SubMean, "mean-pct": SubMeanPct, "median": SubMedian, "std": SubStd,
	"sum": SubSum, "sum-pct": SubSumPct, "sum-squares": SubSumSquares, "sum-squares-pct": SubSumSquaresPct,
}

// Has reports whether every bit of x is in s.
func (s SubMetrics) Has(x SubMetrics) bool { return s&x == x }

// TimerStat is one of a timer's main statistics, in the order gostatsd writes them.
type TimerStat struct {
	Name  string // sub-metric name: "lower", "count_ps", ...
	Sub   SubMetrics
	Value func(*Timer) float64
}

// TimerStats lists the main timer statistics in gostatsd's output order, so that
// every backend names and orders them the same way.
var TimerStats = []TimerStat{
	{"lower", SubLower, func(t *Timer) float64 { return t.Lower }},
	{"upper", SubUpper, func(t *Timer) float64 { return t.Upper }},
	{"count", SubCount, func(t *Timer) float64 { return t.Count }},
	{"count_ps", SubCountPerSecond, func(t *Timer) float64 { return t.PerSecond }},
	{"mean", SubMean, func(t *Timer) float64 { return t.Mean }},
	{"median", SubMedian, func(t *Timer) float64 { return t.Median }},
	{"std", SubStd, func(t *Timer) float64 { return t.Std }},
	{"sum", SubSum, func(t *Timer) float64 { return t.Sum }},
	{"sum_squares", SubSumSquares, func(t *Timer) float64 { return t.SumSquares }},
}

// FormatBound formats a histogram bound as it appears in an le tag: shortest
// decimal, "+Inf" for the last bucket.
func FormatBound(le float64) string {
	if le > 1e308 {
		return "+Inf"
	}
	return strconv.FormatFloat(le, 'f', -1, 64)
}

// Priority of an event.
type Priority uint8

// Event priorities (DogStatsD p:).
const (
	PriorityNormal Priority = iota
	PriorityLow
)

// priorityNames are the DogStatsD names of the priorities, by value.
var priorityNames = []string{PriorityNormal: "normal", PriorityLow: "low"}

// String is p's DogStatsD name; a value out of range is "normal".
func (p Priority) String() string { return enumName(priorityNames, p) }

// ParsePriority returns the priority DogStatsD names s (as String writes
// it), and false for any other s.
func ParsePriority(s string) (Priority, bool) { return parseEnum[Priority](priorityNames, s) }

// AlertType of an event.
type AlertType uint8

// Event alert types (DogStatsD t:).
const (
	AlertInfo AlertType = iota
	AlertWarning
	AlertError
	AlertSuccess
)

// alertTypeNames are the DogStatsD names of the alert types, by value.
var alertTypeNames = []string{AlertInfo: "info", AlertWarning: "warning", AlertError: "error", AlertSuccess: "success"}

// String is a's DogStatsD name; a value out of range is "info".
func (a AlertType) String() string { return enumName(alertTypeNames, a) }

// ParseAlertType returns the alert type DogStatsD names s (as String writes
// it), and false for any other s.
func ParseAlertType(s string) (AlertType, bool) { return parseEnum[AlertType](alertTypeNames, s) }

// enumName is names[v], or names[0] (the zero value's) when v is out of range.
func enumName[T ~uint8](names []string, v T) string {
	if int(v) < len(names) {
		return names[v]
	}
	return names[0]
}

// parseEnum is the value names gives the name s.
func parseEnum[T ~uint8](names []string, s string) (T, bool) {
	for i, n := range names {
		if n == s {
			return T(i), true
		}
	}
	return 0, false
}

// Event is a DogStatsD event (_e{...}).
type Event struct {
	Title          string
	Text           string
	DateHappened   int64 // unix seconds; set to the receive time when the sender gave none
	Hostname       string
	AggregationKey string
	SourceTypeName string
	Tags           []string
	Source         string // sender IP
	Priority       Priority
	AlertType      AlertType
}

// CheckStatus is a service check's status.
type CheckStatus uint8

// Service check statuses (DogStatsD _sc).
const (
	CheckOK CheckStatus = iota
	CheckWarning
	CheckCritical
	CheckUnknown
)

func (c CheckStatus) String() string {
	switch c {
	case CheckOK:
		return "ok"
	case CheckWarning:
		return "warning"
	case CheckCritical:
		return "critical"
	}
	return "unknown"
}

// ServiceCheck is a DogStatsD service check (_sc|...).
type ServiceCheck struct {
	Name      string
	Status    CheckStatus
	Timestamp int64 // unix seconds; receive time when the sender gave none
	Hostname  string
	Tags      []string
	Message   string
	Source    string // sender IP
}
