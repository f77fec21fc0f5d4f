package config

import (
	"fmt"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
)

// Timers is how timer series aggregate (keys timer-aggregation and
// histogram-max-buckets), with the aggregator's defaults.
type Timers struct {
	Aggregation         aggregator.TimerAggregation // timer-aggregation: exact (default) or histogram
	HistogramMaxBuckets int                         // histogram-max-buckets: buckets per range of a timer's histogram
}

// Sets is how set series aggregate (keys set-aggregation and
// hll-precision), with the aggregator's defaults.
type Sets struct {
	Aggregation  aggregator.SetAggregation // set-aggregation: exact (default) or hll
	HLLPrecision int                       // hll-precision: p of a set's HyperLogLog, 2^p registers
}

// timerKeys are the keys of how series aggregate: timers, then sets.
var timerKeys = []key{
	{"timer-aggregation", kString, aggDefaults.TimerAggregation.String(), "What a timer series keeps over an interval: \"exact\" (every value: exact percentiles, gostatsd-identical) or \"histogram\" (a base-2 exponential histogram: bounded memory, forwarded as a histogram over /v3, exported as Prometheus native and OTLP exponential histograms; median and percentiles estimated within the bucket width)", true, nil},
	{"histogram-max-buckets", kInt, aggDefaults.HistogramMaxBuckets, "With timer-aggregation = \"histogram\": most buckets per range (positive, negative values) of a timer's histogram; its scale drops to stay within it. 512 keeps scale 5 (relative error at most 2^(1/32)-1 = 2.19%) over 16 octaves of values", true, to(func(c *Config) any { return &c.Timers.HistogramMaxBuckets })},
	{"set-aggregation", kString, aggDefaults.SetAggregation.String(), "What a set series keeps over an interval: \"exact\" (every distinct member: an exact count, gostatsd-identical) or \"hll\" (a HyperLogLog sketch: exact up to 1536 members at the default precision, then 2^hll-precision bytes whatever the traffic and a relative standard error of 1.04/sqrt(2^hll-precision); forwarded as a sketch over /v3, merged across the tier)", true, nil},
	{"hll-precision", kInt, aggDefaults.HLLPrecision, "With set-aggregation = \"hll\": precision p of a set's HyperLogLog, 4 to 18: 2^p one-byte registers, relative standard error 1.04/sqrt(2^p). 14 = 16 KiB per large set, 0.81%", true, to(func(c *Config) any { return &c.Sets.HLLPrecision })},
}

func (c *Config) loadTimers(r *reader) {
	c.Timers.Aggregation = aggregator.TimerAggregations[r.oneOf("timer-aggregation", "exact", "histogram")]
	if n := c.Timers.HistogramMaxBuckets; n < 4 || n > histogram.MaxBucketsLimit {
		r.fail("histogram-max-buckets", fmt.Errorf("must be between 4 and %d, got %d", histogram.MaxBucketsLimit, n))
	}
	c.Sets.Aggregation = aggregator.SetAggregations[r.oneOf("set-aggregation", "exact", "hll")]
	if p := c.Sets.HLLPrecision; p < hll.MinPrecision || p > hll.MaxPrecision {
		r.fail("hll-precision", fmt.Errorf("must be between %d and %d, got %d", hll.MinPrecision, hll.MaxPrecision, p))
	}
}
