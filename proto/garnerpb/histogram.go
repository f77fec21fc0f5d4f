package garnerpb

import "github.com/garner-metrics/garner/pkg/histogram"

// Data returns the histogram in pkg/histogram's exported form (sharing the
// bucket slices), for histogram.FromData, which validates it. A nil x gives
// an empty histogram.
func (x *Histogram) Data() *histogram.Data {
	if x == nil {
		return &histogram.Data{}
	}
	return &histogram.Data{
		Scale: x.Scale, Count: x.Count, ZeroCount: x.ZeroCount, Sum: x.Sum, SumSquares: x.SumSquares,
		Min: x.Min, Max: x.Max, PositiveOffset: x.PositiveOffset, Positive: x.PositiveCounts,
		NegativeOffset: x.NegativeOffset, Negative: x.NegativeCounts,
	}
}
