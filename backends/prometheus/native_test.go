package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
)

// nativeHist is a decoded prompb Histogram (integer counts), its buckets
// expanded by Prometheus bucket index.
type nativeHist struct {
	count, zeroCount uint64
	sum, zeroThresh  float64
	schema           int32
	pos, neg         map[int32]uint64
	reset            uint64
	millis           int64
}

// decodeNativeHistogram parses a prompb Histogram, checking that its spans
// and deltas agree, no bucket count is negative and the counts add up.
func decodeNativeHistogram(b []byte) (*nativeHist, error) {
	h := &nativeHist{pos: map[int32]uint64{}, neg: map[int32]uint64{}}
	type span struct {
		offset int32
		length uint32
	}
	var posSpans, negSpans []span
	var posDeltas, negDeltas []int64
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			h.count = x
		case 3:
			h.sum = math.Float64frombits(x)
		case 4:
			h.schema = int32(protowire.DecodeZigZag(x))
		case 5:
			h.zeroThresh = math.Float64frombits(x)
		case 6:
			h.zeroCount = x
		case 8, 11:
			var s span
			err := eachField(v, func(num protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
				switch num {
				case 1:
					s.offset = int32(protowire.DecodeZigZag(x))
				case 2:
					s.length = uint32(x)
				default:
					return fmt.Errorf("unexpected BucketSpan field %d", num)
				}
				return nil
			})
			if num == 8 {
				negSpans = append(negSpans, s)
			} else {
				posSpans = append(posSpans, s)
			}
			return err
		case 9, 12:
			if typ != protowire.BytesType {
				return fmt.Errorf("deltas field %d not packed", num)
			}
			for len(v) > 0 {
				d, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return protowire.ParseError(n)
				}
				v = v[n:]
				if num == 9 {
					negDeltas = append(negDeltas, protowire.DecodeZigZag(d))
				} else {
					posDeltas = append(posDeltas, protowire.DecodeZigZag(d))
				}
			}
		case 14:
			h.reset = x
		case 15:
			h.millis = int64(x)
		default:
			return fmt.Errorf("unexpected Histogram field %d", num)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	total := h.zeroCount
	expand := func(spans []span, deltas []int64, into map[int32]uint64) error {
		var idx int32
		var cur int64
		k := 0
		for si, s := range spans {
			if s.length == 0 {
				return errors.New("empty span")
			}
			if si == 0 {
				idx = s.offset
			} else {
				idx += s.offset
			}
			for j := uint32(0); j < s.length; j++ {
				if k >= len(deltas) {
					return errors.New("fewer deltas than the spans' buckets")
				}
				cur += deltas[k]
				k++
				if cur < 0 {
					return fmt.Errorf("negative bucket count %d", cur)
				}
				if cur > 0 {
					into[idx] = uint64(cur)
				}
				total += uint64(cur)
				idx++
			}
		}
		if k != len(deltas) {
			return fmt.Errorf("%d deltas for %d buckets", len(deltas), k)
		}
		return nil
	}
	if err := expand(posSpans, posDeltas, h.pos); err != nil {
		return nil, err
	}
	if err := expand(negSpans, negDeltas, h.neg); err != nil {
		return nil, err
	}
	if total != h.count {
		return nil, fmt.Errorf("count %d, buckets add up to %d", h.count, total)
	}
	return h, nil
}

// promIndex is the Prometheus bucket index of v > 0 at schema: the i with
// base^(i-1) < v ≤ base^i, straight from the definition.
func promIndex(v float64, schema int32) int32 {
	return int32(math.Ceil(math.Log2(v) * math.Exp2(float64(schema))))
}

// wantBuckets is the native histogram of values at schema, each value
// weighing weight.
func wantBuckets(values []float64, schema int32, weight uint64) (pos, neg map[int32]uint64, zero uint64) {
	pos, neg = map[int32]uint64{}, map[int32]uint64{}
	for _, v := range values {
		switch {
		case v > 0:
			pos[promIndex(v, schema)] += weight
		case v < 0:
			neg[promIndex(-v, schema)] += weight
		default:
			zero += weight
		}
	}
	return pos, neg, zero
}

func equalBuckets(a, b map[int32]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// nativeOf is the one native histogram series named key in got.
func nativeOf(t *testing.T, got map[string]ts, key string) *nativeHist {
	t.Helper()
	s, ok := got[key]
	if !ok || s.hist == nil {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Fatalf("no native histogram %s; got %v", key, keys)
	}
	return s.hist
}

func checkNative(t *testing.T, what string, h *nativeHist, values []float64, weight uint64) {
	t.Helper()
	pos, neg, zero := wantBuckets(values, h.schema, weight)
	var sum float64
	for _, v := range values {
		sum += v
	}
	if h.count != uint64(len(values))*weight || h.zeroCount != zero || h.zeroThresh != 0 {
		t.Errorf("%s: count %d zero %d threshold %g, want %d %d 0", what, h.count, h.zeroCount, h.zeroThresh, uint64(len(values))*weight, zero)
	}
	if math.Abs(h.sum-sum) > 1e-9*math.Abs(sum) {
		t.Errorf("%s: sum %g, want %g", what, h.sum, sum)
	}
	if h.schema > maxSchema || h.schema < minSchema {
		t.Errorf("%s: schema %d outside Prometheus' %d..%d", what, h.schema, minSchema, maxSchema)
	}
	if !equalBuckets(h.pos, pos) {
		t.Errorf("%s: positive buckets at schema %d\n got %v\nwant %v", what, h.schema, h.pos, pos)
	}
	if !equalBuckets(h.neg, neg) {
		t.Errorf("%s: negative buckets at schema %d\n got %v\nwant %v", what, h.schema, h.neg, neg)
	}
}

func lognormal(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = math.Exp(math.Log(50) + r.NormFloat64()) // median 50 ms, ~1 ms .. 2.3 s
	}
	return vs
}

// histTimer is a timer as timer-aggregation = histogram hands it over.
func histTimer(name string, maxBuckets int, sampled float64, values ...float64) model.Timer {
	h := histogram.FromValues(values, maxBuckets)
	return model.Timer{Series: model.Series{Name: name, Source: "10.0.0.7"}, Exp: h, SampledCount: sampled,
		Count: math.Floor(sampled + 0.5), Lower: h.Min(), Upper: h.Max(), Sum: h.Sum()}
}

// exactTimer is a timer as timer-aggregation = exact hands it over.
func exactTimer(name string, sampled float64, values ...float64) model.Timer {
	vs := slices.Clone(values)
	slices.Sort(vs)
	t := model.Timer{Series: model.Series{Name: name, Source: "10.0.0.7"}, Values: vs, SampledCount: sampled, Count: math.Floor(sampled + 0.5)}
	for _, v := range vs {
		t.Sum += v
	}
	return t
}

func TestNativeHistograms(t *testing.T) {
	r := newReceiver(t)
	c, _, dropped := newClient(t, Options{RemoteWriteURL: r.srv.URL, Timers: TimersNativeHistogram}, 90)
	rnd := rand.New(rand.NewPCG(7, 8))

	a1 := lognormal(rnd, 3000)
	e1 := lognormal(rnd, 500)
	mixed := []float64{-4, -0.5, 0, 0, 1, 3, 1000}
	classic := model.Timer{Series: model.Series{Name: "resp.size", Tags: []string{"gsd_histogram:10"}, Source: "10.0.0.7"},
		Values: []float64{5, 50}, Histogram: []model.Bucket{{Le: 10, Count: 1}, {Le: math.Inf(1), Count: 2}}}
	snap := func(at time.Duration, ts ...model.Timer) *model.Snapshot { return testSnapshotAt(t0.Add(at), ts...) }
	send := func(s *model.Snapshot) map[string]ts {
		t.Helper()
		if err := c.SendMetrics(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		return r.take()
	}

	got := send(snap(0,
		histTimer("api.latency", 160, 3000, a1...),
		exactTimer("db.latency", 500, e1...),
		histTimer("sampled", histogram.DefaultMaxBuckets, 40, 1, 2, 3, 4), // @0.1
		exactTimer("sampled.exact", 40, 1, 2, 3, 4),
		histTimer("mixed", histogram.DefaultMaxBuckets, 7, mixed...),
		classic,
	))
	a := nativeOf(t, got, "api_latency{host=10.0.0.7}")
	checkNative(t, "flush 1 histogram mode", a, a1, 1)
	if a.reset != 1 || a.millis != t0.UnixMilli() {
		t.Errorf("first sample: reset hint %d at %d, want 1 (YES) at %d", a.reset, a.millis, t0.UnixMilli())
	}
	if want := min(histogram.FromValues(a1, 160).Scale(), maxSchema); a.schema != want {
		t.Errorf("schema %d, want the histogram's scale %d", a.schema, want)
	}
	checkNative(t, "flush 1 exact mode", nativeOf(t, got, "db_latency{host=10.0.0.7}"), e1, 1)
	checkNative(t, "sample rate 0.1", nativeOf(t, got, "sampled{host=10.0.0.7}"), []float64{1, 2, 3, 4}, 10)
	checkNative(t, "sample rate 0.1, exact mode", nativeOf(t, got, "sampled_exact{host=10.0.0.7}"), []float64{1, 2, 3, 4}, 10)
	checkNative(t, "negative and zero", nativeOf(t, got, "mixed{host=10.0.0.7}"), mixed, 1)
	for _, k := range []string{"resp_size_bucket{gsd_histogram=10,host=10.0.0.7,le=10}", "resp_size_count{gsd_histogram=10,host=10.0.0.7}"} {
		if s, ok := got[k]; !ok || s.hist != nil {
			t.Errorf("gsd_histogram timer: no classic series %s", k)
		}
	}
	if _, ok := got["api_latency_count{host=10.0.0.7}"]; ok {
		t.Error("native-histogram mode also sent the summary's _count")
	}

	// Flush 2: values far wider lower the scale of the running histogram;
	// the cumulative buckets hold both flushes' values at the new schema.
	a2 := []float64{1e-6, 1e6, 42}
	got = send(snap(10*time.Second, histTimer("api.latency", 160, 3, a2...), exactTimer("db.latency", 0)))
	b := nativeOf(t, got, "api_latency{host=10.0.0.7}")
	if b.schema >= a.schema {
		t.Errorf("schema %d after a wider flush, want below %d", b.schema, a.schema)
	}
	if b.reset != 0 {
		t.Errorf("second sample has reset hint %d, want none", b.reset)
	}
	checkNative(t, "flush 2 cumulative", b, append(slices.Clone(a1), a2...), 1)
	// An idle exact-mode timer re-sends its running histogram.
	checkNative(t, "flush 2 idle", nativeOf(t, got, "db_latency{host=10.0.0.7}"), e1, 1)

	// Flush 3: db.latency absent (expired): forgotten; flush 4: it comes
	// back from zero with the reset hint.
	send(snap(20*time.Second, histTimer("api.latency", 160, 1, 5)))
	got = send(snap(30*time.Second, exactTimer("db.latency", 2, 7, 8)))
	d := nativeOf(t, got, "db_latency{host=10.0.0.7}")
	checkNative(t, "came back", d, []float64{7, 8}, 1)
	if d.reset != 1 {
		t.Errorf("series that came back: reset hint %d, want 1", d.reset)
	}
	// A timer that never had a value sends nothing.
	if got = send(snap(40*time.Second, exactTimer("never", 0))); len(got) != 0 {
		t.Errorf("timer without values sent %v", got)
	}
	if n := countOf(dropped); n != 0 {
		t.Errorf("dropped %v series", n)
	}
}

func TestAppendBucketsSpans(t *testing.T) {
	tests := []struct {
		name   string
		counts []uint64
		spans  [][2]int // offset, length
		deltas []int64
	}{
		{"empty", nil, nil, nil},
		{"all zero", []uint64{0, 0}, nil, nil},
		{"one run", []uint64{1, 2, 2}, [][2]int{{10, 3}}, []int64{1, 1, 0}},
		{"leading and trailing zeros trimmed", []uint64{0, 3, 0}, [][2]int{{11, 1}}, []int64{3}},
		{"short gap kept inside", []uint64{1, 0, 0, 4}, [][2]int{{10, 4}}, []int64{1, -1, 0, 4}},
		{"long gap splits", []uint64{1, 0, 0, 0, 4, 5}, [][2]int{{10, 1}, {3, 2}}, []int64{1, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendBuckets(nil, 11, 12, 10, tt.counts)
			var spans [][2]int
			var deltas []int64
			err := eachField(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num == 11 {
					var s [2]int
					err := eachField(v, func(num protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
						if num == 1 {
							s[0] = int(protowire.DecodeZigZag(x))
						} else {
							s[1] = int(x)
						}
						return nil
					})
					spans = append(spans, s)
					return err
				}
				for len(v) > 0 {
					x, n := protowire.ConsumeVarint(v)
					deltas, v = append(deltas, protowire.DecodeZigZag(x)), v[n:]
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spans, tt.spans) || !slices.Equal(deltas, tt.deltas) {
				t.Errorf("spans %v deltas %v, want %v %v", spans, deltas, tt.spans, tt.deltas)
			}
		})
	}
}

func TestTimersOption(t *testing.T) {
	deps, _, _ := garnertest.BackendDeps()
	_, err := New(Options{RemoteWriteURL: "http://127.0.0.1:1", Timers: "histogram"}, nil, deps)
	if err == nil || !strings.Contains(err.Error(), "prometheus.timers") || !strings.Contains(err.Error(), "native-histogram") {
		t.Errorf("New with timers = histogram: %v, want an error naming prometheus.timers and the values", err)
	}
}

// BenchmarkNativeFlush is one flush of 1000 histogram-mode timers (5000
// lognormal samples each) as native histograms: merge into the running
// histograms, export and encode.
func BenchmarkNativeFlush(b *testing.B) {
	deps, _, _ := garnertest.BackendDeps()
	c, err := New(Options{RemoteWriteURL: "http://127.0.0.1:1", Timers: TimersNativeHistogram}, nil, deps)
	if err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	snap := testSnapshotAt(t0)
	for i := range 1000 {
		tm := histTimer(fmt.Sprintf("app.latency.%d", i), histogram.DefaultMaxBuckets, 5000, lognormal(rnd, 5000)...)
		snap.Timers = append(snap.Timers, tm)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		c.mu.Lock()
		plan, hists := c.planLocked(snap)
		c.mu.Unlock()
		buf = c.encode(buf[:0], snap, plan, hists, t0.UnixMilli())
	}
	b.SetBytes(int64(len(buf)))
}
