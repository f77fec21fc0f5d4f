package aggregator

import (
	"fmt"
	"math"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// TimerAggregation is what a timer series keeps over a flush interval.
type TimerAggregation uint8

const (
	// TimerExact keeps every value: exact statistics, gostatsd-identical.
	TimerExact TimerAggregation = iota
	// TimerHistogram keeps a base-2 exponential histogram (pkg/histogram)
	// and no values: memory bounded by HistogramMaxBuckets whatever the
	// traffic, and a forwarder ships the histogram instead of the values.
	// Count, lower, upper, sum and sum_squares stay exact; median, mean_P,
	// upper_P and the other percentile sub-metrics are estimated from the
	// buckets. gsd_histogram series keep their values (exact buckets).
	TimerHistogram
)

// TimerAggregations maps the timer-aggregation key's values to theirs.
var TimerAggregations = map[string]TimerAggregation{"exact": TimerExact, "histogram": TimerHistogram}

func (m TimerAggregation) String() string {
	if m == TimerHistogram {
		return "histogram"
	}
	return "exact"
}

// Histogram adds a forwarded timer histogram to the current series (a
// timer); sampleCount is Σ 1/rate over its values (its count when not
// positive and finite). The histogram is rebuilt within this aggregator's
// HistogramMaxBuckets. It returns histogram.ErrInvalid (wrapped) for a
// histogram that does not hold together, and adds nothing then.
func (t *Batcher) Histogram(d *histogram.Data, sampleCount float64) error {
	h, err := histogram.FromData(d, t.a.opts.HistogramMaxBuckets)
	if err != nil {
		return fmt.Errorf("cannot use a forwarded histogram: %w", err)
	}
	if h.Count() == 0 {
		return nil
	}
	if !(sampleCount > 0) || math.IsInf(sampleCount, 0) {
		sampleCount = float64(h.Count())
	}
	b, rec := t.current()
	b.hists = append(b.hists, h)
	rec.typ, rec.val, rec.rate, rec.hist = statsd.Timer, sampleCount, 1, uint32(len(b.hists))
	t.push(rec)
	return nil
}

// applyHistogram adds a sample (histogram mode) or a forwarded histogram
// (rec.hist, either mode) to timer t.
func (s *shard) applyHistogram(t *timerState, b *Batch, rec *record) {
	if rec.hist == 0 {
		if t.exp == nil {
			t.exp = histogram.New(s.a.opts.HistogramMaxBuckets)
		}
		t.exp.Add(rec.val)
		t.sampled += 1 / rec.rate
		return
	}
	h := b.hists[rec.hist-1]
	b.hists[rec.hist-1] = nil
	t.sampled += rec.val
	switch {
	case s.a.opts.TimerAggregation != TimerHistogram || t.hist != nil:
		// Exact mode, or a gsd_histogram series: the values the buckets
		// stand for (each within its bucket's width of a real one).
		if t.values == nil {
			t.values = make([]float64, 0, h.Count())
		}
		t.values = h.AppendValues(t.values)
	case t.exp == nil:
		t.exp = h // built for this aggregator by Batcher.Histogram
	default:
		t.exp.Merge(h)
	}
}

// histogramAggregate is timerAggregate for a timer in histogram mode: the
// statistics from t.exp, which it hands over to the result.
func (s *shard) histogramAggregate(t *timerState, secs float64, pctBuf []model.Percentile) (model.Timer, []model.Percentile) {
	h := t.exp
	out := model.Timer{Series: t.Series, SampledCount: t.sampled, Exp: h, Unscaled: t.unscaled}
	n := h.Count()
	if n == 0 {
		return out, pctBuf
	}
	count := float64(n)
	out.Count = math.Floor(t.sampled + 0.5)
	out.PerSecond = t.sampled / secs
	out.Lower, out.Upper = h.Min(), h.Max()
	out.Sum, out.SumSquares = h.Sum(), h.SumSquares()
	out.Mean = out.Sum / count
	out.Std = math.Sqrt(max(out.SumSquares/count-out.Mean*out.Mean, 0))
	if n%2 == 0 {
		out.Median = (h.ValueAt(n/2) + h.ValueAt(n/2+1)) / 2
	} else {
		out.Median = h.ValueAt(n/2 + 1)
	}
	dis := s.a.opts.DisabledSubMetrics
	first := len(pctBuf)
	for _, p := range s.a.pcts {
		k := n
		if n > 1 {
			k = uint64(math.Floor(math.Abs(p.p)/100*count + 0.5))
			if k == 0 {
				continue
			}
		}
		var pSum, pSumSq, bound float64
		if p.p > 0 {
			bound = h.ValueAt(k)
			pSum, pSumSq = h.SumLowest(k)
		} else {
			bound = h.ValueAt(n - k + 1)
			pSum, pSumSq = h.SumHighest(k)
		}
		pctBuf = appendPct(pctBuf, dis, &p, int(k), pSum, pSumSq, bound)
	}
	if len(pctBuf) > first {
		out.Percentiles = pctBuf[first:len(pctBuf):len(pctBuf)]
	}
	return out, pctBuf
}

// appendPct appends percentile p's sub-metrics over its k values (those
// not disabled): count_P, mean_P, sum_P, sum_squares_P and upper_P (lower_-P).
func appendPct(dst []model.Percentile, dis model.SubMetrics, p *pct, k int, sum, sumSq, bound float64) []model.Percentile {
	add := func(sub model.SubMetrics, name string, v float64) {
		if !dis.Has(sub) {
			dst = append(dst, model.Percentile{Name: name, Value: v})
		}
	}
	add(model.SubCountPct, p.count, float64(k))
	add(model.SubMeanPct, p.mean, sum/float64(k))
	add(model.SubSumPct, p.sum, sum)
	add(model.SubSumSquaresPct, p.sumSquares, sumSq)
	if p.p > 0 {
		add(model.SubUpperPct, p.bound, bound)
	} else {
		add(model.SubLowerPct, p.bound, bound)
	}
	return dst
}
