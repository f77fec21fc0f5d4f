// Package filter shapes metrics before they are aggregated: gostatsd's
// filters (keep or drop a metric by name and tags, strip tags, strip the
// host), garner's global tag rules (drop-tag-keys, max-tag-value-length) and
// regex name mappings in the style of statsd_exporter (name → new name plus
// tags from the capture groups).
//
// Rules is the compiled configuration, built once at start and shared. Each
// goroutine that handles metrics (a receiver.LineHandler, a receiver.SeriesWriter) owns a Shaper made
// from it, which holds scratch buffers and local counts: shaping a line
// allocates nothing unless a name mapping matches it.
//
// For one metric the steps run in this order:
//
//  1. name mappings, first match wins, on the name as sent (before the
//     namespace); the new tags join the metric's own tags;
//  2. the namespace is prefixed;
//  3. drop-tag-keys and max-tag-value-length, on the metric's own tags;
//  4. the filters, in the order of the filters key, on the namespaced name
//     and the metric's own tags (not the default tags; with ignore-host the
//     host: tag has already become the source), exactly as gostatsd: a filter
//     applies when its match-metrics (if any) matches the name, none of its
//     exclude-metrics does, and its match-tags (if any) matches one tag; then
//     drop-metric drops the metric at once, drop-tags marks tags for removal
//     and drop-host clears the source. Later filters still see the marked
//     tags; they are removed at the end;
//  5. the default tags are added, except one equal to a removed tag
//     (gostatsd's behaviour).
package filter

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is the shaping configuration as read from the config file.
type Config struct {
	Filters           []FilterConfig  // applied in this order
	DropTagKeys       []string        // tag keys removed from every metric
	MaxTagValueLength int             // bytes; longer tag values are truncated; 0 = no limit
	Mappings          []MappingConfig // first match wins
}

// Empty reports whether c has nothing to do.
func (c Config) Empty() bool {
	return len(c.Filters) == 0 && len(c.DropTagKeys) == 0 && c.MaxTagValueLength <= 0 && len(c.Mappings) == 0
}

// FilterConfig is one [filter.<name>] section; keys and meaning as gostatsd.
type FilterConfig struct {
	Name           string
	MatchMetrics   []string // the name must match one, if any are given
	ExcludeMetrics []string // the name must match none
	MatchTags      []string // one tag must match one, if any are given
	DropTags       []string // tags matching any are removed
	DropMetric     bool     // the metric is dropped
	DropHost       bool     // the source (host) is cleared
}

// MappingConfig is one [mapping.<name>] section.
type MappingConfig struct {
	Name  string
	Match string   // RE2 on the name as sent; unanchored unless written ^...$
	As    string   // the new name: a template with $1, ${1}, ${group}
	Tags  []string // tags to add, templates like "method:$1"; a tag whose value expands empty is left out
}

// Rules is the compiled configuration. It is immutable and safe for
// concurrent use; a nil *Rules does nothing.
type Rules struct {
	filters  []rule
	dropKeys map[string]struct{}
	maxLen   int
	mappings []mapping
	m        *ruleMetrics
}

type rule struct {
	name                                              string
	matchMetrics, excludeMetrics, matchTags, dropTags List
	dropMetric, dropHost                              bool
	dropped                                           prometheus.Counter
}

type mapping struct {
	name    string
	re      *regex
	as      []byte
	tags    [][]byte
	matched prometheus.Counter
}

type ruleMetrics struct {
	droppedTagsByKey, droppedTagsByFilter prometheus.Counter
	truncated                             prometheus.Counter
}

// New compiles cfg and registers the filter metrics with reg (also when cfg
// is empty, so dashboards find them).
func New(cfg Config, reg prometheus.Registerer) (*Rules, error) {
	return NewMetrics(reg).Compile(cfg)
}

// Metrics are the filter self-metrics, registered once; rules compiled again
// (on SIGHUP) count into the same metrics.
type Metrics struct {
	dropped, droppedTags, mapped *prometheus.CounterVec
	truncated                    prometheus.Counter
}

// NewMetrics creates and registers the filter metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_filter_dropped_metrics_total",
			Help: "Metric lines and forwarded series dropped by a filter with drop-metric, by filter.",
		}, []string{"filter"}),
		droppedTags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_filter_dropped_tags_total",
			Help: "Tags removed, by rule: drop-tag-keys, or drop-tags of a filter.",
		}, []string{"rule"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "garner_filter_truncated_tags_total",
			Help: "Tag values cut to max-tag-value-length.",
		}),
		mapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_filter_mapped_metrics_total",
			Help: "Metric lines and forwarded series renamed by a name mapping, by mapping.",
		}, []string{"mapping"}),
	}
	reg.MustRegister(m.dropped, m.droppedTags, m.truncated, m.mapped)
	return m
}

// Compile compiles cfg into Rules counting into m.
func (m *Metrics) Compile(cfg Config) (*Rules, error) {
	dropped, droppedTags, truncated, mapped := m.dropped, m.droppedTags, m.truncated, m.mapped
	r := &Rules{maxLen: cfg.MaxTagValueLength, m: &ruleMetrics{
		droppedTagsByKey:    droppedTags.WithLabelValues("drop-tag-keys"),
		droppedTagsByFilter: droppedTags.WithLabelValues("drop-tags"),
		truncated:           truncated,
	}}
	if r.maxLen < 0 {
		return nil, fmt.Errorf("max-tag-value-length %d: must not be negative", r.maxLen)
	}
	for _, fc := range cfg.Filters {
		f, err := compileFilter(fc)
		if err != nil {
			return nil, err
		}
		f.dropped = dropped.WithLabelValues(fc.Name)
		r.filters = append(r.filters, f)
	}
	if len(cfg.DropTagKeys) > 0 {
		r.dropKeys = make(map[string]struct{}, len(cfg.DropTagKeys))
		for _, k := range cfg.DropTagKeys {
			r.dropKeys[k] = struct{}{}
		}
	}
	for _, mc := range cfg.Mappings {
		mp, err := compileMapping(mc)
		if err != nil {
			return nil, err
		}
		mp.matched = mapped.WithLabelValues(mc.Name)
		r.mappings = append(r.mappings, mp)
	}
	return r, nil
}

// CheckFilter compiles one filter section and returns the name of the first
// bad key with its error (for config validation).
func CheckFilter(fc FilterConfig) (key string, err error) {
	for _, l := range []struct {
		key string
		ss  []string
	}{
		{"match-metrics", fc.MatchMetrics}, {"exclude-metrics", fc.ExcludeMetrics},
		{"match-tags", fc.MatchTags}, {"drop-tags", fc.DropTags},
	} {
		if _, err := NewList(l.ss); err != nil {
			return l.key, err
		}
	}
	return "", nil
}

func compileFilter(fc FilterConfig) (rule, error) {
	if key, err := CheckFilter(fc); err != nil {
		return rule{}, fmt.Errorf("filter %q: %s: %w", fc.Name, key, err)
	}
	f := rule{name: fc.Name, dropMetric: fc.DropMetric, dropHost: fc.DropHost}
	f.matchMetrics, _ = NewList(fc.MatchMetrics)
	f.excludeMetrics, _ = NewList(fc.ExcludeMetrics)
	f.matchTags, _ = NewList(fc.MatchTags)
	f.dropTags, _ = NewList(fc.DropTags)
	return f, nil
}

// CheckMapping compiles one mapping section and returns the name of the
// first bad key with its error (for config validation).
func CheckMapping(mc MappingConfig) (key string, err error) {
	if mc.Match == "" {
		return "match", errors.New("required: a regular expression on the metric name")
	}
	re, err := regexp.Compile(mc.Match)
	if err != nil {
		return "match", fmt.Errorf("invalid regular expression %q: %w", mc.Match, err)
	}
	if mc.As == "" {
		return "name", errors.New("required: the new metric name, e.g. \"http_requests\" or \"${1}_total\"")
	}
	if err := checkTemplate(re, mc.As, nameChars); err != nil {
		return "name", err
	}
	for _, t := range mc.Tags {
		if err := checkTemplate(re, t, tagChars); err != nil {
			return "tags", err
		}
	}
	return "", nil
}

func compileMapping(mc MappingConfig) (mapping, error) {
	if key, err := CheckMapping(mc); err != nil {
		return mapping{}, fmt.Errorf("mapping %q: %s: %w", mc.Name, key, err)
	}
	re, err := compileRegex(mc.Match)
	if err != nil {
		return mapping{}, fmt.Errorf("mapping %q: match: %w", mc.Name, err)
	}
	mp := mapping{name: mc.Name, re: re, as: []byte(mc.As)}
	for _, t := range mc.Tags {
		mp.tags = append(mp.tags, []byte(t))
	}
	return mp, nil
}

const (
	// nameChars are the bytes a template may write into a name besides the
	// group references: those the statsd parser leaves in a name.
	nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	// tagChars add ':' (key:value) and '/'; no ',', '|', '#' or spaces,
	// which would change the meaning of a series key.
	tagChars = nameChars + ":/"
)

// checkTemplate checks that the literal text of tmpl only holds allowed
// bytes and that every ${name} reference names a group of re.
func checkTemplate(re *regexp.Regexp, tmpl, allowed string) error {
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c == '$' {
			ref, n := templateRef(tmpl[i+1:])
			if n == 0 {
				return fmt.Errorf("%q: a $ must start a group reference ($1, ${1}, ${name}; $$ for a literal $ is not allowed here)", tmpl)
			}
			if isNumber(ref) {
				if n, err := strconv.Atoi(ref); err != nil || n > re.NumSubexp() {
					return fmt.Errorf("%q: $%s: %q has %d groups", tmpl, ref, re.String(), re.NumSubexp())
				}
			} else if re.SubexpIndex(ref) < 0 {
				return fmt.Errorf("%q: no group named %q in %q (write ${1}x, not $1x, when a letter follows)", tmpl, ref, re.String())
			}
			i += n
			continue
		}
		if !strings.ContainsRune(allowed, rune(c)) {
			return fmt.Errorf("%q: %q is not allowed here (allowed: letters, digits and %q)", tmpl, c, allowed[62:])
		}
	}
	return nil
}

// templateRef parses the group reference after a '$' as regexp.Expand does
// and returns it and the bytes it took; n is 0 when there is none.
func templateRef(s string) (ref string, n int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 2 || !isWord(s[1:end]) {
			return "", 0
		}
		return s[1:end], end + 1
	}
	i := 0
	for i < len(s) && isWordByte(s[i]) {
		i++
	}
	if i == 0 {
		return "", 0
	}
	return s[:i], i
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
