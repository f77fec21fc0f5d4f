package ingest

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// The generated code's decoding of /v2/raw and /v3/raw bodies: the
// reference the streaming decoder is tested against, and the path of the
// bodies it leaves (see wire.go). It allocates every message of the body.

// generatedV2 decodes a RawMessageV2 with the generated code and applies
// it to sink; n counts the series applied by kind, bad those skipped.
func generatedV2(body []byte, sink seriesSink) (n [4]int, bad int, err error) {
	var msg pb.RawMessageV2
	if err := proto.Unmarshal(body, &msg); err != nil {
		return n, 0, fmt.Errorf("%w as a v2 RawMessageV2: %w", errDecode, err)
	}
	n[kCounter], bad = eachV2(msg.Counters, bad, func(name string, c *pb.RawCounterV2) {
		sink.Counter(name, c.Tags, c.Hostname, float64(c.Value), 0)
	})
	n[kGauge], bad = eachV2(msg.Gauges, bad, func(name string, g *pb.RawGaugeV2) { sink.Gauge(name, g.Tags, g.Hostname, g.Value, 0) })
	n[kSet], bad = eachV2(msg.Sets, bad, func(name string, st *pb.RawSetV2) { sink.Set(name, st.Tags, st.Hostname, st.Values) })
	n[kTimer], bad = eachV2(msg.Timers, bad, func(name string, t *pb.RawTimerV2) {
		sink.Timer(name, t.Tags, t.Hostname, t.Values, t.SampleCount)
	})
	return n, bad, nil
}

// eachV2 calls apply for every series of a v2 map (name → tags key →
// series) and returns how many it applied and bad plus those it skipped (no
// name, or nil).
func eachV2[V comparable, M interface{ GetTagMap() map[string]V }](byName map[string]M, bad int, apply func(name string, v V)) (int, int) {
	var zero V
	n := 0
	for name, tm := range byName {
		for _, v := range tm.GetTagMap() {
			if name == "" || v == zero {
				bad++
				continue
			}
			apply(name, v)
			n++
		}
	}
	return n, bad
}

// generatedV3 decodes a RawBatch with the generated code (applied by
// applyGeneratedV3 once its batch id is looked at).
func generatedV3(body []byte) (msg *garnerpb.RawBatch, err error) {
	msg = new(garnerpb.RawBatch)
	if err := proto.Unmarshal(body, msg); err != nil {
		return nil, fmt.Errorf("%w as a v3 RawBatch: %w", errDecode, err)
	}
	return msg, nil
}

// applyGeneratedV3 applies a RawBatch decoded by the generated code.
func applyGeneratedV3(msg *garnerpb.RawBatch, sink seriesSink) (n [4]int, bad int) {
	n[kCounter], bad = eachV3(msg.Counters, bad, func(c *garnerpb.Counter) { sink.Counter(c.Name, c.Tags, c.Source, c.Value, c.TimeUnixNano) })
	n[kGauge], bad = eachV3(msg.Gauges, bad, func(g *garnerpb.Gauge) { sink.Gauge(g.Name, g.Tags, g.Source, g.Value, g.TimeUnixNano) })
	badHist := 0
	n[kSet], bad = eachV3(msg.Sets, bad, func(st *garnerpb.Set) {
		sink.Set(st.Name, st.Tags, st.Source, st.Members)
		if st.Hll != nil && !sink.SetSketch(st.Name, st.Tags, st.Source, st.Hll.Data()) {
			badHist++
		}
	})
	n[kTimer], bad = eachV3(msg.Timers, bad, func(t *garnerpb.Timer) {
		if t.Histogram == nil {
			sink.Timer(t.Name, t.Tags, t.Source, t.Values, t.SampleCount)
			return
		}
		// The histogram carries every value (field 6); a timer with both
		// counts sample_count over both, as the forwarder writes it.
		sink.Timer(t.Name, t.Tags, t.Source, t.Values, float64(len(t.Values)))
		if !sink.TimerHistogram(t.Name, t.Tags, t.Source, t.Histogram.Data(), t.SampleCount-float64(len(t.Values))) {
			badHist++
		}
	})
	return n, bad + badHist
}

// eachV3 calls apply for every series of xs that has a name and returns how
// many it applied and bad plus those it skipped.
func eachV3[T interface{ GetName() string }](xs []T, bad int, apply func(T)) (int, int) {
	n := 0
	for _, x := range xs {
		if x.GetName() == "" {
			bad++
			continue
		}
		apply(x)
		n++
	}
	return n, bad
}
