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
