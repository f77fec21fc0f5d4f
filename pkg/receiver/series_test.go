//go:build linux

package receiver

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

// TestRawMergesWithLines checks that raw series from forwarders land in the
// same series as statsd lines with the same name, tags and source.
func TestRawMergesWithLines(t *testing.T) {
	a := newLines(t, 3, Options{DefaultTags: []string{"dc:1"}, Namespace: "ns"}, nil)
	// A line from 10.0.0.7: the namespace applies to lines only.
	r := a.NewHandler("udp")
	r.HandleDatagram([]byte("c:1|c|#b:2,a:1\nt:10|ms\ns:x|s\ng:5|g"), src, false)
	r.Handoff()
	w := a.NewSeriesWriter()
	w.Counter("ns.c", []string{"a:1", "b:2", "b:2"}, "10.0.0.7", 2.5, 0)
	w.Timer("ns.t", nil, "10.0.0.7", []float64{20, 30}, 4) // sampled at 0.5
	w.Set("ns.s", nil, "10.0.0.7", []string{"x", "y"})
	w.Gauge("ns.g", nil, "10.0.0.7", 7, 0)
	w.Counter("other", []string{"z,y", ""}, "", 1, 0)
	if d := w.Send(context.Background()); d != 0 {
		t.Fatalf("dropped %d", d)
	}
	s := snapshot(t, a)
	if len(s.Sets) != 1 || len(s.Gauges) != 1 || len(s.Timers) != 1 || len(s.Counters) != 2 {
		t.Fatalf("series: %d counters %d gauges %d sets %d timers", len(s.Counters), len(s.Gauges), len(s.Sets), len(s.Timers))
	}
	cs := map[string]model.Counter{}
	for _, c := range s.Counters {
		cs[key(c.Series)] = c
	}
	if c := cs["ns.c|a:1,b:2,dc:1|10.0.0.7"]; c.Value != 3.5 {
		t.Errorf("counter = %v, want 3.5 (one series for line and raw): %v", c.Value, cs)
	}
	if c, ok := cs["other|dc:1,z_y|"]; !ok || c.Value != 1 {
		t.Errorf("a comma in a tag must become _ and empty tags go: %v", cs)
	}
	tm := s.Timers[0]
	if tm.SampledCount != 5 || len(tm.Values) != 3 || tm.Upper != 30 || tm.Sum != 60 {
		t.Errorf("timer: count %v values %v", tm.SampledCount, tm.Values)
	}
	if g := s.Gauges[0]; key(g.Series) != "ns.g|dc:1|10.0.0.7" || g.Value != 7 {
		t.Errorf("gauge = %v, want the raw value written last", g)
	}
	for _, st := range s.Sets {
		if st.Name == "ns.s" && len(st.Members) != 2 {
			t.Errorf("set members = %v", st.Members)
		}
	}
}

// TestRawLargeRequests crosses batch boundaries: many series and a set and a
// timer with more members than one batch holds.
func TestRawLargeRequests(t *testing.T) {
	a := newLines(t, 3, Options{}, nil)
	w := a.NewSeriesWriter()
	members := make([]string, 3*512+7)
	values := make([]float64, 2*512+3)
	for i := range members {
		members[i] = fmt.Sprintf("member-%d", i)
	}
	for i := range values {
		values[i] = float64(i)
	}
	for i := 0; i < 2000; i++ {
		w.Counter(fmt.Sprintf("c.%d", i), []string{"k:v"}, "src", 1, 0)
	}
	w.Set("big.set", nil, "", members)
	w.Timer("big.timer", nil, "", values, float64(len(values)))
	w.Send(context.Background())
	// The writer is reusable.
	w.Counter("c.0", []string{"k:v"}, "src", 1, 0)
	w.Send(context.Background())
	s := snapshot(t, a)
	var c0 float64
	for _, c := range s.Counters {
		if key(c.Series) == "c.0|k:v|src" {
			c0 = c.Value
		}
	}
	if len(s.Counters) != 2000 || c0 != 2 {
		t.Fatalf("counters: %d, c.0 = %v", len(s.Counters), c0)
	}
	if len(s.Sets) != 1 || len(s.Sets[0].Members) != len(members) {
		t.Fatalf("set: %d sets", len(s.Sets))
	}
	tm := s.Timers[0]
	if len(tm.Values) != len(values) || tm.SampledCount != float64(len(values)) || !sort.Float64sAreSorted(tm.Values) {
		t.Fatalf("timer: %d values, count %v", len(tm.Values), tm.SampledCount)
	}
}

// TestRawFlushWaitGivesUp checks that a request stuck on a full shard queue
// gives up when its context ends, and counts what it dropped.
func TestSeriesWriterSendGivesUp(t *testing.T) {
	// The aggregator is not running, so nothing drains its queues.
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	reg := prometheus.NewRegistry()
	agg := aggregator.New(aggregator.Options{Shards: 1, MaxQueuedSamples: 512}, log, reg)
	w := NewLines(Options{}, agg, nil, log, reg).NewSeriesWriter()
	for i := 0; i < 200*512; i++ {
		w.Counter(fmt.Sprintf("c.%d", i%50), nil, "", 1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	dropped := w.Send(ctx)
	if dropped == 0 {
		t.Fatal("want drops when the shard does not drain")
	}
	if got := garnertest.GatheredSeries(t, reg, "garner_aggregator_queue_dropped_lines_total"); got != float64(dropped) {
		t.Fatalf("queue dropped counter = %v, want %d", got, dropped)
	}
}
