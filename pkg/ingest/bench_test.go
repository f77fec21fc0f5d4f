package ingest

import (
	"bytes"
	"compress/zlib"

	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// benchSeries is the number of series in a benchmark body.
const benchSeries = 1300

// BenchmarkIngest measures one forwarding request of 1000 counters, 100
// gauges, 100 sets of 4 members and 100 timers of 8 values, from the body
// to the shards (no network: the handler is called directly). One op is one
// request; ns/series is per forwarded series.
func BenchmarkIngest(b *testing.B) {
	v2, v3 := benchBodies(b)
	for _, bc := range []struct {
		name, path, enc string
		body            []byte
	}{
		{"v2", "/v2/raw", "", v2},
		{"v3", "/v3/raw", "", v3},
		{"v2-deflate", "/v2/raw", "deflate", deflate(b, v2)}, // as gostatsd sends it
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, Options{ServeV3: true, DedupWindow: 1}) // 1ns: every v3 request is applied
			h := route(f.h, "POST "+bc.path)
			body := bc.body
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%100 == 0 {
					b.StopTimer()
					f.flush() // keep the series state from growing
					b.StartTimer()
				}
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, bc.path, bytes.NewReader(body))
				if bc.enc != "" {
					r.Header.Set("Content-Encoding", bc.enc)
				}
				h.ServeHTTP(w, r)
				if w.Code != http.StatusAccepted {
					b.Fatalf("%s: %d %s", bc.path, w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSeries), "ns/series")
		})
	}
}

// BenchmarkIngestSets measures the aggregator side of a forwarded set: one
// v3 request of 10 sets of 5000 distinct members each, sent as members to
// an exact-mode aggregator or as (dense) sketches to an hll-mode one.
// ns/member is per member the request stands for.
func BenchmarkIngestSets(b *testing.B) {
	const sets, perSet = 10, 5000
	exact, sketches := &garnerpb.RawBatch{BatchId: []byte("x")}, &garnerpb.RawBatch{BatchId: []byte("x")}
	for i := 0; i < sets; i++ {
		name := fmt.Sprintf("bench.users.%d", i)
		sk := hll.New(hll.DefaultPrecision)
		var ms []string
		for j := 0; j < perSet; j++ {
			m := fmt.Sprintf("user-%d", i*perSet/2+j)
			ms = append(ms, m)
			sk.AddString(m)
		}
		var d hll.Data
		sk.Export(&d)
		exact.Sets = append(exact.Sets, &garnerpb.Set{Name: name, Source: "10.0.0.1", Members: ms})
		sketches.Sets = append(sketches.Sets, &garnerpb.Set{Name: name, Source: "10.0.0.1",
			Hll: &garnerpb.HyperLogLog{Precision: uint32(d.Precision), Registers: d.Registers, Hashes: d.Hashes}})
	}
	for _, bc := range []struct {
		name string
		mode aggregator.SetAggregation
		body []byte
	}{
		{"mode=exact", aggregator.SetExact, mustMarshal(b, exact)},
		{"mode=hll", aggregator.SetHLL, mustMarshal(b, sketches)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixtureSets(b, Options{ServeV3: true, DedupWindow: 1}, bc.mode)
			h := route(f.h, "POST /v3/raw")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%20 == 0 {
					b.StopTimer()
					f.flush() // an interval every 20 requests
					b.StartTimer()
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v3/raw", bytes.NewReader(bc.body)))
				if w.Code != http.StatusAccepted {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sets*perSet), "ns/member")
			b.ReportMetric(float64(len(bc.body)), "body-bytes")
		})
	}
}

// benchBodies returns the benchmark's v2 and v3 bodies.
func benchBodies(b *testing.B) (v2Body, v3Body []byte) {
	tags := []string{"env:prod", "region:us", "service:api"}
	v3 := &garnerpb.RawBatch{BatchId: []byte("x")}
	v2 := &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{}, Gauges: map[string]*pb.GaugeTagV2{},
		Sets: map[string]*pb.SetTagV2{}, Timers: map[string]*pb.TimerTagV2{}}
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("bench.counter.%d", i)
		v3.Counters = append(v3.Counters, &garnerpb.Counter{Name: name, Tags: tags, Source: "10.0.0.1", Value: 3})
		v2.Counters[name] = &pb.CounterTagV2{TagMap: map[string]*pb.RawCounterV2{"k": {Tags: tags, Hostname: "10.0.0.1", Value: 3}}}
	}
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("bench.other.%d", i)
		v3.Gauges = append(v3.Gauges, &garnerpb.Gauge{Name: name, Tags: tags, Source: "10.0.0.1", Value: 1})
		v3.Sets = append(v3.Sets, &garnerpb.Set{Name: name, Tags: tags, Source: "10.0.0.1", Members: []string{"a", "b", "c", "d"}})
		v3.Timers = append(v3.Timers, &garnerpb.Timer{Name: name, Tags: tags, Source: "10.0.0.1", Values: []float64{1, 2, 3, 4, 5, 6, 7, 8}, SampleCount: 8})
		v2.Gauges[name] = &pb.GaugeTagV2{TagMap: map[string]*pb.RawGaugeV2{"k": {Tags: tags, Hostname: "10.0.0.1", Value: 1}}}
		v2.Sets[name] = &pb.SetTagV2{TagMap: map[string]*pb.RawSetV2{"k": {Tags: tags, Hostname: "10.0.0.1", Values: []string{"a", "b", "c", "d"}}}}
		v2.Timers[name] = &pb.TimerTagV2{TagMap: map[string]*pb.RawTimerV2{"k": {Tags: tags, Hostname: "10.0.0.1", Values: []float64{1, 2, 3, 4, 5, 6, 7, 8}, SampleCount: 8}}}
	}
	return mustMarshal(b, v2), mustMarshal(b, v3)
}

// BenchmarkDecode measures decoding alone (into a sink that does nothing):
// the generated code against the streaming decoder. One op is one body of
// benchSeries series.
func BenchmarkDecode(b *testing.B) {
	v2, v3 := benchBodies(b)
	for _, bc := range []struct {
		name string
		fn   func(d *decoder, body []byte) error
	}{
		{"v2/generated", func(d *decoder, body []byte) error { _, _, err := generatedV2(body, d.sink); return err }},
		{"v2/streaming", func(d *decoder, body []byte) error { return stream(d, body, (*decoder).rawV2) }},
		{"v3/generated", func(d *decoder, body []byte) error {
			msg, err := generatedV3(body)
			if err == nil {
				applyGeneratedV3(msg, d.sink)
			}
			return err
		}},
		{"v3/streaming", func(d *decoder, body []byte) error { return stream(d, body, (*decoder).rawV3) }},
	} {
		body := v2
		if bc.name[:2] == "v3" {
			body = v3
		}
		b.Run(bc.name, func(b *testing.B) {
			d := &decoder{sink: nopSink{}}
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.fn(d, body); err != nil {
					b.Fatal(err)
				}
				d.release()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSeries), "ns/series")
		})
	}
}

// deflate is body in the zlib format, at gostatsd's level 9.
func deflate(tb testing.TB, body []byte) []byte {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
