package forwarder

import (
	"math"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// A histogram timer goes out in v3 field 6, as the generated code decodes
// it, and to a v2 upstream as estimated values with the exact count.
func TestHistogramTimerEncoding(t *testing.T) {
	h := histogram.New(histogram.DefaultMaxBuckets)
	for _, v := range []float64{-2, 0, 0.5, 3, 3, 1000} {
		h.Add(v)
	}
	snap := &model.Snapshot{Timers: []model.Timer{{Series: model.Series{Name: "t", Tags: []string{"a:b"}}, SampledCount: 12, Exp: h}}}
	var e encoder
	var m garnerpb.RawBatch
	if err := proto.Unmarshal(e.appendV3(nil, nil, "", snap, selectAll(snap)), &m); err != nil {
		t.Fatal(err)
	}
	var want histogram.Data
	h.Export(&want)
	got := m.Timers[0].Histogram.Data()
	if m.Timers[0].SampleCount != 12 || got.Scale != want.Scale || got.Count != 6 || got.ZeroCount != 1 ||
		got.Sum != want.Sum || got.SumSquares != want.SumSquares || got.Min != -2 || got.Max != 1000 ||
		got.PositiveOffset != want.PositiveOffset || !slices.Equal(got.Positive, want.Positive) ||
		got.NegativeOffset != want.NegativeOffset || !slices.Equal(got.Negative, want.Negative) {
		t.Fatalf("decoded %+v\nwant %+v", got, want)
	}
	var v2 pb.RawMessageV2
	if err := proto.Unmarshal(e.appendV2(nil, snap, selectAll(snap)), &v2); err != nil {
		t.Fatal(err)
	}
	if e.takeEstimated() != 1 {
		t.Error("the estimated timer was not counted")
	}
	var vals []float64
	for _, x := range v2.Timers["t"].TagMap {
		vals = x.Values
		if x.SampleCount != 12 {
			t.Errorf("v2 sample count %g", x.SampleCount)
		}
	}
	exact := []float64{-2, 0, 0.5, 3, 3, 1000}
	bound := math.Exp2(math.Exp2(-float64(h.Scale()))) - 1
	for i := range exact {
		if len(vals) != len(exact) || math.Abs(vals[i]-exact[i]) > bound*math.Abs(exact[i]) {
			t.Fatalf("v2 values %v, want about %v", vals, exact)
		}
	}
}
