package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// promqlKeywords are identifiers of PromQL that are not metric names when
// no "(" follows them (functions and aggregations are recognised by it).
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"offset": true, "bool": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlGrafana  = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	// A number (with exponent, hex or duration unit) is consumed before an
	// identifier can start inside it; an identifier is followed by
	// optional space and "(" when it is a function or aggregation.
	promqlToken = regexp.MustCompile(`(?i:0x[0-9a-f]+|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?(?:[smhdwy]|ms)?)|([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?`)
)

// promqlMetricNames returns the metric names a PromQL expression selects:
// string literals, Grafana variables, label matchers, ranges and
// subqueries, and grouping clauses are removed; what is left that is an
// identifier not called like a function and not a keyword is a metric.
func promqlMetricNames(expr string) []string {
	s := promqlString.ReplaceAllString(expr, `""`)
	s = promqlGrafana.ReplaceAllString(s, "1")
	s = promqlMatchers.ReplaceAllString(s, " ")
	for {
		n := promqlRange.ReplaceAllString(s, " ")
		if n == s {
			break
		}
		s = n
	}
	s = promqlGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, m := range promqlToken.FindAllStringSubmatch(s, -1) {
		name, call := m[1], m[2]
		if name == "" || call != "" || promqlKeywords[strings.ToLower(name)] {
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func TestPromqlMetricNames(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"bare", `up`, []string{"up"}},
		{"matchers and range", `rate(garner_receiver_lines_total{role=~"$role", reason!="a,b}"}[$__rate_interval])`, []string{"garner_receiver_lines_total"}},
		{"grouping before", `sum by (role, le) (rate(x_bucket[5m]))`, []string{"x_bucket"}},
		{"grouping after", `sum(rate(a_total[1m])) without (pod)`, []string{"a_total"}},
		{"histogram quantile", `histogram_quantile(0.99, sum by (le) (rate(h_bucket{a="b"}[5m])))`, []string{"h_bucket"}},
		{"binary with on", `a / on (pod) group_left (version) b > 0`, []string{"a", "b"}},
		{"numbers and exponents", `x * 1e3 + 0x1f - 2.5e-3 > bool 1`, []string{"x"}},
		{"offset and subquery", `max_over_time(rate(c_total[5m])[1h:1m] offset 1d)`, []string{"c_total"}},
		{"label_values", `label_values(garner_build_info{role=~"$role"}, pod)`, []string{"garner_build_info", "pod"}},
		{"colon names", `job:requests:rate5m`, []string{"job:requests:rate5m"}},
		{"function with space", `sum (rate (a[1m]))`, []string{"a"}},
		{"grafana braces", `rate(a[${__rate_interval}])`, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := promqlMetricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("promqlMetricNames(%q) = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
}
