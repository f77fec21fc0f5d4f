package config

import (
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/pkg/filter"
)

func TestFiltersDefaults(t *testing.T) {
	c := mustLoad(t)
	f := c.Filters
	if !f.Rules.Empty() || f.StatserType != StatserNull || f.InternalNamespace != "statsd" || len(f.InternalTags) != 0 {
		t.Fatalf("defaults: %+v", f)
	}
}

// TestFiltersGostatsdExample loads gostatsd's filtering example (its
// FILTERING.md and tag handler tests) unchanged, plus garner's keys.
func TestFiltersGostatsdExample(t *testing.T) {
	path := writeFile(t, "f.toml", `
filters='make-global noisy-tag drop-subset Drop-Noisy-Metric-With-Tag regex-with-comma'
drop-tag-keys = ["request_id", "trace_id"]
max-tag-value-length = 64
mappings = "http db"
statser-type = "internal"
internal-namespace = ".garner."
internal-tags = "role:agg"

[filter.make-global]
match-metrics='global.*'
drop-host=true
drop-tags='host:*'

[filter.noisy-tag]
drop-tags='request_path:*'

[filter.drop-subset]
match-metrics='noisy.*'
exclude-metrics='noisy.quiet.* noisy.ok.*'
drop-metric=true

[filter.drop-noisy-metric-with-tag]
match-metrics='noisy.*'
match-tags='noisy-tag:*'
drop-metric=true

[filter.regex-with-comma]
match-metrics = 'regex:^api\.[0-9]{1,3}$  other'

[filter.unused]
drop-metric=true

[mapping.http]
match = '^http\.(?P<method>[a-z]+)\.([0-9]{3})$'
name = "http_requests"
tags = "method:${method} code:$2"

[mapping.db]
match = '^db\.(\w+)$'
name = "db_${1}_seconds"
`)
	c := mustLoad(t, "--config-path", path)
	f := c.Filters
	want := filter.Config{
		Filters: []filter.FilterConfig{
			{Name: "make-global", MatchMetrics: []string{"global.*"}, DropHost: true, DropTags: []string{"host:*"}},
			{Name: "noisy-tag", DropTags: []string{"request_path:*"}},
			{Name: "drop-subset", MatchMetrics: []string{"noisy.*"}, ExcludeMetrics: []string{"noisy.quiet.*", "noisy.ok.*"}, DropMetric: true},
			{Name: "drop-noisy-metric-with-tag", MatchMetrics: []string{"noisy.*"}, MatchTags: []string{"noisy-tag:*"}, DropMetric: true},
			{Name: "regex-with-comma", MatchMetrics: []string{`regex:^api\.[0-9]{1,3}$`, "other"}},
		},
		DropTagKeys:       []string{"request_id", "trace_id"},
		MaxTagValueLength: 64,
		Mappings: []filter.MappingConfig{
			{Name: "http", Match: `^http\.(?P<method>[a-z]+)\.([0-9]{3})$`, As: "http_requests", Tags: []string{"method:${method}", "code:$2"}},
			{Name: "db", Match: `^db\.(\w+)$`, As: "db_${1}_seconds"},
		},
	}
	for i := range want.Filters { // r.list returns empty, not nil, slices
		normalize(&want.Filters[i].MatchMetrics, &want.Filters[i].ExcludeMetrics, &want.Filters[i].MatchTags, &want.Filters[i].DropTags)
		normalize(&f.Rules.Filters[i].MatchMetrics, &f.Rules.Filters[i].ExcludeMetrics, &f.Rules.Filters[i].MatchTags, &f.Rules.Filters[i].DropTags)
	}
	normalize(&want.Mappings[1].Tags)
	normalize(&f.Rules.Mappings[1].Tags)
	if !reflect.DeepEqual(f.Rules, want) {
		t.Fatalf("rules:\n%+v\nwant\n%+v", f.Rules, want)
	}
	if f.StatserType != StatserInternal || f.InternalNamespace != "garner" || !reflect.DeepEqual(f.InternalTags, []string{"role:agg"}) {
		t.Fatalf("statser: %+v", f)
	}
	if _, err := filter.New(f.Rules, prometheus.NewRegistry()); err != nil {
		t.Fatalf("validated config does not compile: %v", err)
	}
}

func normalize(ls ...*[]string) {
	for _, l := range ls {
		if len(*l) == 0 {
			*l = nil
		}
	}
}

func TestFiltersFlags(t *testing.T) {
	c := mustLoad(t, "--drop-tag-keys", "a b", "--max-tag-value-length", "10", "--statser-type", "logging", "--internal-tags", "x:1")
	f := c.Filters
	if !reflect.DeepEqual(f.Rules.DropTagKeys, []string{"a", "b"}) || f.Rules.MaxTagValueLength != 10 || f.StatserType != StatserLogging || !reflect.DeepEqual(f.InternalTags, []string{"x:1"}) {
		t.Fatalf("%+v", f)
	}
}

func TestFiltersBadConfig(t *testing.T) {
	requireBadConfigs(t, []badConfig{
		{name: "unknown filter name", file: "filters = 'a b'\n[filter.a]\ndrop-metric = true\n", wantKey: "filters", wantMsg: `"b" has no [filter.b] section`},
		{name: "filter listed twice", file: "filters = 'a A'\n[filter.a]\ndrop-metric = true\n", wantKey: "filters", wantMsg: "listed twice"},
		{name: "bad filter name", file: "filters = 'a.b'\n", wantKey: "filters", wantMsg: "a name is letters"},
		{name: "bad regex in match-metrics", file: "filters = 'a'\n[filter.a]\nmatch-metrics = 'regex:('\n", wantKey: "filter.a.match-metrics", wantMsg: "invalid regular expression"},
		{name: "bad regex in drop-tags", file: "filters = 'a'\n[filter.a]\ndrop-tags = 'x:* !regex:a['\n", wantKey: "filter.a.drop-tags", wantMsg: "invalid regular expression"},
		{name: "bad drop-metric", file: "filters = 'a'\n[filter.a]\ndrop-metric = 'yes please'\n", wantKey: "filter.a.drop-metric", wantMsg: "not a boolean"},
		{name: "unknown filter key", file: "filters = 'a'\n[filter.a]\ndrop-metrics = true\n", wantKey: "filter.a.drop-metrics", wantMsg: "unknown key"},
		{name: "negative max length", file: "max-tag-value-length = -1\n", wantKey: "max-tag-value-length", wantMsg: "must not be negative"},
		{name: "bad statser", file: "statser-type = 'datadog'\n", wantKey: "statser-type", wantMsg: "not one of"},
		{name: "unknown mapping", file: "mappings = 'm'\n", wantKey: "mappings", wantMsg: "has no [mapping.m] section"},
		{name: "unlisted mapping", file: "[mapping.m]\nmatch = 'a'\nname = 'b'\n", wantKey: "mapping.m", wantMsg: "not listed in mappings"},
		{name: "mapping without match", file: "mappings = 'm'\n[mapping.m]\nname = 'b'\n", wantKey: "mapping.m.match", wantMsg: "required"},
		{name: "mapping bad regex", file: "mappings = 'm'\n[mapping.m]\nmatch = '(x'\nname = 'b'\n", wantKey: "mapping.m.match", wantMsg: "invalid regular expression"},
		{name: "mapping bad name template", file: "mappings = 'm'\n[mapping.m]\nmatch = '(x)'\nname = '$1y'\n", wantKey: "mapping.m.name", wantMsg: "write ${1}x"},
		{name: "mapping bad tag", file: "mappings = 'm'\n[mapping.m]\nmatch = '(x)'\nname = 'y'\ntags = 'a:$1|b'\n", wantKey: "mapping.m.tags", wantMsg: "not allowed"},
	})
}
