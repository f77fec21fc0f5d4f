package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/receiver"
)

type kind uint8

const (
	kString kind = iota
	kBool
	kInt
	kFloat
	kDuration
	kList // space- or comma-separated string, or an array
	kSize // bytes: 8388608 or "8MiB"
)

// key declares one config key: its dotted name ("*" stands for a dynamic
// section name), kind, default and help. Keys with flag set are also
// command-line flags of the same name. A plain key (to set) is read by Load
// into its field; its section's loader reads the others.
type key struct {
	name  string
	kind  kind
	def   any
	usage string
	flag  bool
	to    *dest
}

// dest is where a plain key goes: a key whose value is its Config field's as
// read, checked at most for its sign.
type dest struct {
	field func(*Config) any // a pointer to the field, of the key's kind (see readInto)
	sign  sign
}

// sign is what a plain key's value must be beyond its kind.
type sign uint8

const (
	anySign         sign = iota
	positiveSign         // > 0
	nonNegativeSign      // >= 0
)

// to, toPositive and toNonNegative declare a plain key's field: field
// returns a pointer to it.
func to(field func(*Config) any) *dest            { return &dest{field, anySign} }
func toPositive(field func(*Config) any) *dest    { return &dest{field, positiveSign} }
func toNonNegative(field func(*Config) any) *dest { return &dest{field, nonNegativeSign} }

func (k key) addFlag(fs *pflag.FlagSet) {
	// Only booleans are typed flags (so --ignore-host works without a value);
	// every other value is text parsed by the strict reader, whose errors
	// name the key. --help shows the key's kind and its one default: a
	// default the usage writes in words ("(default min(8, CPUs))") replaces
	// the value.
	usage, shown, inWords := k.usage, "", false
	if i := strings.LastIndex(usage, " (default "); i >= 0 && strings.HasSuffix(usage, ")") {
		usage, shown, inWords = usage[:i], usage[i+len(" (default "):len(usage)-1], true
	}
	var value string
	switch d := k.def.(type) {
	case bool:
		fs.Bool(k.name, d, usage)
		return
	case nil:
		if k.kind == kBool {
			fs.Bool(k.name, false, usage)
			return
		}
	case time.Duration:
		value = shortDuration(d)
	default:
		value = fmt.Sprint(d)
	}
	f := fs.VarPF(&textValue{s: value, kind: k.kind, words: inWords}, k.name, "", usage)
	if inWords {
		f.DefValue = shown
	}
}

// textValue is a non-boolean flag: its text, and its kind for --help.
type textValue struct {
	s     string
	kind  kind
	words bool // the default is shown in words: not quoted as a string
}

func (v *textValue) String() string     { return v.s }
func (v *textValue) Set(s string) error { v.s = s; return nil }

// Type names the kind in --help. Not "int": viper would convert such a
// flag itself, turning "abc" into 0 before the strict reader sees it.
func (v *textValue) Type() string {
	switch v.kind {
	case kInt:
		return "integer"
	case kFloat:
		return "number"
	case kDuration:
		return "duration"
	case kList:
		return "list"
	case kSize:
		return "size"
	}
	if v.words {
		return "text" // pflag quotes a "string" flag's default
	}
	return "string"
}

// The defaults of the components the top-level keys configure: the key
// table takes them from there, so that they exist once.
var (
	aggDefaults  = aggregator.DefaultOptions()
	lineDefaults = receiver.DefaultOptions()
	udpDefaults  = receiver.DefaultUDPOptions()
	tcpDefaults  = receiver.DefaultTCPOptions()
)

// sizeDefault writes a byte size default as a size key's value: 64KiB.
func sizeDefault(n int) string {
	for _, u := range []struct {
		suffix string
		size   int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.Itoa(n/u.size) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

// floatsDefault writes a list of numbers as a list key's value: "90 99".
func floatsDefault(fs []float64) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.Join(s, " ")
}

// coreKeys are the top-level keys. Names and defaults follow gostatsd where
// gostatsd has the key.
var coreKeys = []key{
	{"log-level", kString, "info", "Log level: error, warn, info, debug, trace", true, nil},
	{"verbose", kBool, false, "Log at debug level (gostatsd's flag; same as --log-level=debug)", true, nil},
	{"json", kBool, false, "Log in JSON", true, to(func(c *Config) any { return &c.LogJSON })},
	{"metrics-addr", kString, ":8125", "UDP address to receive statsd on, or a path for a unix datagram socket; empty = off", true, to(func(c *Config) any { return &c.MetricsAddr })},
	{"handover", kBool, false, "This garner takes over the statsd UDP port from a running one (zero-downtime restart, see README): it joins the port's SO_REUSEPORT group without the warning a process sharing the port otherwise gets", true, to(func(c *Config) any { return &c.Handover })},
	{"tcp-metrics-addr", kString, "", "TCP address to receive newline-delimited statsd on; empty = off", true, to(func(c *Config) any { return &c.TCPMetricsAddr })},
	{"max-readers", kInt, udpDefaults.Readers, "UDP sockets bound with SO_REUSEPORT, one reading goroutine each (default min(8, CPUs))", true, toPositive(func(c *Config) any { return &c.MaxReaders })},
	{"max-workers", kInt, aggDefaults.Shards, "Aggregation shards, one goroutine each (default CPUs)", true, toPositive(func(c *Config) any { return &c.MaxWorkers })},
	{"receive-batch-size", kInt, udpDefaults.BatchSize, "Datagrams read per recvmmsg call", true, toPositive(func(c *Config) any { return &c.ReceiveBatchSize })},
	{"max-datagram-size", kSize, sizeDefault(udpDefaults.DatagramSize), "UDP/unixgram read buffer per datagram; longer datagrams are truncated, their last line counted as bad", true, to(func(c *Config) any { return &c.MaxDatagramSize })},
	{"socket-receive-buffer", kSize, sizeDefault(udpDefaults.ReceiveBuffer), "SO_RCVBUF asked for each UDP socket (warned when the kernel grants less; raise net.core.rmem_max)", true, to(func(c *Config) any { return &c.SocketReceiveBuffer })},
	{"max-queue-size", kInt, aggDefaults.MaxQueuedSamples, "Samples (values of lines and forwarded series) queued per shard; beyond it they are dropped and counted in garner_aggregator_queue_dropped_lines_total", true, toPositive(func(c *Config) any { return &c.MaxQueueSize })},
	{"tcp-max-line-length", kSize, sizeDefault(tcpDefaults.MaxLineLength), "Longest TCP statsd line; a client that sends a longer one is disconnected", true, to(func(c *Config) any { return &c.TCPMaxLineLength })},
	{"tcp-max-connections", kInt, tcpDefaults.MaxConnections, "Concurrent TCP statsd clients; further ones are refused", true, toPositive(func(c *Config) any { return &c.TCPMaxConnections })},
	{"tcp-idle-timeout", kDuration, tcpDefaults.IdleTimeout, "A TCP statsd client that sends nothing for this long is disconnected", true, toPositive(func(c *Config) any { return &c.TCPIdleTimeout })},
	{"max-tags-per-line", kInt, lineDefaults.Limits.Tags, "Most tags one statsd line (metric, event or service check) may carry; a line with more is skipped and counted in garner_receiver_bad_lines_total{reason=\"too_many_tags\"}", true, toPositive(func(c *Config) any { return &c.LineLimits.Tags })},
	{"max-tag-length", kSize, sizeDefault(lineDefaults.Limits.TagLength), "Longest tag (key:value) on a statsd line, in bytes; a line with a longer one is skipped and counted as bad (reason tag_too_long)", true, toPositive(func(c *Config) any { return &c.LineLimits.TagLength })},
	{"max-packed-values", kInt, lineDefaults.Limits.Values, "Most values one packed statsd line (name:1:2:3|ms) may carry; a line with more is skipped and counted as bad (reason too_many_values)", true, toPositive(func(c *Config) any { return &c.LineLimits.Values })},
	{"max-event-length", kSize, "16KiB", "Longest event (title plus text) or service check message, in bytes, from statsd or HTTP ingestion; longer ones are dropped and counted in garner_events_dropped_total{reason=\"too_long\"}", true, toPositive(func(c *Config) any { return &c.MaxEventLength })},
	{"max-event-queue-size", kInt, 4096, "Events and service checks waiting for delivery to the backends; beyond it they are dropped and counted in garner_events_dropped_total{reason=\"queue_full\"}", true, toPositive(func(c *Config) any { return &c.MaxEventQueueSize })},
	{"bad-lines-per-minute", kFloat, lineDefaults.BadLinesPerMinute, "Bad lines logged per minute (burst 10); every bad line is counted regardless; 0 = never log", true, to(func(c *Config) any { return &c.BadLinesPerMinute })},
	{"backends", kList, "stdout", "Backends to flush to, space-separated: stdout, null, graphite, influxdb, datadog, prometheus, otlp, statsdaemon, exporter", true, to(func(c *Config) any { return &c.Backends })},
	{"flush-interval", kDuration, 10 * time.Second, "How often aggregates are flushed to the backends", true, toPositive(func(c *Config) any { return &c.FlushInterval })},
	{"flush-aligned", kBool, false, "Align flushes to multiples of flush-interval on the wall clock", true, to(func(c *Config) any { return &c.FlushAligned })},
	{"flush-offset", kDuration, time.Duration(0), "With flush-aligned, flush this long after each multiple", true, to(func(c *Config) any { return &c.FlushOffset })},
	{"backend-timeout", kDuration, time.Duration(0), "Deadline of one backend's flush; 0 = flush-interval", true, to(func(c *Config) any { return &c.BackendTimeout })},
	{"shutdown-timeout", kDuration, 10 * time.Second, "Bound on the final flush on SIGTERM/SIGINT", true, toPositive(func(c *Config) any { return &c.ShutdownTimeout })},
	{"percent-threshold", kList, floatsDefault(aggDefaults.PercentThresholds), "Timer percentiles, space-separated; negative = highest values (lower_-P); decimals allowed (99.9 → _99_9)", true, to(func(c *Config) any { return &c.PercentThreshold })},
	{"expiry-interval", kDuration, aggDefaults.Expiry.Counter, "An idle series is sent as zero (gauges: last value) until idle this long; 0 = never expire; negative = every flush", true, nil},
	{"expiry-interval-counter", kDuration, nil, "expiry-interval for counters (default expiry-interval)", true, nil},
	{"expiry-interval-gauge", kDuration, nil, "expiry-interval for gauges (default expiry-interval)", true, nil},
	{"expiry-interval-set", kDuration, nil, "expiry-interval for sets (default expiry-interval)", true, nil},
	{"expiry-interval-timer", kDuration, nil, "expiry-interval for timers (default expiry-interval)", true, nil},
	{"ignore-host", kBool, lineDefaults.IgnoreHost, "Use a metric's host: tag as its source (and drop the tag) instead of the sender IP", true, to(func(c *Config) any { return &c.IgnoreHost })},
	{"hostname", kString, "", "This host's name, for garner's own events and metrics (default os.Hostname)", true, to(func(c *Config) any { return &c.Hostname })},
	{"namespace", kString, "", "Prefix for every metric name: <namespace>.<name>", true, nil},
	{"default-tags", kList, "", "Tags added to every metric and event, space-separated", true, to(func(c *Config) any { return &c.DefaultTags })},
	{"memory-limit", kSize, "0", "Soft memory limit for the Go runtime (sets GOMEMLIMIT; the GC works harder near it instead of growing the heap), e.g. \"512MiB\"; 0 = GOMEMLIMIT from the environment or none", true, to(func(c *Config) any { return &c.MemoryLimit })},
	{"max-series", kInt, aggDefaults.MaxSeries, "Most series held at once (all types); samples of new series beyond it are counted in garner_series_rejected_total{reason=\"max_series\"}; 0 = unlimited", true, to(func(c *Config) any { return &c.MaxSeries })},
	{"max-series-per-metric", kInt, aggDefaults.MaxSeriesPerMetric, "Most series (tag sets and sources) of one metric name; beyond it new series are refused and counted; 0 = unlimited", true, to(func(c *Config) any { return &c.MaxSeriesPerMetric })},
	{"cardinality-overflow", kBool, aggDefaults.CardinalityOverflow, "Fold the samples of series refused by max-series-per-metric into one <name>.__overflow__ series, so totals stay visible", true, to(func(c *Config) any { return &c.CardinalityOverflow })},
	{"gauge-deltas", kBool, lineDefaults.GaugeDeltas, "A gauge value with a leading + or - changes the current value (statsd); false = absolute (gostatsd)", true, to(func(c *Config) any { return &c.GaugeDeltas })},
	{"histogram-limit", kInt, aggDefaults.HistogramLimit, "Most buckets a gsd_histogram tag may ask for; extra bounds are ignored", true, toPositive(func(c *Config) any { return &c.HistogramLimit })},
	{"disabled-sub-metrics.lower", kBool, false, "Do not emit timers' lower", false, nil},
	{"disabled-sub-metrics.lower-pct", kBool, false, "Do not emit timers' lower_-P", false, nil},
	{"disabled-sub-metrics.upper", kBool, false, "Do not emit timers' upper", false, nil},
	{"disabled-sub-metrics.upper-pct", kBool, false, "Do not emit timers' upper_P", false, nil},
	{"disabled-sub-metrics.count", kBool, false, "Do not emit timers' count", false, nil},
	{"disabled-sub-metrics.count-pct", kBool, false, "Do not emit timers' count_P", false, nil},
	{"disabled-sub-metrics.count-per-second", kBool, false, "Do not emit timers' count_ps", false, nil},
	{"disabled-sub-metrics.mean", kBool, false, "Do not emit timers' mean", false, nil},
	{"disabled-sub-metrics.mean-pct", kBool, false, "Do not emit timers' mean_P", false, nil},
	{"disabled-sub-metrics.median", kBool, false, "Do not emit timers' median", false, nil},
	{"disabled-sub-metrics.std", kBool, false, "Do not emit timers' std", false, nil},
	{"disabled-sub-metrics.sum", kBool, false, "Do not emit timers' sum", false, nil},
	{"disabled-sub-metrics.sum-pct", kBool, false, "Do not emit timers' sum_P", false, nil},
	{"disabled-sub-metrics.sum-squares", kBool, false, "Do not emit timers' sum_squares", false, nil},
	{"disabled-sub-metrics.sum-squares-pct", kBool, false, "Do not emit timers' sum_squares_P", false, nil},
}

// keyTables lists every section's keys; a section file adds its table here.
var keyTables = [][]key{
	coreKeys, graphiteKeys, influxdbKeys, datadogKeys, prometheusKeys, otlpKeys, statsdaemonKeys,
	exporterKeys, adminKeys, forwardKeys, filterKeys, timerKeys, gostatsdKeys, protocolKeys, tlsKeys, authKeys, socketKeys,
}

func allKeys() []key {
	var out []key
	for _, t := range keyTables {
		out = append(out, t...)
	}
	return out
}
