package aggregator

import (
	"fmt"

	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// SetAggregation is what a set series keeps over a flush interval.
type SetAggregation uint8

const (
	// SetExact keeps every distinct member: an exact count,
	// gostatsd-identical.
	SetExact SetAggregation = iota
	// SetHLL keeps a HyperLogLog sketch (pkg/hll) and no members: exact
	// while small (sparse), then 2^HLLPrecision bytes whatever the
	// traffic, within 1.04/sqrt(2^HLLPrecision) (one standard error); a
	// forwarder ships the sketch instead of the members.
	SetHLL
)

// SetAggregations maps the set-aggregation key's values to theirs.
var SetAggregations = map[string]SetAggregation{"exact": SetExact, "hll": SetHLL}

func (m SetAggregation) String() string {
	if m == SetHLL {
		return "hll"
	}
	return "exact"
}

// Sketch adds a forwarded set sketch (v3 Set field 5) to the current series
// (a set), reduced to this aggregator's HLLPrecision if finer. It returns
// hll.ErrInvalid (wrapped) for a sketch that does not hold together, and
// adds nothing then.
func (t *Batcher) Sketch(d *hll.Data) error {
	sk, err := hll.FromData(d, t.a.opts.HLLPrecision)
	if err != nil {
		return fmt.Errorf("cannot use a forwarded set sketch: %w", err)
	}
	if sk.Estimate() == 0 {
		return nil
	}
	b, rec := t.current()
	b.sketches = append(b.sketches, sk)
	rec.typ, rec.rate, rec.hist = statsd.Set, 1, uint32(len(b.sketches))
	t.push(rec)
	return nil
}

// applySketch adds a member (hll mode, or a set that got a sketch this
// interval) or a forwarded sketch (rec.hist, either mode) to set st. In
// exact mode a sketch turns the set into a sketch for the interval (its
// members are added to it): its count is then the estimate, counted in
// garner_aggregator_exact_set_sketches_total.
func (s *shard) applySketch(st *setState, b *Batch, rec *record) {
	if rec.hist == 0 {
		if st.sketch == nil {
			st.sketch = hll.New(s.a.opts.HLLPrecision)
		}
		st.sketch.Add(s.member)
		return
	}
	sk := b.sketches[rec.hist-1]
	b.sketches[rec.hist-1] = nil
	if s.a.opts.SetAggregation != SetHLL {
		s.a.m.exactSketches.Inc()
	}
	if st.sketch == nil {
		st.sketch = sk // built for this aggregator by Batcher.Sketch
	} else {
		st.sketch.Merge(sk)
	}
	for m := range st.members { // exact mode: what came before the sketch
		st.sketch.AddString(m)
	}
	st.members = nil
}
