package forwarder

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/garner-metrics/garner/pkg/model"
)

// newBatch builds a batch from raw bytes: kept until max-buffer-age from
// now, each delivery retried within the retry budget.
func (f *Forwarder) newBatch(kind batchKind, v2 bool, raw []byte, items, samples int, h http.Header) (*batch, error) {
	body, enc, err := f.comp.compress(raw, v2)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	budget := f.opts.MaxRequestElapsedTime
	if budget < 0 {
		budget = f.opts.FlushInterval // one attempt, which may wait one interval for a slot
	}
	f.m.batches.WithLabelValues(kind.String()).Inc()
	return &batch{kind: kind, v2: v2, body: body, enc: enc, header: h, items: items, samples: samples,
		created: now, budget: budget, expires: now.Add(f.opts.MaxBufferAge)}, nil
}

// samples is how many values the selected series carry: one per counter
// and gauge, the members of a set, the values of a timer.
func (s *selection) samples(snap *model.Snapshot) int {
	n := len(s.counters) + len(s.gauges)
	for _, i := range s.sets {
		n += snap.Sets[i].Count()
	}
	for _, i := range s.timers {
		n += len(snap.Timers[i].Values)
	}
	return n
}

func newBatchID() []byte {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return id
}

// choice is the routing state of one flush: the upstreams' hashes and which
// of them are in the choice.
type choice struct {
	hashes []uint64
	ok     []bool // nil when every upstream is out: keep the first choices
	allUp  bool
}

func newChoice(ups []*upstream) choice {
	c := choice{hashes: make([]uint64, len(ups)), ok: make([]bool, len(ups)), allUp: true}
	anyUp := false
	for i, u := range ups {
		c.hashes[i], c.ok[i] = u.hash, u.up.Load()
		anyUp = anyUp || c.ok[i]
		c.allUp = c.allUp && c.ok[i]
	}
	if !anyUp {
		c.ok = nil
	}
	return c
}

// pick is the upstream (index) for a series hash.
func (c choice) pick(h uint64) int { return choose(h, c.hashes, c.ok) }

// rerouted reports whether picked is not h's first choice.
func (c choice) rerouted(h uint64, picked int) bool {
	return !c.allUp && c.ok != nil && choose(h, c.hashes, nil) != picked
}

// partKey is one request's destination: upstream and dynamic header values.
type partKey struct {
	up  *upstream
	hdr string
}

// SendMetrics splits the snapshot over the upstreams, encodes, compresses
// and queues it. It never waits for the network.
func (f *Forwarder) SendMetrics(_ context.Context, snap *model.Snapshot) error {
	if snap.Len() == 0 {
		return nil
	}
	ups := f.upstreams()
	if len(ups) == 0 {
		return errors.New("no upstream")
	}
	ch := newChoice(ups)

	f.encMu.Lock()
	defer f.encMu.Unlock()
	for _, p := range f.parts {
		p.reset()
	}
	assign := func(s *model.Series) *selection {
		var h uint64
		h, f.keyBuf = seriesHash(f.keyBuf, s)
		c := ch.pick(h)
		if ch.rerouted(h, c) {
			f.m.rerouted.Inc()
		}
		k := partKey{up: ups[c], hdr: f.headerKey(s)}
		p := f.parts[k]
		if p == nil {
			p = &selection{}
			f.parts[k] = p
		}
		return p
	}
	for i := range snap.Counters {
		p := assign(&snap.Counters[i].Series)
		p.counters = append(p.counters, int32(i))
	}
	for i := range snap.Gauges {
		p := assign(&snap.Gauges[i].Series)
		p.gauges = append(p.gauges, int32(i))
	}
	for i := range snap.Sets {
		if snap.Sets[i].Count() == 0 {
			continue
		}
		p := assign(&snap.Sets[i].Series)
		p.sets = append(p.sets, int32(i))
	}
	for i := range snap.Timers {
		if len(snap.Timers[i].Values) == 0 && (snap.Timers[i].Exp == nil || snap.Timers[i].Exp.Count() == 0) {
			continue
		}
		p := assign(&snap.Timers[i].Series)
		p.timers = append(p.timers, int32(i))
	}
	var errs []error
	for k, p := range f.parts {
		if p.len() == 0 {
			delete(f.parts, k) // upstreams come and go: do not keep their keys
			continue
		}
		h := f.hdrs[k.hdr]
		p.split(f.opts.MaxSeriesPerRequest, func(sel *selection) {
			v2 := k.up.v2.Load()
			if v2 {
				f.raw = f.enc.appendV2(f.raw[:0], snap, sel)
				f.m.estimated.Add(float64(f.enc.takeEstimated()))
				f.m.estSets.Add(float64(f.enc.takeEstimatedSets()))
				f.m.v2Past.Add(float64(f.enc.takePast()))
			} else {
				f.raw = f.enc.appendV3(f.raw[:0], newBatchID(), f.opts.Hostname, snap, sel)
			}
			b, err := f.newBatch(kindRaw, v2, f.raw, sel.len(), sel.samples(snap), h)
			if err != nil {
				errs = append(errs, err)
				return
			}
			k.up.enqueue(b)
		})
	}
	return errors.Join(errs...)
}

// split calls fn with consecutive parts of s of at most max series. The
// parts share s's memory.
func (s *selection) split(max int, fn func(*selection)) {
	if s.len() <= max {
		fn(s)
		return
	}
	lists := [4][]int32{s.counters, s.gauges, s.sets, s.timers}
	var cur [4][]int32
	n := 0
	emit := func() {
		fn(&selection{counters: cur[0], gauges: cur[1], sets: cur[2], timers: cur[3]})
		cur = [4][]int32{}
		n = 0
	}
	for t, l := range lists {
		for len(l) > 0 {
			k := min(max-n, len(l))
			cur[t], l = l[:k], l[k:]
			n += k
			if n == max {
				emit()
			}
		}
	}
	if n > 0 {
		emit()
	}
}

// headerKey is the series' dynamic header values ("name:value,..."), and
// caches the headers they make; "" without dynamic headers.
func (f *Forwarder) headerKey(s *model.Series) string {
	if len(f.opts.DynamicHeaders) == 0 {
		return ""
	}
	var b strings.Builder
	for _, name := range f.opts.DynamicHeaders {
		for _, t := range s.Tags {
			if len(t) > len(name) && t[len(name)] == ':' && strings.HasPrefix(t, name) {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(t)
				break
			}
		}
	}
	k := b.String()
	if _, ok := f.hdrs[k]; !ok && k != "" {
		h := http.Header{}
		for _, tv := range strings.Split(k, ",") {
			name, value, _ := strings.Cut(tv, ":")
			name = http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
			if _, static := f.opts.CustomHeaders[name]; !static {
				h.Set(name, value)
			}
		}
		f.hdrs[k] = h
	}
	return k
}
