package config

import (
	"fmt"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/histogram"
)

// Timers is how timer series aggregate (keys timer-aggregation and
// histogram-max-buckets), with the aggregator's defaults.
type Timers struct {
	Aggregation         aggregator.TimerAggregation // timer-aggregation: exact (default) or histogram
	HistogramMaxBuckets int                         // histogram-max-buckets: buckets per range of a timer's histogram
}

var timerKeys = []key{
	{"timer-aggregation", kString, aggDefaults.TimerAggregation.String(), "What a timer series keeps over an interval: \"exact\" (every value: exact percentiles, gostatsd-identical) or \"histogram\" (a base-2 exponential histogram: bounded memory, forwarded as a histogram over /v3, exported as Prometheus native and OTLP exponential histograms; median and percentiles estimated within the bucket width)", true},
	{"histogram-max-buckets", kInt, aggDefaults.HistogramMaxBuckets, "With timer-aggregation = \"histogram\": most buckets per range (positive, negative values) of a timer's histogram; its scale drops to stay within it. 512 keeps scale 5 (relative error at most 2^(1/32)-1 = 2.19%) over 16 octaves of values", true},
}

func (c *Config) loadTimers(r *reader) {
	c.Timers.Aggregation = aggregator.TimerAggregations[r.oneOf("timer-aggregation", "exact", "histogram")]
	c.Timers.HistogramMaxBuckets = r.int("histogram-max-buckets")
	if n := c.Timers.HistogramMaxBuckets; n < 4 || n > histogram.MaxBucketsLimit {
		r.fail("histogram-max-buckets", fmt.Errorf("must be between 4 and %d, got %d", histogram.MaxBucketsLimit, n))
	}
}
