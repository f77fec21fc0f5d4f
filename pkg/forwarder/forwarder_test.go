package forwarder

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/ingest"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/receiver"
)

// aggServer is a real aggregator behind the real ingestion handlers, with
// an optional middleware in front (to fail, delay or record requests).
type aggServer struct {
	t     *testing.T
	agg   *aggregator.Aggregator
	srv   *httptest.Server
	reqs  atomic.Int64
	mu    sync.Mutex
	paths []string
	hdrs  []http.Header
	// before, when set, may answer instead of the handlers (return true).
	before atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

func newAggServer(t *testing.T, v3 bool, ln net.Listener) *aggServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	a := &aggServer{t: t}
	a.agg = aggregator.New(aggregator.Options{
		Shards: 2, MaxQueuedSamples: 1 << 16, PercentThresholds: []float64{90}, HistogramLimit: 8,
		Expiry: aggregator.Expiry{Counter: -1, Gauge: -1, Set: -1, Timer: -1}, // each flush holds only new data
	}, garnertest.QuietLog(), reg)
	garnertest.RunUntilCleanup(t, a.agg)
	h, err := ingest.New(ingest.Options{ServeV3: v3}, receiver.NewLines(receiver.Options{}, a.agg, nil, garnertest.QuietLog(), reg), garnertest.QuietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	mux := http.NewServeMux()
	for _, r := range h.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	hf := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.reqs.Add(1)
		a.mu.Lock()
		a.paths = append(a.paths, r.URL.Path)
		a.hdrs = append(a.hdrs, r.Header.Clone())
		a.mu.Unlock()
		if fn := a.before.Load(); fn != nil && (*fn)(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
	if ln != nil {
		a.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: hf}}
		a.srv.Start()
	} else {
		a.srv = httptest.NewServer(hf)
	}
	t.Cleanup(a.srv.Close)
	return a
}

func (a *aggServer) setBefore(fn func(w http.ResponseWriter, r *http.Request) bool) {
	if fn == nil {
		a.before.Store(nil)
		return
	}
	a.before.Store(&fn)
}

// failWhile answers every request with status until the switch it returns
// is turned off.
func (a *aggServer) failWhile(status int) *atomic.Bool {
	on := new(atomic.Bool)
	on.Store(true)
	a.setBefore(func(w http.ResponseWriter, _ *http.Request) bool {
		if on.Load() {
			http.Error(w, http.StatusText(status), status)
			return true
		}
		return false
	})
	return on
}

func (a *aggServer) flush() *model.Snapshot {
	a.t.Helper()
	return garnertest.Flush(a.t, a.agg)
}

func (a *aggServer) pathCount(p string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.paths {
		if x == p {
			n++
		}
	}
	return n
}

type fwdFixture struct {
	f      *Forwarder
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func startForwarder(t *testing.T, opts Options) *fwdFixture {
	t.Helper()
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = 50 * time.Millisecond
	}
	if opts.ClientTimeout == 0 {
		opts.ClientTimeout = 2 * time.Second
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 3 * time.Second
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	f, err := New(opts, garnertest.QuietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fx := &fwdFixture{f: f, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() { _ = f.Run(ctx); close(fx.done) }()
	t.Cleanup(fx.stop)
	return fx
}

// stop ends Run (after its drain) and waits for it.
func (fx *fwdFixture) stop() {
	fx.cancel()
	<-fx.done
}

// counterSnapshot has n counters c.0 .. c.n-1 with value i+1 and one of each
// other type.
func counterSnapshot(n int) *model.Snapshot {
	s := &model.Snapshot{}
	for i := 0; i < n; i++ {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{Name: fmt.Sprintf("c.%d", i), Tags: []string{"k:v"}, Source: "10.0.0.9"}, Value: float64(i + 1)})
	}
	s.Gauges = []model.Gauge{{Series: model.Series{Name: "g"}, Value: 4.5}}
	s.Sets = []model.Set{{Series: model.Series{Name: "s"}, Members: map[string]struct{}{"a": {}, "b": {}}}}
	s.Timers = []model.Timer{{Series: model.Series{Name: "t"}, Values: []float64{1, 2, 3}, SampledCount: 6}}
	return s
}

// total sums what the aggregators flush: counter values, gauge values, set
// sizes, timer counts, and the number of series.
type total struct {
	counters, gauges, sets, timers float64
	series                         int
}

func sum(snaps ...*model.Snapshot) total {
	var t total
	for _, s := range snaps {
		for _, c := range s.Counters {
			t.counters += c.Value
		}
		for _, g := range s.Gauges {
			t.gauges += g.Value
		}
		for _, x := range s.Sets {
			t.sets += float64(len(x.Members))
		}
		for _, x := range s.Timers {
			t.timers += x.SampledCount
		}
		t.series += s.Len()
	}
	return t
}

// waitFor is the test-helper package's, under the name this file's tests use.
var waitFor = garnertest.WaitFor

func (fx *fwdFixture) sent() float64 {
	return testutil.ToFloat64(fx.f.m.sentItems.WithLabelValues("raw"))
}

func (fx *fwdFixture) droppedSeries() float64 {
	var n float64
	for _, c := range fx.f.m.droppedI {
		n += testutil.ToFloat64(c)
	}
	return n
}

func TestForwardProtocols(t *testing.T) {
	cases := []struct {
		name      string
		protocol  string
		serveV3   bool
		comp      string
		wantPath  string
		fallbacks float64
		counters  float64 // per flush; v2 counters are integers: 0.2 is sent as 0
	}{
		{name: "v3 zstd", protocol: "v3", serveV3: true, comp: "zstd", wantPath: "/v3/raw", counters: 210.2},
		{name: "v3 deflate", protocol: "v3", serveV3: true, comp: "zlib", wantPath: "/v3/raw", counters: 210.2},
		{name: "v2", protocol: "v2", serveV3: true, comp: "zlib", wantPath: "/v2/raw", counters: 210},
		{name: "v3 falls back to v2 on 404", protocol: "v3", serveV3: false, comp: "zstd", wantPath: "/v2/raw", fallbacks: 1, counters: 210},
		{name: "uncompressed", protocol: "v3", serveV3: true, comp: "none", wantPath: "/v3/raw", counters: 210.2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAggServer(t, tc.serveV3, nil)
			fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, Protocol: tc.protocol, CompressionType: tc.comp, MaxSeriesPerRequest: 7, Hostname: "fwd"})
			send := func() {
				snap := counterSnapshot(20)
				snap.Counters = append(snap.Counters, model.Counter{Series: model.Series{Name: "frac"}, Value: 0.2})
				if err := fx.f.SendMetrics(context.Background(), snap); err != nil {
					t.Fatal(err)
				}
			}
			send()
			waitFor(t, "delivery", 5*time.Second, func() bool { return fx.sent() == 24 })
			v3Before := a.pathCount("/v3/raw")
			send()
			waitFor(t, "delivery", 5*time.Second, func() bool { return fx.sent() == 2*24 })
			got := sum(a.flush())
			want := total{counters: 2 * tc.counters, gauges: 4.5, sets: 2, timers: 12, series: 24}
			if got != want {
				t.Fatalf("aggregator got %+v, want %+v", got, want)
			}
			if n := a.pathCount(tc.wantPath); n < 2*4 { // 24 series by 7 = 4 requests per flush
				t.Fatalf("%d requests to %s, want at least 8", n, tc.wantPath)
			}
			if n := testutil.ToFloat64(fx.f.m.fallbacks); n != tc.fallbacks {
				t.Fatalf("fallbacks = %v, want %v", n, tc.fallbacks)
			}
			if tc.fallbacks > 0 && a.pathCount("/v3/raw") != v3Before {
				t.Fatalf("%d requests to /v3/raw after the fallback; want v2 from then on", a.pathCount("/v3/raw")-v3Before)
			}
		})
	}
}

func TestRetriesAfter503(t *testing.T) {
	a := newAggServer(t, true, nil)
	var fails atomic.Int32
	a.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		if fails.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, UpstreamFailures: 10})
	if err := fx.f.SendMetrics(context.Background(), counterSnapshot(5)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery after two 503s", 5*time.Second, func() bool { return fx.sent() == 8 })
	if got := sum(a.flush()); got.counters != 15 || got.series != 8 {
		t.Fatalf("got %+v: want every series exactly once", got)
	}
	if r := testutil.ToFloat64(fx.f.m.retries); r != 2 {
		t.Fatalf("retries = %v, want 2", r)
	}
}

func TestRetryBudgetAndFastFail(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		fastFail bool
		budget   time.Duration
		reason   string
		maxTries int64
	}{
		{"5xx until the budget ends", http.StatusInternalServerError, false, 400 * time.Millisecond, reasonRetries, 20},
		{"no retries", http.StatusInternalServerError, false, -1, reasonRetries, 1},
		{"400 with fast-fail", http.StatusBadRequest, true, 10 * time.Second, reasonRejected, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAggServer(t, true, nil)
			a.failWhile(tc.status)
			fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, MaxRequestElapsedTime: tc.budget, FastFail: tc.fastFail, UpstreamFailures: 1000})
			_ = fx.f.SendMetrics(context.Background(), counterSnapshot(1))
			waitFor(t, "the drop", 5*time.Second, func() bool { return testutil.ToFloat64(fx.f.m.droppedI[tc.reason]) == 4 })
			if n := a.reqs.Load(); n > tc.maxTries {
				t.Fatalf("%d attempts, want at most %d", n, tc.maxTries)
			}
		})
	}
}

// TestUpstreamOutAndBack: with two upstreams, one failing is taken out, its
// series go to the other (counted), and it comes back after a probe.
func TestUpstreamOutAndBack(t *testing.T) {
	a, b := newAggServer(t, true, nil), newAggServer(t, true, nil)
	broken := a.failWhile(http.StatusBadGateway)
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL, b.srv.URL}, UpstreamFailures: 2, MaxRequestElapsedTime: 20 * time.Second})
	snap := counterSnapshot(200)
	if err := fx.f.SendMetrics(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "upstream a taken out", 5*time.Second, func() bool { return testutil.ToFloat64(fx.f.m.down) == 1 })
	// While a is out, a new flush goes entirely to b.
	if err := fx.f.SendMetrics(context.Background(), counterSnapshot(200)); err != nil {
		t.Fatal(err)
	}
	if r := testutil.ToFloat64(fx.f.m.rerouted); r == 0 {
		t.Fatal("no series counted as rerouted")
	}
	waitFor(t, "second flush on b", 5*time.Second, func() bool { return fx.sent() >= 203 })
	broken.Store(false)
	waitFor(t, "a back after a probe", 5*time.Second, func() bool { return testutil.ToFloat64(fx.f.m.up) == 1 })
	// The first flush's share of a was parked and is delivered now.
	waitFor(t, "everything delivered", 5*time.Second, func() bool { return fx.sent() == 2*203 })
	got := sum(a.flush(), b.flush())
	one := sum(snap)
	if got.counters != 2*one.counters || got.timers != 2*one.timers {
		t.Fatalf("got %+v, want twice %+v", got, one)
	}
	if d := fx.droppedSeries(); d != 0 {
		t.Fatalf("%v series dropped", d)
	}
}

func TestBufferFullDropsOldest(t *testing.T) {
	a := newAggServer(t, true, nil)
	a.failWhile(http.StatusServiceUnavailable)
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, UpstreamFailures: 1, MaxBufferSize: 1, ProbeInterval: time.Hour, CompressionType: "none", DrainTimeout: 300 * time.Millisecond})
	for i := 0; i < 5; i++ {
		_ = fx.f.SendMetrics(context.Background(), counterSnapshot(1))
		time.Sleep(20 * time.Millisecond)
	}
	// Every new batch pushes the previous one out: 4 dropped, the newest kept.
	waitFor(t, "drops", 5*time.Second, func() bool { return testutil.ToFloat64(fx.f.m.droppedB[reasonBufferFull]) == 4 })
	if q, in, _ := fx.f.upstreams()[0].pending(); q+in != 1 {
		t.Fatalf("%d batches held, want 1", q+in)
	}
}

// TestDrainAtShutdown: what is queued when Run's context ends is still sent.
func TestDrainAtShutdown(t *testing.T) {
	a := newAggServer(t, true, nil)
	var slow atomic.Bool
	slow.Store(true)
	a.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		if slow.Load() {
			time.Sleep(50 * time.Millisecond)
		}
		return false
	})
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, MaxRequests: 1, MaxSeriesPerRequest: 10})
	for i := 0; i < 3; i++ {
		_ = fx.f.SendMetrics(context.Background(), counterSnapshot(37))
	}
	_ = fx.f.SendEvent(context.Background(), &model.Event{Title: "bye"})
	fx.stop()
	if got := sum(a.flush()); got.series != 40 || got.counters != 3*37*38/2 || got.timers != 18 {
		t.Fatalf("after the drain the aggregator has %+v", got)
	}
	if d := fx.droppedSeries(); d != 0 {
		t.Fatalf("%v series dropped", d)
	}
	if a.pathCount("/v3/event") != 1 {
		t.Fatalf("event batches: %d", a.pathCount("/v3/event"))
	}
}

func TestEventsForwarded(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		t.Run(fmt.Sprintf("v3=%v", v3), func(t *testing.T) {
			a := newAggServer(t, v3, nil)
			fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}})
			for i := 0; i < 3; i++ {
				_ = fx.f.SendEvent(context.Background(), &model.Event{Title: fmt.Sprint("e", i), Text: "x"})
			}
			_ = fx.f.SendServiceCheck(context.Background(), &model.ServiceCheck{Name: "c"})
			if v3 {
				waitFor(t, "one event batch", 5*time.Second, func() bool { return testutil.ToFloat64(fx.f.m.sentItems.WithLabelValues("event")) == 4 })
				if a.pathCount("/v3/event") != 1 {
					t.Fatalf("/v3/event requests: %d", a.pathCount("/v3/event"))
				}
				return
			}
			waitFor(t, "three v2 events", 5*time.Second, func() bool { return a.pathCount("/v2/event") == 3 })
			if d := testutil.ToFloat64(fx.f.m.droppedI[reasonRejected]); d != 1 {
				t.Fatalf("service check dropped %v, want 1 (v2 has none)", d)
			}
		})
	}
}

func TestDynamicAndCustomHeaders(t *testing.T) {
	a := newAggServer(t, true, nil)
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, DynamicHeaders: []string{"tenant_id", "region"},
		CustomHeaders: map[string]string{"X-Static": "1", "Region": "static-wins"}})
	snap := &model.Snapshot{Counters: []model.Counter{
		{Series: model.Series{Name: "a", Tags: []string{"region:eu", "tenant_id:t1"}}, Value: 1},
		{Series: model.Series{Name: "b", Tags: []string{"tenant_id:t2"}}, Value: 1},
		{Series: model.Series{Name: "c", Tags: []string{"tenant_id:t1"}}, Value: 1},
	}}
	_ = fx.f.SendMetrics(context.Background(), snap)
	waitFor(t, "delivery", 5*time.Second, func() bool { return fx.sent() == 3 })
	a.mu.Lock()
	defer a.mu.Unlock()
	var tenants []string
	for _, h := range a.hdrs {
		if h.Get("X-Static") != "1" || h.Get("Region") != "static-wins" {
			t.Fatalf("headers %v", h)
		}
		tenants = append(tenants, h.Get("Tenant-Id"))
	}
	sort.Strings(tenants)
	// One request per distinct set of values: (t1, eu), (t1), (t2).
	if strings.Join(tenants, ",") != "t1,t1,t2" {
		t.Fatalf("want one request per set of header values, got tenants %v", tenants)
	}
}

// TestSetAuthorization: a new Authorization header (a bearer token file
// re-read on SIGHUP) is sent from the next request on; the other headers
// stay.
func TestSetAuthorization(t *testing.T) {
	a := newAggServer(t, true, nil)
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL},
		CustomHeaders: map[string]string{"X-Static": "1", "Authorization": "Bearer old"}})
	send := func(name string, want float64) {
		t.Helper()
		_ = fx.f.SendMetrics(context.Background(), &model.Snapshot{Counters: []model.Counter{{Series: model.Series{Name: name}, Value: 1}}})
		waitFor(t, "delivery", 5*time.Second, func() bool { return fx.sent() == want })
	}
	send("a", 1)
	fx.f.SetAuthorization("Bearer new")
	send("b", 2)
	a.mu.Lock()
	defer a.mu.Unlock()
	var got []string
	for _, h := range a.hdrs {
		if h.Get("X-Static") != "1" {
			t.Fatalf("custom header lost: %v", h)
		}
		got = append(got, h.Get("Authorization"))
	}
	if len(got) < 2 || got[0] != "Bearer old" || got[len(got)-1] != "Bearer new" {
		t.Fatalf("Authorization of the requests = %q; want Bearer old, then Bearer new", got)
	}
}

type fakeResolver struct {
	mu    sync.Mutex
	addrs []netip.Addr
}

func (r *fakeResolver) set(addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = nil
	for _, a := range addrs {
		r.addrs = append(r.addrs, netip.MustParseAddr(a))
	}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != "aggregators.test" {
		return nil, fmt.Errorf("no such host %q", host)
	}
	return append([]netip.Addr(nil), r.addrs...), nil
}

// twoAggServersOnOnePort runs two aggregators on one port of 127.0.0.1
// and 127.0.0.2, as two members of a tier behind one DNS name.
func twoAggServersOnOnePort(t *testing.T) (a, b *aggServer, port int) {
	t.Helper()
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l1.Addr().(*net.TCPAddr).Port
	l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		_ = l1.Close()
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	return newAggServer(t, true, l1), newAggServer(t, true, l2), port
}

// TestDNSUpstreams: a name that resolves to two addresses is two upstreams
// sharing the series; when one address goes, its share moves to the other.
func TestDNSUpstreams(t *testing.T) {
	a, b, port := twoAggServersOnOnePort(t)
	res := &fakeResolver{}
	res.set("127.0.0.1", "127.0.0.2")
	fx := startForwarder(t, Options{APIEndpoints: []string{fmt.Sprintf("http://aggregators.test:%d", port)}, DNSRefresh: 50 * time.Millisecond, Resolver: res})
	if n := len(fx.f.upstreams()); n != 2 {
		t.Fatalf("%d upstreams, want 2", n)
	}
	_ = fx.f.SendMetrics(context.Background(), counterSnapshot(100))
	waitFor(t, "delivery", 5*time.Second, func() bool { return fx.sent() == 103 })
	sa, sb := a.flush(), b.flush()
	if sa.Len() == 0 || sb.Len() == 0 || sa.Len()+sb.Len() != 103 {
		t.Fatalf("series split %d + %d, want both non-empty, 103 in all", sa.Len(), sb.Len())
	}
	res.set("127.0.0.2")
	waitFor(t, "re-resolution", 5*time.Second, func() bool { return len(fx.f.upstreams()) == 1 })
	_ = fx.f.SendMetrics(context.Background(), counterSnapshot(100))
	waitFor(t, "delivery", 5*time.Second, func() bool { return fx.sent() == 206 })
	if sa, sb := a.flush(), b.flush(); sa.Len() != 0 || sb.Len() != 103 {
		t.Fatalf("after 127.0.0.1 left: %d + %d series", sa.Len(), sb.Len())
	}
}

func TestDependencyCheck(t *testing.T) {
	a := newAggServer(t, true, nil)
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL, "http://127.0.0.1:1"}, ClientTimeout: 500 * time.Millisecond})
	deps := fx.f.Dependencies()
	if len(deps) != 2 {
		t.Fatalf("%d dependencies", len(deps))
	}
	if err := deps[0].Check(context.Background()); err != nil {
		t.Fatalf("reachable endpoint: %v", err)
	}
	if err := deps[1].Check(context.Background()); err == nil {
		t.Fatal("unreachable endpoint passes its check")
	}
}
