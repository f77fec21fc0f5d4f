package config

import (
	"testing"

	"github.com/garner-metrics/garner/pkg/aggregator"
)

// TestAggregationKeys: timer-aggregation with histogram-max-buckets, and
// set-aggregation with hll-precision: their defaults, values and bad values.
func TestAggregationKeys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		got      func(*Config) any // the keys' part of the Config
		defaults func(*Config) bool
		args     []string
		loaded   func(*Config) bool
		bad      []badConfig
	}{
		{
			name: "timers",
			got:  func(c *Config) any { return c.Timers },
			defaults: func(c *Config) bool {
				return c.Timers.Aggregation == aggregator.TimerExact && c.Timers.HistogramMaxBuckets == aggregator.DefaultOptions().HistogramMaxBuckets
			},
			args: []string{"--timer-aggregation=Histogram", "--histogram-max-buckets=160"},
			loaded: func(c *Config) bool {
				return c.Timers.Aggregation == aggregator.TimerHistogram && c.Timers.HistogramMaxBuckets == 160
			},
			bad: []badConfig{
				{name: "unknown timer aggregation", file: "timer-aggregation = \"sketch\"\n", wantKey: "timer-aggregation"},
				{name: "too few buckets", args: []string{"--histogram-max-buckets=2"}, wantKey: "histogram-max-buckets"},
				{name: "too many buckets", args: []string{"--histogram-max-buckets=100000"}, wantKey: "histogram-max-buckets"},
			},
		},
		{
			name:     "sets",
			got:      func(c *Config) any { return c.Sets },
			defaults: func(c *Config) bool { return c.Sets.Aggregation == aggregator.SetExact && c.Sets.HLLPrecision == 14 },
			args:     []string{"--set-aggregation=hll", "--hll-precision=12"},
			loaded:   func(c *Config) bool { return c.Sets.Aggregation == aggregator.SetHLL && c.Sets.HLLPrecision == 12 },
			bad: []badConfig{
				{name: "unknown set aggregation", file: "set-aggregation = \"bloom\"\n", wantKey: "set-aggregation"},
				{name: "precision too low", args: []string{"--hll-precision=3"}, wantKey: "hll-precision"},
				{name: "precision too high", args: []string{"--hll-precision=19"}, wantKey: "hll-precision"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := Default(); !tc.defaults(c) {
				t.Errorf("defaults %+v", tc.got(c))
			}
			if c := mustLoad(t, tc.args...); !tc.loaded(c) {
				t.Errorf("got %+v", tc.got(c))
			}
			requireBadConfigs(t, tc.bad)
		})
	}
}
