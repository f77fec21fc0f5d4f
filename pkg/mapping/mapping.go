// Package mapping is statsd_exporter's mapping file, implemented in garner:
// the YAML format is the contract (mappings with glob or regex matches,
// name and label templates, honor_labels, action: drop, match_metric_type,
// observer_type / timer_type, summary_options, histogram_options, ttl and
// the defaults section); statsd_exporter's code is not a dependency.
//
// # Matching order
//
// As in statsd_exporter, glob mappings are tried before regex mappings,
// whatever their order in the file. Among the glob mappings that match, the
// first in the file wins; with defaults.glob_disable_ordering a literal
// component is preferred over a "*" at each dot-separated component, from
// the left. A glob "*" matches exactly one whole component (possibly
// empty); a glob and the name must have the same number of components.
// Regex mappings are then tried in file order (unanchored, as Go's regexp
// matches them); the first that matches and whose match_metric_type allows
// the metric's type wins. No match: the name is escaped (EscapeName) and
// kept with the metric's own tags.
//
// # Templates
//
// In name and label values, glob mappings replace $N and ${N} with the
// N-th "*" (from 1); a reference to a capture that does not exist, or that
// is not a plain number ($1_total is the reference "1_total"), becomes "".
// Regex mappings expand templates as Go's regexp.Expand does.
package mapping

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// MetricType is a statsd metric type as match_metric_type names it.
type MetricType uint8

// The metric types mappings can be restricted to. Sets are matched as
// gauges: they are exported as a gauge of unique members.
const (
	AnyType  MetricType = iota // match_metric_type not set
	Counter                    // "counter"
	Gauge                      // "gauge"
	Observer                   // "observer" (timers, histograms, distributions); "timer" is accepted too
	numTypes
)

func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Observer:
		return "observer"
	}
	return ""
}

// ObserverType is how a mapping exports timers.
type ObserverType uint8

// Observer types; the zero value, as in statsd_exporter, is a summary.
const (
	Summary ObserverType = iota
	Histogram
)

func (o ObserverType) String() string {
	if o == Histogram {
		return "histogram"
	}
	return "summary"
}

// Objective is one summary quantile with its allowed rank error.
type Objective struct {
	Quantile float64
	Error    float64
}

// SummaryOptions are a summary's settings. Zero MaxAge, AgeBuckets and
// BufCap mean client_golang's defaults (10m, 5, 500).
type SummaryOptions struct {
	Quantiles  []Objective
	MaxAge     time.Duration
	AgeBuckets uint32
	BufCap     uint32
}

// HistogramOptions are a histogram's settings. NativeBucketFactor > 1 adds
// a native (sparse, exponential) histogram for the protobuf exposition;
// NativeMaxBuckets bounds its bucket count (0 = unbounded).
type HistogramOptions struct {
	Buckets            []float64
	NativeBucketFactor float64
	NativeMaxBuckets   uint32
}

// Label is one label name with its value (a template in a Mapping, the
// expanded value in a Result).
type Label struct {
	Name, Value string
}

// Mapping is one entry of the mappings list, with the defaults applied.
// Read-only once returned by Parse.
type Mapping struct {
	Line            int // line of the entry in the file
	Match           string
	Regex           bool
	Name            string // template
	Labels          []Label
	HonorLabels     bool
	Drop            bool
	MatchMetricType MetricType
	ObserverType    ObserverType
	Summary         SummaryOptions
	Histogram       HistogramOptions
	TTL             time.Duration // 0 = the series never expires
	Help            string        // "" = none given
	Scale           float64       // multiplies observed values; 1 unless scale is set

	re     *regexp.Regexp
	name   template
	labels []template
}

// Result is what a name maps to. Mapping is nil for a name no mapping
// matched (Name is then the escaped name, Labels nil). Name is escaped
// (EscapeName); Labels are sorted by name. Read-only: results are cached.
type Result struct {
	Mapping *Mapping
	Name    string
	Labels  []Label
}

// Mapper maps statsd names to Prometheus names and labels. Safe for
// concurrent use; results are cached per (name, type), up to a bound.
type Mapper struct {
	mappings []*Mapping
	def      *Mapping
	globs    *globTree
	regexes  []*Mapping

	cacheSize int
	mu        sync.Mutex
	cache     map[cacheKey]Result
}

type cacheKey struct {
	name string
	t    MetricType
}

// DefaultCacheSize is the number of cached results when New is given 0
// (statsd_exporter's --statsd.cache-size default).
const DefaultCacheSize = 1000

// Load reads and parses a mapping file; see Parse.
func Load(path string, cacheSize int) (*Mapper, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read mapping file: %w", err)
	}
	m, warnings, err := Parse(b, cacheSize)
	if err != nil {
		return nil, warnings, fmt.Errorf("mapping file %q: %w", path, err)
	}
	return m, warnings, nil
}

// Parse builds a Mapper from the YAML of a statsd_exporter mapping file. It
// refuses what statsd_exporter refuses, the error naming the line; unknown
// keys, which statsd_exporter ignores, are ignored too and listed in the
// warnings. cacheSize bounds the result cache (0 = DefaultCacheSize, < 0 =
// no cache). An empty file maps nothing.
func Parse(data []byte, cacheSize int) (*Mapper, []string, error) {
	maps, defs, warnings, err := parseYAML(data)
	if err != nil {
		return nil, warnings, err
	}
	if cacheSize == 0 {
		cacheSize = DefaultCacheSize
	}
	m := &Mapper{mappings: maps, def: defs.mapping(), globs: newGlobTree(defs.orderingDisabled), cacheSize: cacheSize}
	if cacheSize > 0 {
		m.cache = make(map[cacheKey]Result)
	}
	for i, mp := range maps {
		if mp.Regex {
			m.regexes = append(m.regexes, mp)
		} else {
			m.globs.add(mp, i)
		}
	}
	return m, warnings, nil
}

// Default is the defaults section as a Mapping: what a name no mapping
// matched is exported with (observer type and options, ttl). A nil Mapper
// has statsd_exporter's built-in defaults.
func (m *Mapper) Default() *Mapping {
	if m == nil {
		return builtinDefault
	}
	return m.def
}

var builtinDefault = (&defaults{summary: SummaryOptions{Quantiles: defaultObjectives},
	histogram: HistogramOptions{Buckets: defaultBuckets}}).mapping()

// Mappings returns the mappings in file order (none for a nil Mapper).
func (m *Mapper) Mappings() []*Mapping {
	if m == nil {
		return nil
	}
	return m.mappings
}

// Map returns what name, a metric of type t, maps to. A nil Mapper maps
// every name to its escaped self.
func (m *Mapper) Map(name string, t MetricType) Result {
	if m == nil {
		return Result{Name: EscapeName(name)}
	}
	if m.cache != nil {
		m.mu.Lock()
		r, ok := m.cache[cacheKey{name, t}]
		m.mu.Unlock()
		if ok {
			return r
		}
	}
	r := m.lookup(name, t)
	if m.cache != nil {
		m.mu.Lock()
		if len(m.cache) >= m.cacheSize {
			clear(m.cache) // bounded: start over rather than track recency
		}
		m.cache[cacheKey{strings.Clone(name), t}] = r
		m.mu.Unlock()
	}
	return r
}

func (m *Mapper) lookup(name string, t MetricType) Result {
	if mp, caps, ok := m.globs.match(name, t); ok {
		return finish(mp, mp.name.expand(caps), func(i int) string { return mp.labels[i].expand(caps) })
	}
	for _, mp := range m.regexes {
		idx := mp.re.FindStringSubmatchIndex(name)
		if idx == nil || mp.MatchMetricType != AnyType && mp.MatchMetricType != t {
			continue
		}
		expand := func(tmpl string) string { return string(mp.re.ExpandString(nil, tmpl, name, idx)) }
		return finish(mp, expand(mp.Name), func(i int) string { return expand(mp.Labels[i].Value) })
	}
	return Result{Name: EscapeName(name)}
}

func finish(mp *Mapping, name string, label func(int) string) Result {
	r := Result{Mapping: mp, Name: EscapeName(name)}
	if len(mp.Labels) > 0 {
		r.Labels = make([]Label, len(mp.Labels))
		for i, l := range mp.Labels {
			r.Labels[i] = Label{l.Name, label(i)}
		}
	}
	return r
}

// EscapeName makes a statsd name a Prometheus metric or label name as
// statsd_exporter does: every character outside [a-zA-Z0-9_] becomes "_",
// a run of "-" becomes one "_", and a leading digit gets a "_" in front.
func EscapeName(s string) string {
	if s == "" {
		return ""
	}
	ok := s[0] < '0' || s[0] > '9'
	for i := 0; ok && i < len(s); i++ {
		ok = validNameByte(s[i])
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if s[0] >= '0' && s[0] <= '9' {
		b.WriteByte('_')
	}
	var prev rune
	for _, c := range s {
		switch {
		case c < 0x80 && validNameByte(byte(c)):
			b.WriteRune(c)
		case c == '-' && prev == '-':
			continue // prev stays '-': the whole run is one "_"
		default:
			b.WriteByte('_')
		}
		prev = c
	}
	return b.String()
}

func validNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// sortLabels sorts labels by name in place.
func sortLabels(ls []Label) {
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
}
