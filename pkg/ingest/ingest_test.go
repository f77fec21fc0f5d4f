package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/hll"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

type sink struct {
	mu     sync.Mutex
	events []*model.Event
	checks []*model.ServiceCheck
}

func (s *sink) Event(e *model.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *sink) ServiceCheck(c *model.ServiceCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
}

type fixture struct {
	t    testing.TB
	agg  *aggregator.Aggregator
	h    *Handler
	srv  *httptest.Server
	sink *sink
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	return newFixtureSets(t, opts, aggregator.SetExact)
}

// newFixtureSets is newFixture with an aggregator of set-aggregation sets.
func newFixtureSets(t testing.TB, opts Options, sets aggregator.SetAggregation) *fixture {
	t.Helper()
	log := garnertest.QuietLog()
	reg := prometheus.NewRegistry()
	s := &sink{}
	agg := aggregator.New(aggregator.Options{
		Shards: 2, MaxQueuedSamples: 1 << 16, PercentThresholds: []float64{90}, HistogramLimit: 64,
		SetAggregation: sets,
	}, log, reg)
	lines := receiver.NewLines(receiver.Options{DefaultTags: []string{"dc:x"}, Namespace: "ignored", IgnoreHost: true}, agg, s, log, reg)
	garnertest.RunUntilCleanup(t, agg)
	h := newHandler(t, opts, lines, log, reg)
	mux := http.NewServeMux()
	for _, r := range h.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{t: t, agg: agg, h: h, srv: srv, sink: s}
}

// newHandler is New for a test: it fails the test on an error, and closes
// the handler when the test ends.
func newHandler(t testing.TB, opts Options, lines *receiver.Lines, log logrus.FieldLogger, reg prometheus.Registerer) *Handler {
	t.Helper()
	h, err := New(opts, lines, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// route is h's handler for pattern (e.g. "POST /v3/raw"), nil when h
// serves no such route.
func route(h *Handler, pattern string) http.Handler {
	for _, r := range h.Routes() {
		if r.Pattern == pattern {
			return r.Handler
		}
	}
	return nil
}

func (f *fixture) post(path, enc string, body []byte) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

func (f *fixture) flush() *model.Snapshot {
	f.t.Helper()
	return garnertest.Flush(f.t, f.agg)
}

func zstdCompress(t testing.TB, b []byte) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(b, nil)
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gostatsdBody is a /v2/raw body as a gostatsd forwarder builds it: tags
// keys with ",s:<host>", tags unsorted in the list, a counter already
// divided by its rate.
func gostatsdBody() *pb.RawMessageV2 {
	return &pb.RawMessageV2{
		Counters: map[string]*pb.CounterTagV2{
			"api.req": {TagMap: map[string]*pb.RawCounterV2{
				"a:1,b:2,s:10.0.0.1": {Tags: []string{"b:2", "a:1"}, Hostname: "10.0.0.1", Value: 40},
				"a:2":                {Tags: []string{"a:2"}, Value: 2},
			}},
		},
		Gauges: map[string]*pb.GaugeTagV2{
			"temp": {TagMap: map[string]*pb.RawGaugeV2{",s:h1": {Hostname: "h1", Value: -3.5}}},
		},
		Sets: map[string]*pb.SetTagV2{
			"users": {TagMap: map[string]*pb.RawSetV2{"": {Values: []string{"ann", "bob", "ann"}}}},
		},
		Timers: map[string]*pb.TimerTagV2{
			"lat": {TagMap: map[string]*pb.RawTimerV2{"host:x": {Tags: []string{"host:x"}, SampleCount: 10, Values: []float64{3, 1, 2, 4, 5}}}},
		},
	}
}

func seriesKey(s model.Series) string {
	return s.Name + "|" + strings.Join(s.Tags, ",") + "|" + s.Source
}

func TestRawV2FromGostatsd(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true})
	for _, enc := range []string{"deflate", "identity", ""} {
		body := mustMarshal(t, gostatsdBody())
		if enc == "deflate" {
			body = garnertest.Deflate(t, body)
		}
		if resp := f.post("/v2/raw", enc, body); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%q: status %d, want 202", enc, resp.StatusCode)
		}
	}
	s := f.flush()
	got := map[string]float64{}
	for _, c := range s.Counters {
		got["c "+seriesKey(c.Series)] = c.Value
	}
	for _, g := range s.Gauges {
		got["g "+seriesKey(g.Series)] = g.Value
	}
	for _, st := range s.Sets {
		got["s "+seriesKey(st.Series)] = float64(len(st.Members))
	}
	for _, tm := range s.Timers {
		got["t "+seriesKey(tm.Series)] = tm.SampledCount
		got["t.values "+seriesKey(tm.Series)] = float64(len(tm.Values))
	}
	// Three requests; names not namespaced again; source from Hostname, the
	// host: tag left alone (ignore-host applies to lines only); default tags.
	want := map[string]float64{
		"c api.req|a:1,b:2,dc:x|10.0.0.1": 120,
		"c api.req|a:2,dc:x|":             6,
		"g temp|dc:x|h1":                  -3.5,
		"s users|dc:x|":                   2,
		"t lat|dc:x,host:x|":              30,
		"t.values lat|dc:x,host:x|":       15,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestRawV3AndDedup(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true})
	batch := &garnerpb.RawBatch{
		BatchId:  []byte("0123456789abcdef"),
		Counters: []*garnerpb.Counter{{Name: "c", Tags: []string{"k:v"}, Source: "s", Value: 0.25}},
		Timers:   []*garnerpb.Timer{{Name: "t", SampleCount: 2, Values: []float64{1, 2}}},
		Gauges:   []*garnerpb.Gauge{{Name: "", Value: 1}}, // no name: skipped, counted
	}
	body := mustMarshal(t, batch)
	for i, enc := range []string{"zstd", "deflate", "identity"} {
		b := body
		switch enc {
		case "zstd":
			b = zstdCompress(t, body)
		case "deflate":
			b = garnertest.Deflate(t, body)
		}
		resp := f.post("/v3/raw", enc, b)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: status %d", enc, resp.StatusCode)
		}
		if dup := resp.Header.Get("X-Garner-Duplicate") == "true"; dup != (i > 0) {
			t.Fatalf("%s: duplicate header %v on request %d", enc, dup, i)
		}
	}
	// A batch without an id is never a duplicate.
	batch.BatchId = nil
	f.post("/v3/raw", "", mustMarshal(t, batch))
	s := f.flush()
	if len(s.Counters) != 1 || s.Counters[0].Value != 0.5 {
		t.Fatalf("counters %+v: want one series of 0.5 (float counters, the retried batch applied once)", s.Counters)
	}
	if len(s.Timers) != 1 || s.Timers[0].SampledCount != 4 {
		t.Fatalf("timers %+v", s.Timers)
	}
	if n := testutil.ToFloat64(f.h.m.requests.WithLabelValues("/v3/raw", resDuplicate)); n != 2 {
		t.Fatalf("duplicates counted %v, want 2", n)
	}
	if n := testutil.ToFloat64(f.h.m.invalid); n != 2 {
		t.Fatalf("invalid series %v, want 2", n)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true, MaxBodyBytes: 64 << 10, MaxDecompressedBytes: 1 << 20})
	good := mustMarshal(t, gostatsdBody())
	big := make([]byte, 100<<10)
	cases := []struct {
		name   string
		method string
		path   string
		enc    string
		body   []byte
		want   int
	}{
		{"garbage", http.MethodPost, "/v2/raw", "", []byte("\xff\xff\xff not protobuf"), http.StatusBadRequest},
		{"bad deflate", http.MethodPost, "/v2/raw", "deflate", []byte("not zlib"), http.StatusBadRequest},
		{"bad zstd", http.MethodPost, "/v3/raw", "zstd", []byte("not zstd"), http.StatusBadRequest},
		{"gzip", http.MethodPost, "/v2/raw", "gzip", good, http.StatusUnsupportedMediaType},
		{"zstd on v2", http.MethodPost, "/v2/raw", "zstd", zstdCompress(t, good), http.StatusUnsupportedMediaType},
		{"body too large", http.MethodPost, "/v2/raw", "", big, http.StatusRequestEntityTooLarge},
		{"deflate over the limit", http.MethodPost, "/v2/raw", "deflate", garnertest.Deflate(t, make([]byte, 2<<20)), http.StatusRequestEntityTooLarge},
		{"zstd over the limit", http.MethodPost, "/v3/raw", "zstd", zstdCompress(t, make([]byte, 2<<20)), http.StatusRequestEntityTooLarge},
		{"GET", http.MethodGet, "/v2/raw", "", nil, http.StatusMethodNotAllowed},
		{"bad event", http.MethodPost, "/v2/event", "", []byte{0x0a, 0xff}, http.StatusBadRequest},
		{"empty body is an empty message", http.MethodPost, "/v2/raw", "", nil, http.StatusAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, bytes.NewReader(tc.body))
			if tc.enc != "" {
				req.Header.Set("Content-Encoding", tc.enc)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if s := f.flush(); s.Len() != 0 {
		t.Fatalf("refused requests applied %d series", s.Len())
	}
}

// TestDeflateBomb sends 32 MiB of zeros deflated to about 32 KiB: the
// answer is 413 and the server allocates about the limit, not the inflated
// size.
func TestDeflateBomb(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true, MaxBodyBytes: 4 << 20, MaxDecompressedBytes: 1 << 20})
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
	zero := make([]byte, 1<<20)
	for i := 0; i < 32; i++ {
		_, _ = w.Write(zero)
	}
	_ = w.Close()
	bomb := buf.Bytes()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := f.post("/v2/raw", "deflate", bomb)
	runtime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d MiB for a %d KiB bomb; want decompression to stop at the limit", grew>>20, len(bomb)>>10)
	}
}

func TestV3Disabled(t *testing.T) {
	f := newFixture(t, Options{ServeV3: false})
	if resp := f.post("/v3/raw", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/v3/raw with v3 off: status %d, want 404 (the forwarder's cue to speak v2)", resp.StatusCode)
	}
	if resp := f.post("/v2/raw", "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("/v2/raw: status %d", resp.StatusCode)
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true})
	ev := &pb.EventV2{Title: "deploy", Text: "ok", Hostname: "web", Tags: []string{"a"}, SourceIP: "10.0.0.1",
		Priority: pb.EventV2_Low, Type: pb.EventV2_Error, DateHappened: 1700000000}
	if resp := f.post("/v2/event", "deflate", garnertest.Deflate(t, mustMarshal(t, ev))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("v2 event: %d", resp.StatusCode)
	}
	batch := &garnerpb.EventBatch{
		BatchId: []byte("e1"),
		Events:  []*garnerpb.Event{{Title: "t2", AlertType: garnerpb.Event_WARNING}},
		ServiceChecks: []*garnerpb.ServiceCheck{
			{Name: "db", Status: garnerpb.ServiceCheck_CRITICAL, Message: "down", Timestamp: 5},
		},
	}
	for i := 0; i < 2; i++ {
		if resp := f.post("/v3/event", "zstd", zstdCompress(t, mustMarshal(t, batch))); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("v3 events: %d", resp.StatusCode)
		}
	}
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	if len(f.sink.events) != 2 || len(f.sink.checks) != 1 {
		t.Fatalf("got %d events, %d checks; want 2 and 1 (the retried batch once)", len(f.sink.events), len(f.sink.checks))
	}
	e := f.sink.events[0]
	sort.Strings(e.Tags)
	if e.Title != "deploy" || e.Priority != model.PriorityLow || e.AlertType != model.AlertError || e.Source != "10.0.0.1" ||
		e.DateHappened != 1700000000 || strings.Join(e.Tags, ",") != "a,dc:x" {
		t.Fatalf("v2 event %+v", e)
	}
	if e := f.sink.events[1]; e.Title != "t2" || e.AlertType != model.AlertWarning || e.DateHappened == 0 {
		t.Fatalf("v3 event %+v", e)
	}
	if c := f.sink.checks[0]; c.Name != "db" || c.Status != model.CheckCritical || c.Message != "down" || c.Timestamp != 5 {
		t.Fatalf("service check %+v", c)
	}
}

func TestDedupWindowAndBound(t *testing.T) {
	d := newDedup(time.Minute, 3)
	now := time.Now()
	cases := []struct {
		id    string
		at    time.Duration
		first bool
	}{
		{"a", 0, true},
		{"a", time.Second, false},
		{"b", 2 * time.Second, true},
		{"a", 61 * time.Second, true}, // forgotten after the window
		{"c", 62 * time.Second, true},
		{"d", 63 * time.Second, true},
		{"e", 64 * time.Second, true}, // over max: the oldest goes
		{"b", 65 * time.Second, true},
		{"e", 66 * time.Second, false},
	}
	for i, tc := range cases {
		if got := d.firstTime([]byte(tc.id), now.Add(tc.at)); got != tc.first {
			t.Fatalf("step %d (%s at %s): first = %v, want %v", i, tc.id, tc.at, got, tc.first)
		}
	}
	if d.len() > 3 {
		t.Fatalf("remembers %d ids, max 3", d.len())
	}
}

// TestWireEnumsNumberAsGarner pins the assumption of wireEnum: both wire
// protocols number priorities, alert types and statuses as pkg/model does.
func TestWireEnumsNumberAsGarner(t *testing.T) {
	alerts := []struct {
		v2   pb.EventV2_AlertType
		v3   garnerpb.Event_AlertType
		want model.AlertType
	}{
		{pb.EventV2_Info, garnerpb.Event_INFO, model.AlertInfo},
		{pb.EventV2_Warning, garnerpb.Event_WARNING, model.AlertWarning},
		{pb.EventV2_Error, garnerpb.Event_ERROR, model.AlertError},
		{pb.EventV2_Success, garnerpb.Event_SUCCESS, model.AlertSuccess},
		{7, 7, model.AlertInfo},
	}
	for _, a := range alerts {
		if g := wireEnum(a.v2, model.AlertSuccess); g != a.want {
			t.Errorf("v2 %v → %v, want %v", a.v2, g, a.want)
		}
		if g := wireEnum(a.v3, model.AlertSuccess); g != a.want {
			t.Errorf("v3 %v → %v, want %v", a.v3, g, a.want)
		}
	}
	if wireEnum(pb.EventV2_Low, model.PriorityLow) != model.PriorityLow || wireEnum(garnerpb.Event_LOW, model.PriorityLow) != model.PriorityLow {
		t.Error("low priority not carried")
	}
	for s, want := range map[garnerpb.ServiceCheck_Status]model.CheckStatus{
		garnerpb.ServiceCheck_OK: model.CheckOK, garnerpb.ServiceCheck_WARNING: model.CheckWarning,
		garnerpb.ServiceCheck_CRITICAL: model.CheckCritical,
	} {
		if model.CheckStatus(s) != want {
			t.Errorf("status %v numbered %d, garner %d", s, s, want)
		}
	}
}

// TestSenderGoneMidApply: a forwarder whose request times out while the
// shards are busy retries it, and the aggregator ignores the retry as a
// duplicate. So the first request must be applied whole though its client
// has gone: nothing lost, nothing counted twice.
func TestSenderGoneMidApply(t *testing.T) {
	log := garnertest.QuietLog()
	reg := prometheus.NewRegistry()
	agg := aggregator.New(aggregator.Options{Shards: 1, MaxQueuedSamples: 4}, log, reg)
	h := newHandler(t, Options{ServeV3: true}, receiver.NewLines(receiver.Options{}, agg, &sink{}, log, reg), log, reg)
	handler := route(h, "POST /v3/raw")
	if handler == nil {
		t.Fatal("no POST /v3/raw route")
	}
	batch := &garnerpb.RawBatch{BatchId: []byte("fedcba9876543210")}
	const n = 5000 // several hand-off batches: the first fills the queue
	for i := range n {
		batch.Counters = append(batch.Counters, &garnerpb.Counter{Name: fmt.Sprintf("c%d", i), Value: 1})
	}
	body := mustMarshal(t, batch)
	post := func(ctx context.Context) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v3/raw", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	// The shards are not running yet: the queue (4 samples) fills at once
	// and the request waits. Its sender gives up; then the shards start.
	gone, giveUp := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- post(gone).Code }()
	time.Sleep(50 * time.Millisecond) // let the request reach the full queue; a test of order, not of timing
	giveUp()
	garnertest.RunUntilCleanup(t, agg)
	if code := <-done; code != http.StatusAccepted {
		t.Fatalf("first request answered %d", code)
	}
	if rec := post(context.Background()); rec.Header().Get("X-Garner-Duplicate") != "true" {
		t.Fatalf("the retry was not taken as a duplicate (status %d)", rec.Code)
	}
	s := garnertest.Flush(t, agg)
	var total float64
	for _, c := range s.Counters {
		total += c.Value
	}
	if total != n {
		t.Fatalf("%v of %d increments applied (dropped: %v)", total, n, testutil.ToFloat64(h.m.dropped))
	}
}

// TestSetSketches: a v3 set with a sketch (field 5) is merged with the
// members it comes with, streaming or not; an invalid sketch is skipped
// and counted in garner_ingest_invalid_series_total.
func TestSetSketches(t *testing.T) {
	f := newFixture(t, Options{ServeV3: true})
	sk := hll.New(hll.DefaultPrecision)
	for i := 0; i < 1000; i++ {
		sk.AddString(fmt.Sprintf("user-%d", i))
	}
	var d hll.Data
	sk.Export(&d)
	bad := make([]byte, 16)
	bad[3] = 62 // above the highest rank at precision 4
	body := mustMarshal(t, &garnerpb.RawBatch{Sets: []*garnerpb.Set{
		{Name: "users", Members: []string{"user-1", "someone-else"}, Hll: &garnerpb.HyperLogLog{Precision: uint32(d.Precision), Hashes: d.Hashes}},
		{Name: "broken", Hll: &garnerpb.HyperLogLog{Precision: 4, Registers: bad}},
	}})
	hist := mustMarshal(t, &garnerpb.RawBatch{ // a histogram timer sends the body to the generated code
		Sets:   []*garnerpb.Set{{Name: "users2", Hll: &garnerpb.HyperLogLog{Precision: uint32(d.Precision), Hashes: d.Hashes}}},
		Timers: []*garnerpb.Timer{{Name: "t", SampleCount: 1, Histogram: &garnerpb.Histogram{Count: 1, Sum: 1, Min: 1, Max: 1, PositiveCounts: []uint64{1}}}},
	})
	for _, b := range [][]byte{body, hist} {
		if resp := f.post("/v3/raw", "", b); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	got := map[string]int{}
	for _, s := range f.flush().Sets {
		got[s.Name] = s.Count()
	}
	if got["users"] != 1001 || got["users2"] != 1000 || got["broken"] != 0 {
		t.Errorf("set counts %v, want users 1001, users2 1000, no broken", got)
	}
	if n := testutil.ToFloat64(f.h.m.invalid); n != 1 {
		t.Errorf("invalid series %v, want 1", n)
	}
}
