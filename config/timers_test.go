package config

import (
	"testing"

	"github.com/garner-metrics/garner/pkg/aggregator"
)

func TestTimerKeys(t *testing.T) {
	c := Default()
	if c.Timers.Aggregation != aggregator.TimerExact || c.Timers.HistogramMaxBuckets != aggregator.DefaultOptions().HistogramMaxBuckets {
		t.Errorf("defaults %+v", c.Timers)
	}
	c, err := Load([]string{"--timer-aggregation=Histogram", "--histogram-max-buckets=160"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timers.Aggregation != aggregator.TimerHistogram || c.Timers.HistogramMaxBuckets != 160 {
		t.Errorf("got %+v", c.Timers)
	}
	requireBadConfigs(t, []badConfig{
		{name: "unknown timer aggregation", file: "timer-aggregation = \"sketch\"\n", wantKey: "timer-aggregation"},
		{name: "too few buckets", args: []string{"--histogram-max-buckets=2"}, wantKey: "histogram-max-buckets"},
		{name: "too many buckets", args: []string{"--histogram-max-buckets=100000"}, wantKey: "histogram-max-buckets"},
	})
}

func TestSetKeys(t *testing.T) {
	c := Default()
	if c.Sets.Aggregation != aggregator.SetExact || c.Sets.HLLPrecision != 14 {
		t.Errorf("defaults %+v", c.Sets)
	}
	c, err := Load([]string{"--set-aggregation=hll", "--hll-precision=12"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sets.Aggregation != aggregator.SetHLL || c.Sets.HLLPrecision != 12 {
		t.Errorf("got %+v", c.Sets)
	}
	requireBadConfigs(t, []badConfig{
		{name: "unknown set aggregation", file: "set-aggregation = \"bloom\"\n", wantKey: "set-aggregation"},
		{name: "precision too low", args: []string{"--hll-precision=3"}, wantKey: "hll-precision"},
		{name: "precision too high", args: []string{"--hll-precision=19"}, wantKey: "hll-precision"},
	})
}
