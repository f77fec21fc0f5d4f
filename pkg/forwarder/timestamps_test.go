package forwarder

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// pastSnapshot has a live and a past interval's point of one counter and
// one gauge series (timestamps = "honor").
func pastSnapshot() *model.Snapshot {
	const past = 1_700_000_000_000_000_000
	return &model.Snapshot{
		Counters: []model.Counter{
			{Series: model.Series{Name: "c", Source: "h"}, Value: 1},
			{Series: model.Series{Name: "c", Source: "h"}, Value: 5, At: past},
		},
		Gauges: []model.Gauge{
			{Series: model.Series{Name: "g"}, Value: 9, At: past},
			{Series: model.Series{Name: "g"}, Value: 2},
		},
	}
}

// TestEncodeV3Times: v3 carries a past interval's time (time_unix_nano).
func TestEncodeV3Times(t *testing.T) {
	snap := pastSnapshot()
	var e encoder
	body := e.appendV3(nil, nil, "", snap, selectAll(snap))
	var got garnerpb.RawBatch
	if err := proto.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := &garnerpb.RawBatch{
		Counters: []*garnerpb.Counter{{Name: "c", Source: "h", Value: 1}, {Name: "c", Source: "h", Value: 5, TimeUnixNano: snap.Counters[1].At}},
		Gauges:   []*garnerpb.Gauge{{Name: "g", Value: 9, TimeUnixNano: snap.Gauges[0].At}, {Name: "g", Value: 2}},
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded v3 batch differs:\ngot  %v\nwant %v", &got, want)
	}
	if again, _ := proto.Marshal(want); len(again) != len(body) {
		t.Errorf("encoder wrote %d bytes, proto.Marshal %d", len(body), len(again))
	}
}

// TestEncodeV2LeavesPastOut: v2 has no point time: a past interval's
// counter and gauge are left out and counted, directly and when a v3 batch
// is re-encoded for an upstream that fell back to v2.
func TestEncodeV2LeavesPastOut(t *testing.T) {
	snap := pastSnapshot()
	var e encoder
	v2 := e.appendV2(nil, snap, selectAll(snap))
	check := func(name string, body []byte, past int) {
		t.Helper()
		var got pb.RawMessageV2
		if err := proto.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		c := got.Counters["c"].GetTagMap()[",s:h"]
		g := got.Gauges["g"].GetTagMap()[""]
		if len(got.Counters["c"].GetTagMap()) != 1 || c.GetValue() != 1 || len(got.Gauges["g"].GetTagMap()) != 1 || g.GetValue() != 2 {
			t.Errorf("%s: got %v, want the live counter 1 and gauge 2 only", name, &got)
		}
		if past != 2 {
			t.Errorf("%s: %d past points counted, want 2", name, past)
		}
	}
	check("v2", v2, e.takePast())

	v3 := e.appendV3(nil, nil, "", snap, selectAll(snap))
	var m garnerpb.RawBatch
	if err := proto.Unmarshal(v3, &m); err != nil {
		t.Fatal(err)
	}
	s, sel := snapshotOfV3(&m)
	var e2 encoder
	check("v3 re-encoded for v2", e2.appendV2(nil, s, sel), e2.takePast())
}
