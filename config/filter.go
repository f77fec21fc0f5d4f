package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/garner-metrics/garner/pkg/filter"
)

// Statser types (statser-type), as gostatsd.
const (
	StatserNull     = "null"
	StatserInternal = "internal"
	StatserLogging  = "logging"
)

// Filters is metric shaping: gostatsd's filters ([filter.<name>] sections
// named by filters), garner's tag rules and name mappings, and where garner's
// own metrics go (statser-type).
type Filters struct {
	Rules filter.Config // compiled by filter.New; validated here

	StatserType       string   // null | internal | logging; default null
	InternalNamespace string   // name prefix of garner's own metrics in the pipeline; default "statsd"
	InternalTags      []string // tags of garner's own metrics in the pipeline
}

var filterKeys = []key{
	{"filters", kList, "", `gostatsd filters applied in this order to every metric line and forwarded series before aggregation: space-separated names, each defined by a [filter.<name>] section; a name without a section stops the start. Example: filters = "make-global noisy-tag drop-subset"`, false, nil},
	{"drop-tag-keys", kList, "", `Tag keys removed from every metric before aggregation (not from default-tags; a bare tag is its own key), counted in garner_filter_dropped_tags_total. Example: drop-tag-keys = "request_id trace_id"`, true, to(func(c *Config) any { return &c.Filters.Rules.DropTagKeys })},
	{"max-tag-value-length", kInt, 0, `Longest tag value in bytes (after the first ':'; a bare tag is all value): longer values are cut on a character boundary before aggregation and counted in garner_filter_truncated_tags_total; 0 = no limit. Example: max-tag-value-length = 128`, true, nil},
	{"mappings", kList, "", `Name mappings (statsd_exporter style) tried in this order on the name as sent (before namespace): the first whose regex matches renames the metric and adds tags from the capture groups; space-separated names, each defined by a [mapping.<name>] section. Example: mappings = "http"`, false, nil},
	{"statser-type", kString, StatserNull, `Where garner's own metrics (those on /metrics) also go every flush-interval: null = nowhere (scrape /metrics); internal = into the pipeline as statsd metrics <namespace>.<internal-namespace>.<metric> (counters as their increase, gauges as they are, summaries and histograms as _count and _sum) with internal-tags and source = hostname, as gostatsd; logging = logged at info level`, true, nil},
	{"internal-namespace", kString, "statsd", "Name prefix of garner's own metrics with statser-type = internal, after namespace; empty = none", true, nil},
	{"internal-tags", kList, "", "Tags of garner's own metrics with statser-type = internal, space-separated", true, to(func(c *Config) any { return &c.Filters.InternalTags })},

	{"filter.*.match-metrics", kList, nil, `The filter applies to metrics whose name (with namespace) matches one of these; empty = every name. A matcher is an exact name, a prefix ending in '*' (not a wildcard), "regex:<RE2>" (unanchored), or '!' before any of these to negate it. Example: match-metrics = "noisy.*"`, false, nil},
	{"filter.*.exclude-metrics", kList, nil, `... except metrics whose name matches one of these. Example: exclude-metrics = "noisy.butok.*"`, false, nil},
	{"filter.*.match-tags", kList, nil, `... and, if given, only metrics with a tag ("key:value" as sent; default-tags are added after the filters) that matches one of these. Example: match-tags = "env:dev*"`, false, nil},
	{"filter.*.drop-metric", kBool, nil, "Drop the metrics the filter applies to: they cost no series; counted in garner_filter_dropped_metrics_total{filter}", false, nil},
	{"filter.*.drop-tags", kList, nil, `Remove the tags that match one of these from the metrics the filter applies to. Example: drop-tags = "request_path:*"`, false, nil},
	{"filter.*.drop-host", kBool, nil, "Clear the source (sender IP, or host: tag with ignore-host) of the metrics the filter applies to, so that every host adds to one series", false, nil},

	{"mapping.*.match", kString, nil, `RE2 regular expression on the metric name as sent (before namespace); unanchored unless written ^...$. Example: match = '^http\.(?P<method>[a-z]+)\.([0-9]{3})$'`, false, nil},
	{"mapping.*.name", kString, nil, `The new name: $1, ${1} and ${group} insert capture groups (write ${1}x, not $1x). Example: name = "http_requests"`, false, nil},
	{"mapping.*.tags", kList, nil, `Tags added to the renamed metric, templates as in name; a tag whose value comes out empty is left out. Example: tags = "method:${method} code:$2" makes http.get.200:1|c http_requests:1|c|#method:get,code:200`, false, nil},
}

var sectionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c *Config) loadFilters(r *reader) {
	f := &c.Filters
	f.StatserType = r.oneOf("statser-type", StatserNull, StatserInternal, StatserLogging)
	f.InternalNamespace = strings.Trim(r.str("internal-namespace"), ".")

	f.Rules.MaxTagValueLength = r.int("max-tag-value-length")
	if f.Rules.MaxTagValueLength < 0 {
		r.fail("max-tag-value-length", fmt.Errorf("must not be negative (0 = no limit), got %d", f.Rules.MaxTagValueLength))
	}

	f.Rules.Filters = readSections(r, "filters", "filter", func(p, name string) filter.FilterConfig {
		return filter.FilterConfig{
			Name:           name,
			MatchMetrics:   r.matchers(p + ".match-metrics"),
			ExcludeMetrics: r.matchers(p + ".exclude-metrics"),
			MatchTags:      r.matchers(p + ".match-tags"),
			DropTags:       r.matchers(p + ".drop-tags"),
			DropMetric:     r.bool(p + ".drop-metric"),
			DropHost:       r.bool(p + ".drop-host"),
		}
	}, filter.CheckFilter)

	f.Rules.Mappings = readSections(r, "mappings", "mapping", func(p, name string) filter.MappingConfig {
		return filter.MappingConfig{
			Name:  name,
			Match: r.str(p + ".match"),
			As:    r.str(p + ".name"),
			Tags:  r.list(p + ".tags"),
		}
	}, filter.CheckMapping)
	// An unlisted [mapping.<name>] would silently do nothing: refuse it.
	// (An unlisted [filter.<name>] is accepted, as gostatsd does: it is
	// how a filter is switched off.)
	var names []string
	for _, m := range f.Rules.Mappings {
		names = append(names, m.Name)
	}
	r.refuseUnlisted("mapping", "mappings", names)
}

// matchers reads a list of filter matchers: an array, or a string split at
// whitespace only, as gostatsd does, so that a regex such as
// "regex:^a{1,3}$" keeps its comma.
func (r *reader) matchers(key string) []string {
	if s, ok := r.v.Get(key).(string); ok {
		out := strings.Fields(s)
		r.note(key, fmt.Sprintf("%q", out))
		return out
	}
	return r.list(key)
}

// readSections reads the [<section>.<name>] sections that listKey names, in
// its order: build makes one from its key prefix ("filter.<name>") and
// name, check validates it and names the offending key under the prefix.
func readSections[T any](r *reader, listKey, section string, build func(prefix, name string) T, check func(T) (string, error)) []T {
	var out []T
	for _, name := range r.sectionNames(listKey, section) {
		p := section + "." + name
		v := build(p, name)
		if k, err := check(v); err != nil {
			r.fail(p+"."+k, err)
		}
		out = append(out, v)
	}
	return out
}

// refuseUnlisted fails for a [<section>.<name>] table whose name listKey
// does not list (names, lower-cased): such a section would silently do nothing.
func (r *reader) refuseUnlisted(section, listKey string, names []string) {
	m, ok := r.v.Get(section).(map[string]any)
	if !ok {
		return
	}
	for name := range m {
		if !contains(names, strings.ToLower(name)) {
			r.fail(section+"."+name, fmt.Errorf("section [%s.%s] is not listed in %s (%q)", section, name, listKey, strings.Join(names, " ")))
		}
	}
}

// sectionNames reads the list key naming [<section>.<name>] sections and
// checks that each name is well formed, listed once and has its section.
// It returns the names lower-cased, as viper stores section names.
func (r *reader) sectionNames(listKey, section string) []string {
	var out []string
	for _, name := range r.list(listKey) {
		lname := strings.ToLower(name)
		switch {
		case !sectionNameRE.MatchString(name):
			r.fail(listKey, fmt.Errorf("%q: a name is letters, digits, '-' and '_'", name))
		case contains(out, lname):
			r.fail(listKey, fmt.Errorf("%q is listed twice", name))
		case !r.hasSection(section + "." + lname):
			r.fail(listKey, fmt.Errorf("%q has no [%s.%s] section", name, section, name))
		default:
			out = append(out, lname)
		}
	}
	return out
}

// hasSection reports whether the config has a table at key (possibly empty).
func (r *reader) hasSection(key string) bool {
	if _, ok := r.v.Get(key).(map[string]any); ok {
		return true
	}
	return r.v.IsSet(key)
}
