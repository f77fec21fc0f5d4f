package forwarder

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

func sketchSet(name string, n int) model.Set {
	sk := hll.New(hll.DefaultPrecision)
	for i := 0; i < n; i++ {
		sk.AddString("user-" + strconv.Itoa(i))
	}
	return model.Set{Series: model.Series{Name: name, Tags: []string{"a:b"}}, Members: map[string]struct{}{}, Sketch: sk, Estimate: sk.Estimate()}
}

// A sketch set goes out in v3 field 5, as the generated code decodes it,
// and to a v2 upstream as stand-in members: exact while sparse, counted
// when made up from a dense sketch's estimate.
func TestSketchSetEncoding(t *testing.T) {
	snap := &model.Snapshot{Sets: []model.Set{sketchSet("small", 300), sketchSet("big", 50_000),
		{Series: model.Series{Name: "exact"}, Members: map[string]struct{}{"x": {}, "y": {}}}}}
	var e encoder
	var m garnerpb.RawBatch
	if err := proto.Unmarshal(e.appendV3(nil, nil, "", snap, selectAll(snap)), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Sets) != 3 {
		t.Fatalf("%d sets decoded", len(m.Sets))
	}
	for i, x := range m.Sets {
		want := snap.Sets[i]
		if want.Sketch == nil {
			if x.Hll != nil || len(x.Members) != 2 {
				t.Errorf("%s: sketch %v, members %v", x.Name, x.Hll != nil, x.Members)
			}
			continue
		}
		sk, err := hll.FromData(x.Hll.Data(), hll.MaxPrecision)
		if err != nil {
			t.Fatalf("%s: %v", x.Name, err)
		}
		if sk.Estimate() != want.Estimate || sk.Sparse() != want.Sketch.Sparse() || len(x.Members) != 0 {
			t.Errorf("%s: decoded estimate %d sparse %v, want %d %v", x.Name, sk.Estimate(), sk.Sparse(), want.Estimate, want.Sketch.Sparse())
		}
	}
	var v2 pb.RawMessageV2
	if err := proto.Unmarshal(e.appendV2(nil, snap, selectAll(snap)), &v2); err != nil {
		t.Fatal(err)
	}
	if n := e.takeEstimatedSets(); n != 1 {
		t.Errorf("%d sets counted as made up, want 1 (the dense one)", n)
	}
	for name, want := range map[string]int{"small": 300, "big": int(snap.Sets[1].Estimate), "exact": 2} {
		for _, x := range v2.Sets[name].TagMap {
			distinct := map[string]bool{}
			for _, v := range x.Values {
				distinct[v] = true
			}
			if len(distinct) != want || len(x.Values) != want {
				t.Errorf("v2 %s: %d members (%d distinct), want %d", name, len(x.Values), len(distinct), want)
			}
		}
	}
	// Two forwarders' sparse stand-ins of overlapping sets union rightly
	// on a v2 upstream: the same member hashes alike everywhere.
	a, b := hll.New(14), hll.New(14)
	union := map[string]bool{}
	for i := 0; i < 200; i++ {
		a.AddString("user-" + strconv.Itoa(i))
		b.AddString("user-" + strconv.Itoa(i+100))
	}
	a.StandIns(func(m string) { union[m] = true })
	b.StandIns(func(m string) { union[m] = true })
	if len(union) != 300 {
		t.Errorf("union of stand-ins: %d, want 300", len(union))
	}
}

// A queued v3 batch with a sketch, re-encoded for an upstream that fell
// back to v2, keeps the set's count.
func TestSketchSetTranscode(t *testing.T) {
	snap := &model.Snapshot{Sets: []model.Set{sketchSet("s", 700)}}
	var e encoder
	var m garnerpb.RawBatch
	if err := proto.Unmarshal(e.appendV3(nil, nil, "", snap, selectAll(snap)), &m); err != nil {
		t.Fatal(err)
	}
	back, sel := snapshotOfV3(&m)
	if len(sel.sets) != 1 || back.Sets[0].Count() != 700 {
		t.Fatalf("transcoded set count %d", back.Sets[0].Count())
	}
}
