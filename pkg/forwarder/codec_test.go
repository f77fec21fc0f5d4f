package forwarder

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

func members(ms ...string) map[string]struct{} {
	out := map[string]struct{}{}
	for _, m := range ms {
		out[m] = struct{}{}
	}
	return out
}

// testSnapshot has the corner cases of every type: empty tags and source,
// several series of one name, zero, negative and fractional values.
func testSnapshot() *model.Snapshot {
	return &model.Snapshot{
		Counters: []model.Counter{
			{Series: model.Series{Name: "req", Tags: []string{"a:1", "b"}, Source: "10.0.0.1"}, Value: 41.6},
			{Series: model.Series{Name: "req", Tags: []string{"a:2"}, Source: "10.0.0.1"}, Value: -2.5},
			{Series: model.Series{Name: "req"}, Value: 0},
			{Series: model.Series{Name: "other", Source: "h"}, Value: 0.4},
		},
		Gauges: []model.Gauge{
			{Series: model.Series{Name: "g", Tags: []string{"x:y"}}, Value: -1.25},
			{Series: model.Series{Name: "g0", Source: "s"}, Value: 0},
		},
		Sets: []model.Set{
			{Series: model.Series{Name: "users", Tags: []string{"env:prod"}, Source: "10.0.0.2"}, Members: members("ann", "bob", "")},
		},
		Timers: []model.Timer{
			{Series: model.Series{Name: "lat", Tags: []string{"route:/x"}}, Values: []float64{1, 2.5, 2.5, 100}, SampledCount: 8},
			{Series: model.Series{Name: "lat", Source: "s"}, Values: []float64{-3}, SampledCount: 1},
			// A histogram timer: the snapshot leaves SampledCount at zero.
			{Series: model.Series{Name: "hist", Tags: []string{"gsd_histogram:1_2"}}, Values: []float64{0.5, 3}},
		},
	}
}

func selectAll(s *model.Snapshot) *selection {
	sel := &selection{}
	for i := range s.Counters {
		sel.counters = append(sel.counters, int32(i))
	}
	for i := range s.Gauges {
		sel.gauges = append(sel.gauges, int32(i))
	}
	for i := range s.Sets {
		sel.sets = append(sel.sets, int32(i))
	}
	for i := range s.Timers {
		sel.timers = append(sel.timers, int32(i))
	}
	return sel
}

func sortedMembers(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// gostatsdTagsKey is gostatsd's formatTagsKey, written independently of the
// encoder's.
func gostatsdTagsKey(s model.Series) string {
	k := strings.Join(s.Tags, ",")
	if s.Source != "" {
		k += ",s:" + s.Source
	}
	return k
}

func TestEncodeV2Decodes(t *testing.T) {
	snap := testSnapshot()
	var e encoder
	body := e.appendV2(nil, snap, selectAll(snap))
	var got pb.RawMessageV2
	if err := proto.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := generatedV2(snap)
	for _, tm := range got.Sets {
		for _, s := range tm.TagMap {
			sort.Strings(s.Values)
		}
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded v2 message differs:\ngot  %v\nwant %v", &got, want)
	}
	// The generated marshaller and the hand-written encoder agree on size
	// (map order aside, the bytes are the same fields).
	again, err := proto.Marshal(&got)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(body) {
		t.Errorf("encoder wrote %d bytes, proto.Marshal of the same message %d", len(body), len(again))
	}
}

func TestEncodeV3Decodes(t *testing.T) {
	snap := testSnapshot()
	var e encoder
	id := []byte("0123456789abcdef")
	body := e.appendV3(nil, id, "fwd-1", snap, selectAll(snap))
	var got garnerpb.RawBatch
	if err := proto.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := generatedV3(snap, id, "fwd-1")
	for _, s := range got.Sets {
		sort.Strings(s.Members)
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded v3 batch differs:\ngot  %v\nwant %v", &got, want)
	}
	again, _ := proto.Marshal(want)
	if len(again) != len(body) {
		t.Errorf("encoder wrote %d bytes, proto.Marshal %d", len(body), len(again))
	}
}

func TestEncodeEvents(t *testing.T) {
	events := []*model.Event{
		{Title: "deploy", Text: "v1.2\nok", DateHappened: 1795283974, Hostname: "web-1", AggregationKey: "k",
			SourceTypeName: "ci", Tags: []string{"env:prod", "x"}, Source: "10.0.0.1", Priority: model.PriorityLow, AlertType: model.AlertSuccess},
		{Title: "t", DateHappened: -5},
	}
	checks := []*model.ServiceCheck{
		{Name: "db", Status: model.CheckCritical, Timestamp: 17, Hostname: "h", Tags: []string{"a"}, Message: "down", Source: "10.0.0.2"},
		{Name: "ok"},
	}
	t.Run("v2", func(t *testing.T) {
		e := events[0]
		var got pb.EventV2
		if err := proto.Unmarshal(appendEvent(nil, e), &got); err != nil {
			t.Fatal(err)
		}
		want := &pb.EventV2{Title: e.Title, Text: e.Text, DateHappened: e.DateHappened, Hostname: e.Hostname,
			AggregationKey: e.AggregationKey, SourceTypeName: e.SourceTypeName, Tags: e.Tags, SourceIP: e.Source,
			Priority: pb.EventV2_Low, Type: pb.EventV2_Success}
		if !proto.Equal(&got, want) {
			t.Fatalf("got %v\nwant %v", &got, want)
		}
		if n := eventSize(e); n != len(appendEvent(nil, e)) {
			t.Fatalf("eventSize %d, written %d", n, len(appendEvent(nil, e)))
		}
	})
	t.Run("v3", func(t *testing.T) {
		var got garnerpb.EventBatch
		if err := proto.Unmarshal(appendEventBatch(nil, []byte("id"), events, checks), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Events) != 2 || len(got.ServiceChecks) != 2 || string(got.BatchId) != "id" {
			t.Fatalf("got %v", &got)
		}
		if ev := got.Events[0]; ev.Title != "deploy" || ev.Priority != garnerpb.Event_LOW || ev.AlertType != garnerpb.Event_SUCCESS || ev.SourceIp != "10.0.0.1" {
			t.Fatalf("event %v", ev)
		}
		if got.Events[1].DateHappened != -5 {
			t.Fatalf("negative date: %v", got.Events[1])
		}
		if sc := got.ServiceChecks[0]; sc.Name != "db" || sc.Status != garnerpb.ServiceCheck_CRITICAL || sc.Message != "down" || sc.Timestamp != 17 {
			t.Fatalf("check %v", sc)
		}
	})
}

// bigSnapshot has n series, a quarter of each type, with realistic names,
// tags and values (deterministic, not repetitive enough to flatter the
// compression).
func bigSnapshot(n int) *model.Snapshot {
	s := &model.Snapshot{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n/4; i++ {
		ser := func(kind string) model.Series {
			return model.Series{
				Name:   fmt.Sprintf("service_%d.api.%s.endpoint_%d", i%7, kind, i%50),
				Tags:   []string{"env:prod", fmt.Sprintf("instance:i-%08x", rng.Uint32()), fmt.Sprintf("region:r%d", i%4)},
				Source: fmt.Sprintf("10.1.%d.%d", i%8, i%250),
			}
		}
		s.Counters = append(s.Counters, model.Counter{Series: ser("requests"), Value: float64(rng.IntN(10000))})
		s.Gauges = append(s.Gauges, model.Gauge{Series: ser("queue"), Value: rng.Float64() * 1000})
		s.Sets = append(s.Sets, model.Set{Series: ser("users"), Members: members(fmt.Sprint("u", rng.IntN(1e6)), fmt.Sprint("u", rng.IntN(1e6)), fmt.Sprint("u", rng.IntN(1e6)))})
		vals := make([]float64, 4)
		for k := range vals {
			vals[k] = float64(rng.IntN(100000)) / 100 // milliseconds with two decimals
		}
		s.Timers = append(s.Timers, model.Timer{Series: ser("latency"), Values: vals, SampledCount: 4})
	}
	return s
}

// TestEncodeAllocs: once the buffers have grown, encoding allocates nothing.
func TestEncodeAllocs(t *testing.T) {
	for _, n := range []int{40, 4000} {
		snap := bigSnapshot(n)
		sel := selectAll(snap)
		var e encoder
		buf := e.appendV2(nil, snap, sel)
		buf = e.appendV3(buf, nil, "", snap, sel)
		v2 := testing.AllocsPerRun(20, func() { buf = e.appendV2(buf[:0], snap, sel) })
		v3 := testing.AllocsPerRun(20, func() { buf = e.appendV3(buf[:0], []byte("id"), "h", snap, sel) })
		if v2 > 0 || v3 > 0 {
			t.Errorf("%d series: %.0f allocs for v2, %.0f for v3; want 0 (the buffers have grown)", n, v2, v3)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	snap := bigSnapshot(1000)
	sel := selectAll(snap)
	kinds := map[string][]string{ // v2 has no zstd
		"v2": {"none", "zlib-1", "zlib-9"},
		"v3": {"none", "zlib-1", "zlib-9", "zstd-1", "zstd-5", "zstd-9"},
	}
	for _, v := range []string{"v2", "v3"} {
		for _, kind := range kinds[v] {
			b.Run(v+"/"+kind, func(b *testing.B) {
				algo, lvl, _ := strings.Cut(kind, "-")
				level, _ := strconv.Atoi(lvl)
				c, err := newCompressor(algo, level)
				if err != nil {
					b.Fatal(err)
				}
				var e encoder
				var raw []byte
				var wire int
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if v == "v2" {
						raw = e.appendV2(raw[:0], snap, sel)
					} else {
						raw = e.appendV3(raw[:0], []byte("0123456789abcdef"), "host", snap, sel)
					}
					body, _, err := c.compress(raw, v == "v2")
					if err != nil {
						b.Fatal(err)
					}
					wire = len(body)
				}
				b.ReportMetric(float64(wire), "wire-bytes/1000-series")
				b.ReportMetric(float64(len(raw)), "raw-bytes/1000-series")
			})
		}
	}
}

// generatedV2 is snap as the generated pb.RawMessageV2 (set members sorted).
func generatedV2(snap *model.Snapshot) *pb.RawMessageV2 {
	want := &pb.RawMessageV2{
		Counters: map[string]*pb.CounterTagV2{}, Gauges: map[string]*pb.GaugeTagV2{},
		Sets: map[string]*pb.SetTagV2{}, Timers: map[string]*pb.TimerTagV2{},
	}
	for _, c := range snap.Counters {
		if want.Counters[c.Name] == nil {
			want.Counters[c.Name] = &pb.CounterTagV2{TagMap: map[string]*pb.RawCounterV2{}}
		}
		want.Counters[c.Name].TagMap[gostatsdTagsKey(c.Series)] = &pb.RawCounterV2{Tags: c.Tags, Hostname: c.Source, Value: int64(math.Round(c.Value))}
	}
	for _, g := range snap.Gauges {
		if want.Gauges[g.Name] == nil {
			want.Gauges[g.Name] = &pb.GaugeTagV2{TagMap: map[string]*pb.RawGaugeV2{}}
		}
		want.Gauges[g.Name].TagMap[gostatsdTagsKey(g.Series)] = &pb.RawGaugeV2{Tags: g.Tags, Hostname: g.Source, Value: g.Value}
	}
	for _, s := range snap.Sets {
		want.Sets[s.Name] = &pb.SetTagV2{TagMap: map[string]*pb.RawSetV2{
			gostatsdTagsKey(s.Series): {Tags: s.Tags, Hostname: s.Source, Values: sortedMembers(s.Members)},
		}}
	}
	for _, tm := range snap.Timers {
		if want.Timers[tm.Name] == nil {
			want.Timers[tm.Name] = &pb.TimerTagV2{TagMap: map[string]*pb.RawTimerV2{}}
		}
		count := tm.SampledCount
		if count == 0 {
			count = float64(len(tm.Values))
		}
		want.Timers[tm.Name].TagMap[gostatsdTagsKey(tm.Series)] = &pb.RawTimerV2{Tags: tm.Tags, Hostname: tm.Source, SampleCount: count, Values: tm.Values}
	}
	return want
}

// generatedV3 is snap as the generated garnerpb.RawBatch (set members sorted).
func generatedV3(snap *model.Snapshot, id []byte, forwarder string) *garnerpb.RawBatch {
	want := &garnerpb.RawBatch{BatchId: id, Forwarder: forwarder}
	for _, c := range snap.Counters {
		want.Counters = append(want.Counters, &garnerpb.Counter{Name: c.Name, Tags: c.Tags, Source: c.Source, Value: c.Value})
	}
	for _, g := range snap.Gauges {
		want.Gauges = append(want.Gauges, &garnerpb.Gauge{Name: g.Name, Tags: g.Tags, Source: g.Source, Value: g.Value})
	}
	for _, s := range snap.Sets {
		want.Sets = append(want.Sets, &garnerpb.Set{Name: s.Name, Tags: s.Tags, Source: s.Source, Members: sortedMembers(s.Members)})
	}
	for _, tm := range snap.Timers {
		count := tm.SampledCount
		if count == 0 {
			count = float64(len(tm.Values))
		}
		want.Timers = append(want.Timers, &garnerpb.Timer{Name: tm.Name, Tags: tm.Tags, Source: tm.Source, SampleCount: count, Values: tm.Values})
	}
	return want
}

// TestEncodeMatchesGeneratedBytes is the differential test of the
// hand-written encoders against the generated code: where the order of
// every field is fixed (one member per set; for v2 one series per name,
// whose map entries the generated code writes sorted by key when
// deterministic, as the encoder sorts names), proto.Marshal of the
// generated message is byte for byte what appendV3 and appendV2 write.
// Zero, negative zero and negative values are in the snapshot: proto3 skips
// only a positive zero.
func TestEncodeMatchesGeneratedBytes(t *testing.T) {
	snap := bigSnapshot(400)
	for i := range snap.Counters {
		snap.Counters[i].Name += ".s" + strconv.Itoa(i)
		snap.Gauges[i].Name += ".s" + strconv.Itoa(i)
		snap.Sets[i].Name += ".s" + strconv.Itoa(i)
		snap.Timers[i].Name += ".s" + strconv.Itoa(i)
		snap.Sets[i].Members = members("m" + strconv.Itoa(i))
	}
	snap.Counters[0].Value, snap.Counters[1].Value, snap.Counters[2].Value = 0, math.Copysign(0, -1), -7.4
	snap.Gauges[0].Value, snap.Gauges[1].Value, snap.Gauges[2].Value = 0, math.Copysign(0, -1), -3.25
	snap.Timers[0].Values, snap.Timers[0].SampledCount = nil, 0
	snap.Counters[3].Tags, snap.Counters[3].Source = nil, ""
	sel := selectAll(snap)
	var e encoder
	id := []byte("0123456789abcdef")
	want, err := proto.Marshal(generatedV3(snap, id, "fwd-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.appendV3(nil, id, "fwd-1", snap, sel); !bytes.Equal(got, want) {
		t.Errorf("v3: the encoder's %d bytes differ from the generated code's %d", len(got), len(want))
	}
	want, err = proto.MarshalOptions{Deterministic: true}.Marshal(generatedV2(snap))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.appendV2(nil, snap, sel); !bytes.Equal(got, want) {
		t.Errorf("v2: the encoder's %d bytes differ from the generated code's %d", len(got), len(want))
	}
}
