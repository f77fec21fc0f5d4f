package ingest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// recorder is a seriesSink that writes down every series it is given.
type recorder struct{ got []string }

func (r *recorder) add(kind, name string, tags []string, source string, nums []float64, members []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %q %q", kind, name, tags, source)
	for _, v := range nums {
		fmt.Fprintf(&b, " %x", math.Float64bits(v))
	}
	fmt.Fprintf(&b, " %q", members)
	r.got = append(r.got, b.String())
}

func (r *recorder) Counter(name string, tags []string, source string, value float64, at int64) {
	r.add("c", name, tags, source, []float64{value, float64(at)}, nil)
}

func (r *recorder) Gauge(name string, tags []string, source string, value float64, at int64) {
	r.add("g", name, tags, source, []float64{value, float64(at)}, nil)
}

func (r *recorder) Set(name string, tags []string, source string, members []string) {
	r.add("s", name, tags, source, nil, members)
}

func (r *recorder) Timer(name string, tags []string, source string, values []float64, sampleCount float64) {
	r.add("ms", name, tags, source, append([]float64{sampleCount}, values...), nil)
}

func (r *recorder) SetSketch(name string, tags []string, source string, d *hll.Data) bool {
	r.add("hll", name, tags, source, nil, []string{fmt.Sprintf("%+v", *d)})
	return d.Validate() == nil
}

func (r *recorder) TimerHistogram(name string, tags []string, source string, d *histogram.Data, sampleCount float64) bool {
	r.add("h", name, tags, source, []float64{sampleCount}, []string{fmt.Sprintf("%+v", *d)})
	return true
}

// stream runs the streaming decoder as the handler does: the checking
// pass, then the applying one. errStream means the body goes to the
// generated code.
func stream(d *decoder, body []byte, decode func(*decoder, []byte) error) error {
	d.start(true)
	if err := decode(d, body); err != nil {
		return err
	}
	id := d.batchID
	d.start(false)
	if err := decode(d, body); err != nil {
		return fmt.Errorf("the applying pass failed after the checking pass: %w", err)
	}
	d.batchID = id
	return nil
}

// streamTakes decodes body with d as the handlers do (stream) and reports
// whether the streaming decoder took it; it fails the test when the
// decoder took a body the generated code refused (werr).
func streamTakes(t *testing.T, d *decoder, body []byte, decode func(*decoder, []byte) error, werr error) bool {
	t.Helper()
	if err := stream(d, body, decode); err != nil {
		if err != errStream {
			t.Fatal(err)
		}
		return false
	}
	if werr != nil {
		t.Fatalf("the streaming decoder takes a body the generated code refuses (%v): %x", werr, body)
	}
	return true
}

// diffV2 checks the streaming decoder against the generated code on one
// body and reports whether the streaming decoder took it.
func diffV2(t *testing.T, body []byte) bool {
	t.Helper()
	var want, got recorder
	wn, wbad, werr := generatedV2(body, &want)
	d := &decoder{sink: &got}
	defer d.release()
	if !streamTakes(t, d, body, (*decoder).rawV2, werr) {
		return false
	}
	slices.Sort(want.got) // from maps: in no order
	slices.Sort(got.got)
	if !slices.Equal(want.got, got.got) || wn != d.n || wbad != d.bad {
		t.Fatalf("v2 body %x:\ngenerated %v %d\n%s\nstreaming %v %d\n%s", body, wn, wbad,
			strings.Join(want.got, "\n"), d.n, d.bad, strings.Join(got.got, "\n"))
	}
	return true
}

// diffV3 is diffV2 for a RawBatch, whose series keep their order.
func diffV3(t *testing.T, body []byte) bool {
	t.Helper()
	var want, got recorder
	msg, werr := generatedV3(body)
	d := &decoder{sink: &got}
	defer d.release()
	if !streamTakes(t, d, body, (*decoder).rawV3, werr) {
		return false
	}
	wn, wbad := applyGeneratedV3(msg, &want)
	// The generated code applies counters, then gauges, sets and timers;
	// the streaming decoder in wire order, where the types may interleave.
	// Only the order within a type matters (last gauge wins): compare that.
	byKind(want.got)
	byKind(got.got)
	if !slices.Equal(want.got, got.got) || wn != d.n || wbad != d.bad || string(msg.BatchId) != string(d.batchID) {
		t.Fatalf("v3 body %x:\ngenerated %q %v %d\n%s\nstreaming %q %v %d\n%s", body, msg.BatchId, wn, wbad,
			strings.Join(want.got, "\n"), d.batchID, d.n, d.bad, strings.Join(got.got, "\n"))
	}
	return true
}

// byKind orders recorded series by their kind, keeping the order within one.
func byKind(got []string) {
	slices.SortStableFunc(got, func(a, b string) int {
		ka, _, _ := strings.Cut(a, " ")
		kb, _, _ := strings.Cut(b, " ")
		return strings.Compare(ka, kb)
	})
}

// randomStrings returns up to n strings, some empty, some not ASCII.
func randomStrings(r *rand.Rand, n int) []string {
	pool := []string{"", "a", "env:prod", "host:x", "a,b", "é:ü", "x\x00y", "service:api", "k:v:w"}
	var ss []string
	for i := r.IntN(n + 1); i > 0; i-- {
		ss = append(ss, pool[r.IntN(len(pool))])
	}
	return ss
}

func randomFloats(r *rand.Rand, n int) []float64 {
	pool := []float64{0, 1, -1.5, 1e300, math.Inf(1), math.NaN(), 3}
	var vs []float64
	for i := r.IntN(n + 1); i > 0; i-- {
		vs = append(vs, pool[r.IntN(len(pool))])
	}
	return vs
}

// one returns one of randomStrings, or "".
func one(r *rand.Rand) string {
	if ss := randomStrings(r, 1); len(ss) > 0 {
		return ss[0]
	}
	return ""
}

func randomV2(r *rand.Rand) *pb.RawMessageV2 {
	m := &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{}, Gauges: map[string]*pb.GaugeTagV2{},
		Sets: map[string]*pb.SetTagV2{}, Timers: map[string]*pb.TimerTagV2{}}
	for _, name := range randomStrings(r, 4) {
		c, g, s, t := map[string]*pb.RawCounterV2{}, map[string]*pb.RawGaugeV2{}, map[string]*pb.RawSetV2{}, map[string]*pb.RawTimerV2{}
		for _, k := range randomStrings(r, 40) {
			c[k] = &pb.RawCounterV2{Tags: randomStrings(r, 3), Hostname: one(r), Value: r.Int64N(1000) - 500}
			g[k] = &pb.RawGaugeV2{Tags: randomStrings(r, 3), Hostname: one(r), Value: r.NormFloat64()}
			s[k] = &pb.RawSetV2{Tags: randomStrings(r, 3), Hostname: one(r), Values: randomStrings(r, 4)}
			t[k] = &pb.RawTimerV2{Tags: randomStrings(r, 3), Hostname: one(r), Values: randomFloats(r, 5), SampleCount: r.Float64() * 10}
		}
		m.Counters[name] = &pb.CounterTagV2{TagMap: c}
		m.Gauges[name] = &pb.GaugeTagV2{TagMap: g}
		m.Sets[name] = &pb.SetTagV2{TagMap: s}
		m.Timers[name] = &pb.TimerTagV2{TagMap: t}
	}
	return m
}

func randomV3(r *rand.Rand) *garnerpb.RawBatch {
	m := &garnerpb.RawBatch{BatchId: []byte(one(r)), Forwarder: one(r)}
	for i := r.IntN(20); i > 0; i-- {
		m.Counters = append(m.Counters, &garnerpb.Counter{Name: one(r), Tags: randomStrings(r, 3), Source: one(r), Value: r.Float64(), TimeUnixNano: r.Int64N(3) * 1_700_000_000e9})
		m.Gauges = append(m.Gauges, &garnerpb.Gauge{Name: one(r), Tags: randomStrings(r, 3), Source: one(r), Value: -r.Float64(), TimeUnixNano: r.Int64N(3) * 1_700_000_010e9})
		m.Sets = append(m.Sets, &garnerpb.Set{Name: one(r), Tags: randomStrings(r, 3), Source: one(r), Members: randomStrings(r, 4), Hll: randomSketch(r)})
		m.Timers = append(m.Timers, &garnerpb.Timer{Name: one(r), Tags: randomStrings(r, 3), Source: one(r), Values: randomFloats(r, 6), SampleCount: r.Float64()})
	}
	return m
}

// randomSketch returns no sketch, a sparse one, a dense one of precision 4
// or an invalid one (a rank too high, a precision outside 4..18).
func randomSketch(r *rand.Rand) *garnerpb.HyperLogLog {
	switch r.IntN(5) {
	case 0:
		return &garnerpb.HyperLogLog{Precision: 14, Hashes: []uint64{r.Uint64(), r.Uint64(), 0}}
	case 1:
		regs := make([]byte, 16)
		for i := range regs {
			regs[i] = byte(r.IntN(62))
		}
		return &garnerpb.HyperLogLog{Precision: 4, Registers: regs, Hashes: []uint64{r.Uint64()}}
	case 2:
		return &garnerpb.HyperLogLog{Precision: uint32(r.IntN(40))}
	}
	return nil
}

// TestStreamingMatchesGenerated checks the streaming decoder against the
// generated code on random valid messages: every one is taken by the
// streaming decoder, with the same series, tags and values.
func TestStreamingMatchesGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	for i := 0; i < 500; i++ {
		if !diffV2(t, mustMarshal(t, randomV2(r))) {
			t.Fatal("a valid v2 body was left to the generated code")
		}
		if !diffV3(t, mustMarshal(t, randomV3(r))) {
			t.Fatal("a valid v3 body was left to the generated code")
		}
	}
	if !diffV2(t, mustMarshal(t, gostatsdBody())) {
		t.Fatal("the gostatsd body was left to the generated code")
	}
}

// TestStreamingLeavesWhatItDoesNotModel: a repeated map key (two messages
// concatenated merge, the second's value winning), a bad string and (for
// now) a timer with a histogram go to the generated code.
func TestStreamingLeavesWhatItDoesNotModel(t *testing.T) {
	a := mustMarshal(t, &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{"c": {TagMap: map[string]*pb.RawCounterV2{"k": {Value: 1}}}}})
	b := mustMarshal(t, &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{"c": {TagMap: map[string]*pb.RawCounterV2{"k": {Value: 2}}}}})
	bad := mustMarshal(t, &garnerpb.RawBatch{Counters: []*garnerpb.Counter{{Name: "c"}}})
	bad[len(bad)-1] = 0xff // the name "c" → "\xff"
	hist := mustMarshal(t, &garnerpb.RawBatch{Timers: []*garnerpb.Timer{{Name: "t", SampleCount: 1, Histogram: &garnerpb.Histogram{Count: 1, Sum: 1, Min: 1, Max: 1, PositiveCounts: []uint64{1}}}}})
	for _, tc := range []struct {
		body []byte
		v3   bool
	}{{append(a, b...), false}, {bad, true}, {hist, true}} {
		d := &decoder{sink: &recorder{}}
		fn := (*decoder).rawV2
		if tc.v3 {
			fn = (*decoder).rawV3
		}
		if err := stream(d, tc.body, fn); err != errStream {
			t.Errorf("%x: %v, want errStream", tc.body, err)
		}
	}
}

// TestStreamingAllocatesNothing: once warm, decoding a body allocates
// nothing, whatever its number of series.
func TestStreamingAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		body   []byte
		decode func(*decoder, []byte) error
	}{
		{mustMarshal(t, randomV2(r)), (*decoder).rawV2},
		{mustMarshal(t, randomV3(r)), (*decoder).rawV3},
	} {
		d := &decoder{sink: nopSink{}}
		allocs := testing.AllocsPerRun(20, func() {
			if err := stream(d, tc.body, tc.decode); err != nil {
				t.Fatal(err)
			}
			d.release()
		})
		if allocs != 0 {
			t.Errorf("%v allocations per body", allocs)
		}
	}
}

type nopSink struct{}

func (nopSink) Counter(string, []string, string, float64, int64)   {}
func (nopSink) Gauge(string, []string, string, float64, int64)     {}
func (nopSink) Set(string, []string, string, []string)             {}
func (nopSink) Timer(string, []string, string, []float64, float64) {}
func (nopSink) TimerHistogram(string, []string, string, *histogram.Data, float64) bool {
	return true
}
func (nopSink) SetSketch(string, []string, string, *hll.Data) bool { return true }

// TestHandlerFallbackAndHalfRefused: through the handler, a body with a
// repeated map key is applied as the generated code reads it (the last
// value wins), and a body whose second half is broken is refused and
// applies nothing of its first half, for v2 and v3.
func TestHandlerFallbackAndHalfRefused(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true})
	counter := func(v int64) []byte {
		return mustMarshal(t, &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{"c": {TagMap: map[string]*pb.RawCounterV2{"k": {Value: v}}}}})
	}
	v3 := mustMarshal(t, &garnerpb.RawBatch{BatchId: []byte("half"), Counters: []*garnerpb.Counter{{Name: "c3", Value: 1}}})
	for _, tc := range []struct {
		path string
		body []byte
		want int
	}{
		{"/v2/raw", append(counter(1), counter(2)...), http.StatusAccepted},
		{"/v2/raw", append(counter(5), 0x0a, 0x7f), http.StatusBadRequest}, // a length past the end
		{"/v3/raw", append(v3, 0x12, 0x7f), http.StatusBadRequest},
	} {
		if resp := f.post(tc.path, "", tc.body); resp.StatusCode != tc.want {
			t.Fatalf("%s %x: status %d, want %d", tc.path, tc.body, resp.StatusCode, tc.want)
		}
	}
	s := f.flush()
	if len(s.Counters) != 1 || s.Counters[0].Name != "c" || s.Counters[0].Value != 2 {
		t.Fatalf("counters %+v, want only c = 2", s.Counters)
	}
}
