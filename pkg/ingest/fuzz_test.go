package ingest

import (
	"context"
	"testing"

	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// The decoders of outside input: whatever the body, decoding and applying
// it must not panic and must end, and the streaming decoder must agree with
// the generated code on every body it takes (diffV2, diffV3). Seed corpus: testdata/fuzz/FuzzRawV2 and
// testdata/fuzz/FuzzRawV3, plus the messages below.

func FuzzRawV2(f *testing.F) {
	f.Add(mustMarshal(f, gostatsdBody()))
	f.Add(mustMarshal(f, &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{"": {TagMap: map[string]*pb.RawCounterV2{"x": nil}}}}))
	fuzzBodies(f, diffV2, (*Handler).rawV2, (*Handler).eventV2)
}

func FuzzRawV3(f *testing.F) {
	f.Add(mustMarshal(f, &garnerpb.RawBatch{
		BatchId:  []byte("0123456789abcdef"),
		Counters: []*garnerpb.Counter{{Name: "c", Tags: []string{"a:b", "a,b", ""}, Source: "s", Value: 1.5}, {Name: "c", Value: 2, TimeUnixNano: 1_700_000_000e9}},
		Gauges:   []*garnerpb.Gauge{{Name: "g", Value: -1}, {Name: "g", Value: 3, TimeUnixNano: 1_700_000_000e9}},
		Sets: []*garnerpb.Set{{Name: "s", Members: []string{"x", "y"}},
			{Name: "h", Hll: &garnerpb.HyperLogLog{Precision: 14, Hashes: []uint64{1, 2, 3}}},
			{Name: "d", Hll: &garnerpb.HyperLogLog{Precision: 4, Registers: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 61}}}},
		Timers: []*garnerpb.Timer{{Name: "t", SampleCount: -1, Values: []float64{1, 2}}},
	}))
	f.Add(mustMarshal(f, &garnerpb.EventBatch{Events: []*garnerpb.Event{{Title: "e"}}, ServiceChecks: []*garnerpb.ServiceCheck{{Status: 9}}}))
	fuzzBodies(f, diffV3, (*Handler).rawV3, (*Handler).eventV3)
}

// fuzzBodies adds the empty body to f's seeds and fuzzes one protocol:
// diff checks the streaming decoder against the generated code, then the
// body goes through the handler's series and event decoders (raw, event)
// with an aggregator behind them.
func fuzzBodies(f *testing.F, diff func(*testing.T, []byte) bool, raw, event func(*Handler, context.Context, []byte) (string, error)) {
	f.Add([]byte{})
	fx := newFixture(f, Options{ServeV3: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		diff(t, body)
		_, _ = raw(fx.h, context.Background(), body)
		_, _ = event(fx.h, context.Background(), body)
	})
}
