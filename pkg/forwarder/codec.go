package forwarder

import (
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/histogram"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
)

// The encoders below write the protobuf wire format straight from a
// snapshot, without building the generated message structs: no allocation
// per series once the encoder's buffers have grown. The generated types in
// proto/pb and proto/garnerpb are the specification; codec_test.go checks
// that they decode what these functions write.

// selection picks series of one snapshot by index.
type selection struct {
	counters, gauges, sets, timers []int32
}

func (s *selection) len() int {
	return len(s.counters) + len(s.gauges) + len(s.sets) + len(s.timers)
}

func (s *selection) reset() {
	s.counters, s.gauges, s.sets, s.timers = s.counters[:0], s.gauges[:0], s.sets[:0], s.timers[:0]
}

// encoder holds reusable buffers; it is not safe for concurrent use.
type encoder struct {
	idx []int32 // series indices sorted by name (v2)

	hist       histogram.Data      // the timer histogram being written (v3)
	estimated  map[int32][]float64 // values estimated from histograms, by timer index (v2)
	nEstimated int                 // timers sent as estimated values (v2), for takeEstimated

	sketch                 hll.Data           // the set sketch being written (v3)
	standIns               map[int32][]string // members standing for sketches, by set index (v2)
	nEstimatedSets         int                // sets sent as made-up members (v2), for takeEstimatedSets
	nowCounters, nowGauges []int32            // the selection without past intervals' points (v2)
	nPast                  int                // past intervals' points left out (v2), for takePast
}

// Field numbers of garner.v3.
const (
	v3BatchID   = 1
	v3Counters  = 2
	v3Gauges    = 3
	v3Sets      = 4
	v3Timers    = 5
	v3Forwarder = 6

	v3Name   = 1
	v3Tags   = 2
	v3Source = 3
	v3Value  = 4 // counter, gauge value; set members; timer sample_count
	v3Values = 5 // timer values
	v3Time   = 5 // counter, gauge time_unix_nano
)

// seriesSize is the size of the name, tags and source fields of a v3 series
// message (Counter, Gauge, Set, Timer).
func seriesSize(s *model.Series) int {
	return protowire.SizeTag(v3Name) + protowire.SizeBytes(len(s.Name)) + tagsSourceSize(s, v3Tags, v3Source)
}

func appendSeries(b []byte, s *model.Series) []byte {
	b = protowire.AppendTag(b, v3Name, protowire.BytesType)
	b = protowire.AppendString(b, s.Name)
	return appendTagsSource(b, s, v3Tags, v3Source)
}

// appendV3Scalar appends a Counter or Gauge message (field num): the series
// and one value.
func appendV3Scalar(b []byte, num protowire.Number, s *model.Series, v float64, at int64) []byte {
	n := seriesSize(s) + sizeDouble(v3Value, v)
	if at != 0 {
		n += protowire.SizeTag(v3Time) + protowire.SizeVarint(uint64(at))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendSeries(b, s)
	b = appendDouble(b, v3Value, v)
	if at != 0 {
		b = protowire.AppendTag(b, v3Time, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(at))
	}
	return b
}

// tagsSourceSize is the size of a series' tags and source fields, with
// the field numbers of v3 (Tags, Source) or v2 (Tags, Hostname).
func tagsSourceSize(s *model.Series, tags, source protowire.Number) int {
	n := 0
	for _, t := range s.Tags {
		n += protowire.SizeTag(tags) + protowire.SizeBytes(len(t))
	}
	if s.Source != "" {
		n += protowire.SizeTag(source) + protowire.SizeBytes(len(s.Source))
	}
	return n
}

// appendTagsSource appends what tagsSourceSize measures.
func appendTagsSource(b []byte, s *model.Series, tags, source protowire.Number) []byte {
	for _, t := range s.Tags {
		b = protowire.AppendTag(b, tags, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	if s.Source != "" {
		b = protowire.AppendTag(b, source, protowire.BytesType)
		b = protowire.AppendString(b, s.Source)
	}
	return b
}

func sizeDouble(num protowire.Number, v float64) int {
	if v == 0 && !math.Signbit(v) {
		return 0
	}
	return protowire.SizeTag(num) + 8
}

func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	if v == 0 && !math.Signbit(v) {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendPackedDoubles(b []byte, num protowire.Number, vs []float64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(8*len(vs)))
	for _, v := range vs {
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	}
	return b
}

func sizePackedDoubles(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(8*n)
}

// timerCount is the sample count to forward: Σ 1/rate, or the number of
// values when the snapshot did not fill it in (histogram timers).
func timerCount(t *model.Timer) float64 {
	if t.SampledCount == 0 && len(t.Values) > 0 {
		return float64(len(t.Values))
	}
	return t.SampledCount
}

// appendV3 appends a garner.v3.RawBatch with the selected series to b.
func (e *encoder) appendV3(b []byte, id []byte, forwarder string, snap *model.Snapshot, sel *selection) []byte {
	if len(id) > 0 {
		b = protowire.AppendTag(b, v3BatchID, protowire.BytesType)
		b = protowire.AppendBytes(b, id)
	}
	for _, i := range sel.counters {
		b = appendV3Scalar(b, v3Counters, &snap.Counters[i].Series, snap.Counters[i].Value, snap.Counters[i].At)
	}
	for _, i := range sel.gauges {
		b = appendV3Scalar(b, v3Gauges, &snap.Gauges[i].Series, snap.Gauges[i].Value, snap.Gauges[i].At)
	}
	for _, i := range sel.sets {
		b = e.appendV3Set(b, &snap.Sets[i])
	}
	for _, i := range sel.timers {
		b = e.appendV3Timer(b, &snap.Timers[i])
	}
	if forwarder != "" {
		b = protowire.AppendTag(b, v3Forwarder, protowire.BytesType)
		b = protowire.AppendString(b, forwarder)
	}
	return b
}

// Field numbers of pb.RawMessageV2 and its parts.
const (
	v2Counters = 1
	v2Gauges   = 2
	v2Sets     = 3
	v2Timers   = 4

	v2TagMap   = 1 // XxxTagV2.TagMap
	v2MapKey   = 1 // map entry key
	v2MapValue = 2 // map entry value

	v2Tags     = 1
	v2Hostname = 2
	v2Val      = 3 // counter (int64), gauge (double), set values (strings), timer SampleCount (double)
	v2Vals     = 4 // timer values
)

// tagsKeyLen is the length of gostatsd's tags key of a series: the sorted
// tags joined with ",", then ",s:<source>" when the source is not empty.
func tagsKeyLen(s *model.Series) int {
	n := 0
	for i, t := range s.Tags {
		if i > 0 {
			n++
		}
		n += len(t)
	}
	if s.Source != "" {
		n += 3 + len(s.Source)
	}
	return n
}

func appendTagsKey(b []byte, s *model.Series) []byte {
	for i, t := range s.Tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, t...)
	}
	if s.Source != "" {
		b = append(b, ",s:"...)
		b = append(b, s.Source...)
	}
	return b
}

// v2SeriesSize is the size of Tags and Hostname in a RawXxxV2.
func v2SeriesSize(s *model.Series) int { return tagsSourceSize(s, v2Tags, v2Hostname) }

func appendV2Series(b []byte, s *model.Series) []byte {
	return appendTagsSource(b, s, v2Tags, v2Hostname)
}

// v2Kind encodes the type-specific fields of one RawXxxV2. appendV2Type
// and v2EntrySize take it as a type parameter, not an interface value: a
// kind boxed in an interface was an allocation per type per request.
type v2Kind interface {
	series(i int32) *model.Series
	valueSize(i int32) int
	appendValue(b []byte, i int32) []byte
}

type v2CounterKind struct{ s []model.Counter }

func (v v2CounterKind) series(i int32) *model.Series { return &v.s[i].Series }
func (v v2CounterKind) valueSize(i int32) int {
	n := counterV2(v.s[i].Value)
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(v2Val) + protowire.SizeVarint(uint64(n))
}
func (v v2CounterKind) appendValue(b []byte, i int32) []byte {
	n := counterV2(v.s[i].Value)
	if n == 0 {
		return b
	}
	b = protowire.AppendTag(b, v2Val, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(n))
}

// counterV2 rounds a counter for v2, whose counters are integers.
func counterV2(v float64) int64 {
	r := math.Round(v)
	switch {
	case r >= math.MaxInt64:
		return math.MaxInt64
	case r <= math.MinInt64:
		return math.MinInt64
	}
	return int64(r)
}

type v2GaugeKind struct{ s []model.Gauge }

func (v v2GaugeKind) series(i int32) *model.Series { return &v.s[i].Series }
func (v v2GaugeKind) valueSize(i int32) int        { return sizeDouble(v2Val, v.s[i].Value) }
func (v v2GaugeKind) appendValue(b []byte, i int32) []byte {
	return appendDouble(b, v2Val, v.s[i].Value)
}

type v2SetKind struct {
	s        []model.Set
	standIns map[int32][]string // encoder.v2Members
}

func (v v2SetKind) series(i int32) *model.Series { return &v.s[i].Series }
func (v v2SetKind) valueSize(i int32) int {
	n := 0
	if ms, ok := v.standIns[i]; ok {
		for _, m := range ms {
			n += protowire.SizeTag(v2Val) + protowire.SizeBytes(len(m))
		}
		return n
	}
	for m := range v.s[i].Members {
		n += protowire.SizeTag(v2Val) + protowire.SizeBytes(len(m))
	}
	return n
}
func (v v2SetKind) appendValue(b []byte, i int32) []byte {
	if ms, ok := v.standIns[i]; ok {
		for _, m := range ms {
			b = protowire.AppendTag(b, v2Val, protowire.BytesType)
			b = protowire.AppendString(b, m)
		}
		return b
	}
	for m := range v.s[i].Members {
		b = protowire.AppendTag(b, v2Val, protowire.BytesType)
		b = protowire.AppendString(b, m)
	}
	return b
}

type v2TimerKind struct {
	s         []model.Timer
	estimated map[int32][]float64 // encoder.v2Values
}

func (v v2TimerKind) series(i int32) *model.Series { return &v.s[i].Series }
func (v v2TimerKind) values(i int32) []float64 {
	if vs, ok := v.estimated[i]; ok {
		return vs
	}
	return v.s[i].Values
}
func (v v2TimerKind) valueSize(i int32) int {
	t := &v.s[i]
	return sizeDouble(v2Val, timerCount(t)) + sizePackedDoubles(v2Vals, len(v.values(i)))
}
func (v v2TimerKind) appendValue(b []byte, i int32) []byte {
	t := &v.s[i]
	b = appendDouble(b, v2Val, timerCount(t))
	return appendPackedDoubles(b, v2Vals, v.values(i))
}

// appendV2 appends a pb.RawMessageV2 with the selected series to b. The
// counters and gauges of past intervals (timestamps = "honor") are left
// out and counted (takePast): v2 has no time for them, and a second entry
// of a series would replace the current one in its map.
func (e *encoder) appendV2(b []byte, snap *model.Snapshot, sel *selection) []byte {
	e.nowCounters = e.nowOnly(e.nowCounters, sel.counters, func(i int32) bool { return snap.Counters[i].At == 0 })
	e.nowGauges = e.nowOnly(e.nowGauges, sel.gauges, func(i int32) bool { return snap.Gauges[i].At == 0 })
	b = appendV2Type(e, b, v2Counters, v2CounterKind{snap.Counters}, e.nowCounters)
	b = appendV2Type(e, b, v2Gauges, v2GaugeKind{snap.Gauges}, e.nowGauges)
	e.v2Members(snap.Sets, sel.sets)
	b = appendV2Type(e, b, v2Sets, v2SetKind{snap.Sets, e.standIns}, sel.sets)
	e.v2Values(snap.Timers, sel.timers)
	b = appendV2Type(e, b, v2Timers, v2TimerKind{snap.Timers, e.estimated}, sel.timers)
	return b
}

// nowOnly returns the indices of sel for which now is true, in dst's
// memory, and counts the others in e.nPast.
func (e *encoder) nowOnly(dst, sel []int32, now func(int32) bool) []int32 {
	dst = dst[:0]
	for _, i := range sel {
		if now(i) {
			dst = append(dst, i)
		} else {
			e.nPast++
		}
	}
	return dst
}

// takePast returns how many past intervals' points appendV2 left out since
// the last call, and resets the count.
func (e *encoder) takePast() int {
	n := e.nPast
	e.nPast = 0
	return n
}

// appendV2Type writes one map<name, XxxTagV2> field: the series grouped by
// name, each group one map entry whose TagMap is keyed by the tags key.
func appendV2Type[K v2Kind](e *encoder, b []byte, field protowire.Number, v K, sel []int32) []byte {
	if len(sel) == 0 {
		return b
	}
	e.idx = append(e.idx[:0], sel...)
	slices.SortFunc(e.idx, func(x, y int32) int { return strings.Compare(v.series(x).Name, v.series(y).Name) })
	for start := 0; start < len(e.idx); {
		name := v.series(e.idx[start]).Name
		end := start + 1
		for end < len(e.idx) && v.series(e.idx[end]).Name == name {
			end++
		}
		group := e.idx[start:end]
		// XxxTagV2 size: one TagMap entry per series.
		tagMap := 0
		for _, i := range group {
			tagMap += protowire.SizeTag(v2TagMap) + protowire.SizeBytes(v2EntrySize(v, i))
		}
		entry := protowire.SizeTag(v2MapKey) + protowire.SizeBytes(len(name)) +
			protowire.SizeTag(v2MapValue) + protowire.SizeBytes(tagMap)
		b = protowire.AppendTag(b, field, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entry))
		b = protowire.AppendTag(b, v2MapKey, protowire.BytesType)
		b = protowire.AppendString(b, name)
		b = protowire.AppendTag(b, v2MapValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(tagMap))
		for _, i := range group {
			s := v.series(i)
			raw := v2SeriesSize(s) + v.valueSize(i)
			b = protowire.AppendTag(b, v2TagMap, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(v2EntrySize(v, i)))
			b = protowire.AppendTag(b, v2MapKey, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(tagsKeyLen(s)))
			b = appendTagsKey(b, s)
			b = protowire.AppendTag(b, v2MapValue, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(raw))
			b = appendV2Series(b, s)
			b = v.appendValue(b, i)
		}
		start = end
	}
	return b
}

// v2EntrySize is the size of one TagMap entry: tags key and RawXxxV2.
func v2EntrySize[K v2Kind](v K, i int32) int {
	s := v.series(i)
	return protowire.SizeTag(v2MapKey) + protowire.SizeBytes(tagsKeyLen(s)) +
		protowire.SizeTag(v2MapValue) + protowire.SizeBytes(v2SeriesSize(s)+v.valueSize(i))
}

// Field numbers of pb.EventV2 and garner.v3.Event (the same up to 10).
const (
	evTitle          = 1
	evText           = 2
	evDateHappened   = 3
	evHostname       = 4
	evAggregationKey = 5
	evSourceTypeName = 6
	evTags           = 7
	evSourceIP       = 8
	evPriority       = 9
	evAlertType      = 10
)

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func sizeStringField(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func sizeVarintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

// eventSize is the size of an EventV2 (or garner.v3.Event) holding e.
func eventSize(e *model.Event) int {
	n := sizeStringField(evTitle, e.Title) + sizeStringField(evText, e.Text) +
		sizeVarintField(evDateHappened, uint64(e.DateHappened)) + sizeStringField(evHostname, e.Hostname) +
		sizeStringField(evAggregationKey, e.AggregationKey) + sizeStringField(evSourceTypeName, e.SourceTypeName) +
		sizeStringField(evSourceIP, e.Source) + sizeVarintField(evPriority, uint64(e.Priority)) +
		sizeVarintField(evAlertType, uint64(e.AlertType))
	for _, t := range e.Tags {
		n += protowire.SizeTag(evTags) + protowire.SizeBytes(len(t))
	}
	return n
}

// appendEvent appends the fields of an EventV2 (or garner.v3.Event).
func appendEvent(b []byte, e *model.Event) []byte {
	b = appendStringField(b, evTitle, e.Title)
	b = appendStringField(b, evText, e.Text)
	b = appendVarintField(b, evDateHappened, uint64(e.DateHappened))
	b = appendStringField(b, evHostname, e.Hostname)
	b = appendStringField(b, evAggregationKey, e.AggregationKey)
	b = appendStringField(b, evSourceTypeName, e.SourceTypeName)
	for _, t := range e.Tags {
		b = protowire.AppendTag(b, evTags, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	b = appendStringField(b, evSourceIP, e.Source)
	b = appendVarintField(b, evPriority, uint64(e.Priority))
	b = appendVarintField(b, evAlertType, uint64(e.AlertType))
	return b
}

// Field numbers of garner.v3.EventBatch and garner.v3.ServiceCheck.
const (
	ebBatchID       = 1
	ebEvents        = 2
	ebServiceChecks = 3

	scName      = 1
	scStatus    = 2
	scTimestamp = 3
	scHostname  = 4
	scTags      = 5
	scMessage   = 6
	scSourceIP  = 7
)

func checkSize(c *model.ServiceCheck) int {
	n := sizeStringField(scName, c.Name) + sizeVarintField(scStatus, uint64(c.Status)) +
		sizeVarintField(scTimestamp, uint64(c.Timestamp)) + sizeStringField(scHostname, c.Hostname) +
		sizeStringField(scMessage, c.Message) + sizeStringField(scSourceIP, c.Source)
	for _, t := range c.Tags {
		n += protowire.SizeTag(scTags) + protowire.SizeBytes(len(t))
	}
	return n
}

func appendCheck(b []byte, c *model.ServiceCheck) []byte {
	b = appendStringField(b, scName, c.Name)
	b = appendVarintField(b, scStatus, uint64(c.Status))
	b = appendVarintField(b, scTimestamp, uint64(c.Timestamp))
	b = appendStringField(b, scHostname, c.Hostname)
	for _, t := range c.Tags {
		b = protowire.AppendTag(b, scTags, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	b = appendStringField(b, scMessage, c.Message)
	b = appendStringField(b, scSourceIP, c.Source)
	return b
}

// appendEventBatch appends a garner.v3.EventBatch.
func appendEventBatch(b []byte, id []byte, events []*model.Event, checks []*model.ServiceCheck) []byte {
	if len(id) > 0 {
		b = protowire.AppendTag(b, ebBatchID, protowire.BytesType)
		b = protowire.AppendBytes(b, id)
	}
	for _, e := range events {
		b = protowire.AppendTag(b, ebEvents, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(eventSize(e)))
		b = appendEvent(b, e)
	}
	for _, c := range checks {
		b = protowire.AppendTag(b, ebServiceChecks, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(checkSize(c)))
		b = appendCheck(b, c)
	}
	return b
}
