package ingest

import (
	"encoding/binary"
	"errors"
	"math"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
)

// The streaming decoder of /v2/raw and /v3/raw bodies (decode_v2.go,
// decode_v3.go) reads the protobuf wire format with protowire, straight
// into the SeriesWriter: names, tags, sources and set members are strings
// over the request body (the SeriesWriter copies what it keeps into its
// series keys and batches), values go through scratch slices reused from
// request to request. Nothing is allocated per series.
//
// A body is read twice: a checking pass (structure, UTF-8, what the
// streaming decoder does not model) and then the applying pass, so that a
// body refused halfway applies nothing, as before. A body the checking pass
// refuses goes to the generated code (decode_generated.go), which applies
// it or refuses it with the same error as ever: the few messages the
// streaming decoder does not model (a repeated map key, a map value sent
// in several pieces, for now a v3 timer with a histogram) keep their exact
// protobuf meaning.

// errStream is a body the streaming decoder leaves to the generated code.
var errStream = errors.New("left to the generated decoder")

// Series kinds, the index of decoder.n.
const (
	kCounter = iota
	kGauge
	kSet
	kTimer
)

// field is one field of a message, as nextField reads it.
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte // the payload of a length-delimited field
	u   uint64 // the value of a varint or fixed-size field
}

// nextField reads the field at the start of *b into f and moves *b past
// it. Groups, which no field here is, are skipped whole.
func nextField(b *[]byte, f *field) error {
	// The common case first: a one-byte tag and a one-byte length or a
	// fixed 8 bytes.
	if p := *b; len(p) >= 2 && p[0] < 0x80 && p[0] >= 8 {
		switch typ := protowire.Type(p[0] & 7); {
		case typ == protowire.BytesType && p[1] < 0x80 && int(p[1]) <= len(p)-2:
			f.num, f.typ, f.b, f.u = protowire.Number(p[0]>>3), typ, p[2:2+p[1]], 0
			*b = p[2+p[1]:]
			return nil
		case typ == protowire.Fixed64Type && len(p) >= 9:
			f.num, f.typ, f.b, f.u = protowire.Number(p[0]>>3), typ, nil, binary.LittleEndian.Uint64(p[1:9])
			*b = p[9:]
			return nil
		}
	}
	num, typ, n := protowire.ConsumeTag(*b)
	if n < 0 || num > protowire.MaxValidNumber {
		return errStream
	}
	rest := (*b)[n:]
	f.num, f.typ, f.b, f.u = num, typ, nil, 0
	switch typ {
	case protowire.VarintType:
		f.u, n = protowire.ConsumeVarint(rest)
	case protowire.Fixed64Type:
		f.u, n = protowire.ConsumeFixed64(rest)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(rest)
		f.u = uint64(v)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(rest)
	default:
		n = protowire.ConsumeFieldValue(num, typ, rest)
	}
	if n < 0 {
		return errStream
	}
	*b = rest[n:]
	return nil
}

// double is a double field's value; ok is false for another wire type
// (protobuf then treats the field as unknown).
func (f *field) double() (float64, bool) {
	return math.Float64frombits(f.u), f.typ == protowire.Fixed64Type
}

// appendDoubles appends the values of a repeated double field, packed or
// not; false means a packed payload that is not whole doubles.
func (f *field) appendDoubles(vs []float64) ([]float64, bool) {
	switch f.typ {
	case protowire.Fixed64Type:
		vs = append(vs, math.Float64frombits(f.u))
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return vs, false
		}
		for b := f.b; len(b) > 0; b = b[8:] {
			vs = append(vs, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
	}
	return vs, true
}

// str returns a string field's value as a string over the body; while
// checking, false means it is not UTF-8 (protobuf refuses it in proto3).
func (d *decoder) str(f *field) (string, bool) {
	if d.checking && !utf8.Valid(f.b) {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(f.b), len(f.b)), true
}

// series is the series being decoded: its strings are over the body, its
// slices the decoder's scratch.
type series struct {
	name, source string
	tags         []string
	value        float64 // counter and gauge
	at           int64   // counter and gauge: time_unix_nano (v3)
	sampleCount  float64 // timer
	values       []float64
	members      []string
	sketch       hll.Data // set: field 5, when hasSketch; Registers over the body
	hasSketch    bool
}

func (s *series) reset() {
	s.name, s.source, s.value, s.sampleCount, s.at = "", "", 0, 0, 0
	s.tags, s.values, s.members = s.tags[:0], s.values[:0], s.members[:0]
	s.sketch, s.hasSketch = hll.Data{Hashes: s.sketch.Hashes[:0]}, false
}

// seriesSink receives decoded series: a *receiver.SeriesWriter, or a
// test's recorder. The strings and slices given are valid only during the
// call.
type seriesSink interface {
	// at is when the point is for (unix nanos; v3 time_unix_nano), 0 = now.
	Counter(name string, tags []string, source string, value float64, at int64)
	Gauge(name string, tags []string, source string, value float64, at int64)
	Set(name string, tags []string, source string, members []string)
	Timer(name string, tags []string, source string, values []float64, sampleCount float64)
	TimerHistogram(name string, tags []string, source string, d *histogram.Data, sampleCount float64) bool
	SetSketch(name string, tags []string, source string, d *hll.Data) bool
}

// decoder decodes bodies into a sink. It is reused from request to request
// (its scratch memory with it) but is not safe for concurrent use.
type decoder struct {
	sink     seriesSink
	checking bool // the checking pass: nothing is applied
	s        series
	n        [4]int // series applied, by kind
	bad      int    // series skipped: no name
	batchID  []byte // v3
	seen     [4]map[string]struct{}
	seenTags []string            // v2: the tags keys of the current name
	tagSet   map[string]struct{} // v2: the same, when there are many
}

// apply hands the current series of kind k to the sink (or, while
// checking, only looks at it) and counts it.
func (d *decoder) apply(k int) {
	s := &d.s
	if s.name == "" {
		d.bad++
		return
	}
	d.n[k]++
	if d.checking {
		return
	}
	switch k {
	case kCounter:
		d.sink.Counter(s.name, s.tags, s.source, s.value, s.at)
	case kGauge:
		d.sink.Gauge(s.name, s.tags, s.source, s.value, s.at)
	case kSet:
		d.sink.Set(s.name, s.tags, s.source, s.members)
		if s.hasSketch && !d.sink.SetSketch(s.name, s.tags, s.source, &s.sketch) {
			d.bad++ // counted as applied and as invalid, as a bad histogram
		}
	case kTimer:
		d.sink.Timer(s.name, s.tags, s.source, s.values, s.sampleCount)
	}
}

// start readies d for a pass over a body.
func (d *decoder) start(checking bool) {
	d.checking, d.n, d.bad, d.batchID = checking, [4]int{}, 0, nil
}

// maxPooledScratch bounds the scratch memory a decoder keeps between
// requests (entries of a slice or map): one huge body does not stay pinned.
const maxPooledScratch = 1 << 16

// release drops what d holds of the last body (it keeps its sink).
func (d *decoder) release() {
	s := &d.s
	s.reset()
	s.tags = dropOrClear(s.tags)
	s.members = dropOrClear(s.members)
	if cap(s.values) > maxPooledScratch {
		s.values = nil
	}
	if cap(s.sketch.Hashes) > maxPooledScratch {
		s.sketch.Hashes = nil
	}
	d.seenTags = dropOrClear(d.seenTags)
	for i, m := range d.seen {
		if len(m) > maxPooledScratch {
			d.seen[i] = nil
		}
		clear(m)
	}
	if len(d.tagSet) > maxPooledScratch {
		d.tagSet = nil
	}
	clear(d.tagSet)
	d.batchID = nil
}

// dropOrClear returns ss emptied of its strings over the body, or nil if it
// grew over maxPooledScratch.
func dropOrClear(ss []string) []string {
	if cap(ss) > maxPooledScratch {
		return nil
	}
	clear(ss[:cap(ss)])
	return ss[:0]
}
