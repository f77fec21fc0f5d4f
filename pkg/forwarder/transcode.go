package forwarder

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/proto/garnerpb"
)

// transcoder re-encodes queued v3 batches for an upstream that fell back to
// v2.
type transcoder struct {
	comp *compressor
	m    *fwdMetrics
}

// toV2 re-encodes a v3 batch for v2, in place. An event batch becomes one
// request per event: b carries the first, the others are returned. Service
// checks cannot go in v2 and are dropped and counted.
func (t transcoder) toV2(b *batch) ([]*batch, error) {
	raw, err := httpsend.Decompress(b.body, b.enc)
	if err != nil {
		return nil, fmt.Errorf("cannot re-encode a v3 batch for v2: %w", err)
	}
	if b.kind == kindRaw {
		var m garnerpb.RawBatch
		if err := proto.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("cannot re-encode a v3 batch for v2: %w", err)
		}
		snap, sel := snapshotOfV3(&m)
		var e encoder
		raw := e.appendV2(nil, snap, sel)
		t.m.estimated.Add(float64(e.takeEstimated()))
		t.m.estSets.Add(float64(e.takeEstimatedSets()))
		t.m.v2Past.Add(float64(e.takePast()))
		body, enc, err := t.comp.compress(raw, true)
		if err != nil {
			return nil, err
		}
		b.body, b.enc, b.v2 = body, enc, true
		return nil, nil
	}
	var m garnerpb.EventBatch
	if err := proto.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("cannot re-encode a v3 event batch for v2: %w", err)
	}
	if len(m.ServiceChecks) > 0 {
		t.m.dropped(&batch{items: len(m.ServiceChecks), samples: len(m.ServiceChecks)}, reasonRejected, "")
	}
	if len(m.Events) == 0 {
		return nil, errors.New("v2 has no service checks: nothing left to send")
	}
	var out []*batch
	for i, ev := range m.Events {
		e := &model.Event{
			Title: ev.Title, Text: ev.Text, DateHappened: ev.DateHappened, Hostname: ev.Hostname,
			AggregationKey: ev.AggregationKey, SourceTypeName: ev.SourceTypeName, Tags: ev.Tags, Source: ev.SourceIp,
			Priority: model.Priority(ev.Priority), AlertType: model.AlertType(ev.AlertType),
		}
		body, enc, err := t.comp.compress(appendEvent(nil, e), true)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			b.body, b.enc, b.v2, b.items, b.samples = body, enc, true, 1, 1
			continue
		}
		out = append(out, &batch{kind: kindEvent, v2: true, body: body, enc: enc, items: 1, samples: 1,
			created: b.created, budget: b.budget, expires: b.expires, deadline: b.deadline})
	}
	return out, nil
}

// snapshotOfV3 turns a decoded v3 batch back into a snapshot with every
// series selected.
func snapshotOfV3(m *garnerpb.RawBatch) (*model.Snapshot, *selection) {
	s := &model.Snapshot{}
	sel := &selection{}
	for i, c := range m.Counters {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{Name: c.Name, Tags: c.Tags, Source: c.Source}, Value: c.Value, At: c.TimeUnixNano})
		sel.counters = append(sel.counters, int32(i))
	}
	for i, g := range m.Gauges {
		s.Gauges = append(s.Gauges, model.Gauge{Series: model.Series{Name: g.Name, Tags: g.Tags, Source: g.Source}, Value: g.Value, At: g.TimeUnixNano})
		sel.gauges = append(sel.gauges, int32(i))
	}
	for i, x := range m.Sets {
		ms := make(map[string]struct{}, len(x.Members))
		for _, mm := range x.Members {
			ms[mm] = struct{}{}
		}
		s.Sets = append(s.Sets, model.Set{Series: model.Series{Name: x.Name, Tags: x.Tags, Source: x.Source}, Members: ms})
		if x.Hll != nil {
			// our own encoding of a valid sketch: it decodes
			if sk, err := hll.FromData(x.Hll.Data(), hll.MaxPrecision); err == nil {
				s.Sets[i].Sketch, s.Sets[i].Estimate = sk, sk.Estimate()
			}
		}
		sel.sets = append(sel.sets, int32(i))
	}
	for i, t := range m.Timers {
		s.Timers = append(s.Timers, model.Timer{Series: model.Series{Name: t.Name, Tags: t.Tags, Source: t.Source}, Values: t.Values, SampledCount: t.SampleCount})
		if t.Histogram != nil {
			// our own encoding of a valid histogram: it decodes
			if h, err := histogram.FromData(t.Histogram.Data(), histogram.MaxBucketsLimit); err == nil {
				s.Timers[i].Exp = h
			}
		}
		sel.timers = append(sel.timers, int32(i))
	}
	return s, sel
}
