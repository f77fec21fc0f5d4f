package ingest

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"
)

// garner's RawBatch (proto/garner_v3.proto): field 1 the batch id, 2-5
// repeated Counter, Gauge, Set and Timer messages, 6 the forwarder.

// v3Kinds maps a RawBatch field to its series kind.
var v3Kinds = [...]int{2: kCounter, 3: kGauge, 4: kSet, 5: kTimer}

// rawV3 decodes a RawBatch body; the checking pass also sets d.batchID.
// While checking, errStream means the body is left to the generated code.
func (d *decoder) rawV3(body []byte) error {
	var f field
	for b := body; len(b) > 0; {
		if err := nextField(&b, &f); err != nil {
			return err
		}
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case 1:
			d.batchID = f.b
		case 2, 3, 4, 5:
			k := v3Kinds[f.num]
			if err := d.seriesV3(k, f.b); err != nil {
				return err
			}
			d.apply(k)
		case 6:
			if _, ok := d.str(&f); !ok {
				return errStream
			}
		}
	}
	return nil
}

// seriesV3 decodes a Counter, Gauge, Set or Timer into d.s. Each field is
// one case: a new field is one more.
func (d *decoder) seriesV3(k int, b []byte) error {
	s := &d.s
	s.reset()
	var f field
	for len(b) > 0 {
		if err := nextField(&b, &f); err != nil {
			return err
		}
		ok := true
		switch {
		case f.num == 1 && f.typ == protowire.BytesType: // name
			s.name, ok = d.str(&f)
		case f.num == 2 && f.typ == protowire.BytesType: // tags
			var t string
			t, ok = d.str(&f)
			s.tags = append(s.tags, t)
		case f.num == 3 && f.typ == protowire.BytesType: // source
			s.source, ok = d.str(&f)
		case f.num == 4 && (k == kCounter || k == kGauge): // value
			if v, isDouble := f.double(); isDouble {
				s.value = v
			}
		case f.num == 4 && k == kSet && f.typ == protowire.BytesType: // members
			var m string
			m, ok = d.str(&f)
			s.members = append(s.members, m)
		case f.num == 4 && k == kTimer: // sample_count
			if v, isDouble := f.double(); isDouble {
				s.sampleCount = v
			}
		case f.num == 5 && (k == kCounter || k == kGauge) && f.typ == protowire.VarintType: // time_unix_nano
			s.at = int64(f.u)
		case f.num == 5 && k == kTimer: // values
			s.values, ok = f.appendDoubles(s.values)
		case f.num == 5 && k == kSet && f.typ == protowire.BytesType: // hll
			if s.hasSketch {
				return errStream // two pieces merge into one message: the generated code's job
			}
			s.hasSketch = true
			ok = s.sketchV3(f.b)
		case f.num == 6 && k == kTimer && f.typ == protowire.BytesType: // histogram
			return errStream // decoded and merged by the generated code, for now
		}
		if !ok {
			return errStream
		}
	}
	return nil
}

// sketchV3 decodes a HyperLogLog message into s.sketch; false means one
// the streaming decoder leaves to the generated code (a field repeated or
// of an unexpected wire type, hashes not whole fixed64s).
func (s *series) sketchV3(b []byte) bool {
	d := &s.sketch
	var f field
	seen := 0
	for len(b) > 0 {
		if nextField(&b, &f) != nil {
			return false
		}
		switch f.num {
		case 1: // precision
			if f.typ != protowire.VarintType || seen&1 != 0 {
				return false
			}
			seen |= 1
			d.Precision = int32(min(f.u, 1<<20))
		case 2: // registers
			if f.typ != protowire.BytesType || seen&2 != 0 {
				return false
			}
			seen |= 2
			d.Registers = f.b
		case 3: // hashes, packed or not
			switch f.typ {
			case protowire.Fixed64Type:
				d.Hashes = append(d.Hashes, f.u)
			case protowire.BytesType:
				if len(f.b)%8 != 0 {
					return false
				}
				for p := f.b; len(p) > 0; p = p[8:] {
					d.Hashes = append(d.Hashes, binary.LittleEndian.Uint64(p))
				}
			default:
				return false
			}
		}
	}
	return true
}
