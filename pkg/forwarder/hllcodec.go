package forwarder

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
)

// Set sketches on the wire (garner.v3.Set field 5, a garner.v3.HyperLogLog),
// written from the snapshot's sketch without the generated structs, as the
// rest of codec.go.

// Field numbers of garner.v3.Set.hll and garner.v3.HyperLogLog.
const (
	v3SetHLL = 5

	hllPrecision = 1
	hllRegisters = 2
	hllHashes    = 3
)

// sketchSize is the size of a HyperLogLog message's fields.
func sketchSize(d *hll.Data) int {
	n := sizeVarintField(hllPrecision, uint64(d.Precision))
	if len(d.Registers) > 0 {
		n += protowire.SizeTag(hllRegisters) + protowire.SizeBytes(len(d.Registers))
	}
	if len(d.Hashes) > 0 {
		n += protowire.SizeTag(hllHashes) + protowire.SizeBytes(8*len(d.Hashes))
	}
	return n
}

// appendSketch appends d as field num (a HyperLogLog message).
func appendSketch(b []byte, num protowire.Number, d *hll.Data) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sketchSize(d)))
	b = appendVarintField(b, hllPrecision, uint64(d.Precision))
	if len(d.Registers) > 0 {
		b = protowire.AppendTag(b, hllRegisters, protowire.BytesType)
		b = protowire.AppendBytes(b, d.Registers)
	}
	if len(d.Hashes) > 0 {
		b = protowire.AppendTag(b, hllHashes, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(8*len(d.Hashes)))
		for _, h := range d.Hashes {
			b = protowire.AppendFixed64(b, h)
		}
	}
	return b
}

// appendV3Set appends a garner.v3.Set: the series, its members and, in
// hll mode, its sketch (field 5).
func (e *encoder) appendV3Set(b []byte, s *model.Set) []byte {
	n := seriesSize(&s.Series)
	for m := range s.Members {
		n += protowire.SizeTag(v3Value) + protowire.SizeBytes(len(m))
	}
	if s.Sketch != nil {
		s.Sketch.Export(&e.sketch)
		n += protowire.SizeTag(v3SetHLL) + protowire.SizeBytes(sketchSize(&e.sketch))
	}
	b = protowire.AppendTag(b, v3Sets, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendSeries(b, &s.Series)
	for m := range s.Members {
		b = protowire.AppendTag(b, v3Value, protowire.BytesType)
		b = protowire.AppendString(b, m)
	}
	if s.Sketch != nil {
		b = appendSketch(b, v3SetHLL, &e.sketch)
	}
	return b
}

// v2Members are the members a v2 (gostatsd) upstream gets for the sketch
// sets among sets: hll.StandIns, the hashes of a sparse sketch (exact) or
// as many made-up members as a dense one's estimate (counted in
// garner_forwarder_v2_estimated_sets_total: the upstream's union of such
// sets over forwarders is their largest count, not the union's).
func (e *encoder) v2Members(sets []model.Set, sel []int32) {
	clear(e.standIns)
	for _, i := range sel {
		st := &sets[i]
		if st.Sketch == nil {
			continue
		}
		if e.standIns == nil {
			e.standIns = map[int32][]string{}
		}
		ms := make([]string, 0, min(st.Estimate, hll.MaxStandIns)+uint64(len(st.Members)))
		for m := range st.Members {
			ms = append(ms, m)
		}
		if !st.Sketch.StandIns(func(m string) { ms = append(ms, m) }) {
			e.nEstimatedSets++
		}
		e.standIns[i] = ms
	}
}

// takeEstimatedSets returns how many sets were sent as made-up members
// since the last call.
func (e *encoder) takeEstimatedSets() int {
	n := e.nEstimatedSets
	e.nEstimatedSets = 0
	return n
}
