// Package forwarder is garner's forwarder mode: it takes the aggregator's
// snapshots (every [http-transport] flush-interval), splits the series over
// the upstream aggregators by rendezvous hashing of their series keys,
// encodes them (v3, or v2 for gostatsd), compresses and POSTs them, with
// retries, a bounded buffer per upstream and upstreams taken out of the
// choice while they fail.
//
// It is a backends.Backend (the flusher hands it every snapshot and event)
// and a backends.Runner: Run sends; SendMetrics and SendEvent never wait for
// the network. When Run's context ends it keeps sending what it holds for
// Options.DrainTimeout, then counts what is left as dropped and returns.
package forwarder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/metrics"
	"github.com/garner-metrics/garner/pkg/version"
	"github.com/garner-metrics/garner/proto/garnerpb"
)

// Name is the forwarder's name as a backend (in logs and backend metrics).
const Name = "forwarder"

// Options configures a Forwarder; the fields mirror config.Forward.
type Options struct {
	Endpoints        []string          // upstream base URLs, without trailing "/"
	Protocol         string            // "v3" (default) or "v2"
	Compression      string            // "zlib", "zstd" or "none"
	CompressionLevel int               // 0..9
	MaxRequests      int               // requests in flight, all upstreams together
	RetryBudget      time.Duration     // per batch from its creation; < 0 = one attempt
	ClientTimeout    time.Duration     // one request
	CustomHeaders    map[string]string // canonical names
	DynamicHeaders   []string          // tag names whose values become headers
	FastFail         bool              // drop on a 4xx other than 404, 408, 429
	DNSRefresh       time.Duration     // 0 = do not resolve endpoint names
	MaxBufferSize    int               // bytes per upstream
	MaxSeries        int               // series per request
	UpstreamFailures int               // failures in a row that take an upstream out
	ProbeInterval    time.Duration
	FlushInterval    time.Duration // how often events are batched and sent
	DrainTimeout     time.Duration // bound on sending what is held at shutdown
	Hostname         string        // this forwarder, in v3 batches
	// Resolver resolves endpoint names when DNSRefresh > 0; nil =
	// net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

func (o *Options) setDefaults() {
	if o.Protocol == "" {
		o.Protocol = "v3"
	}
	if o.Compression == "" {
		o.Compression = "zlib"
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 1000
	}
	if o.RetryBudget == 0 {
		o.RetryBudget = 30 * time.Second
	}
	if o.ClientTimeout <= 0 {
		o.ClientTimeout = 10 * time.Second
	}
	if o.MaxBufferSize <= 0 {
		o.MaxBufferSize = 64 << 20
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = 20000
	}
	if o.UpstreamFailures <= 0 {
		o.UpstreamFailures = 3
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 2 * time.Second
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
}

// Reasons a batch is dropped (the reason label).
const (
	reasonBufferFull = "buffer_full" // max-buffer-size reached: the oldest batch goes
	reasonExpired    = "expired"     // waited past its retry budget (upstream out)
	reasonRetries    = "retries"     // failed until its retry budget ran out
	reasonRejected   = "rejected"    // a 4xx with fast-fail, or not convertible to v2
	reasonShutdown   = "shutdown"    // still unsent when the drain timeout ended
)

var dropReasons = []string{reasonBufferFull, reasonExpired, reasonRetries, reasonRejected, reasonShutdown}

// maxPendingEvents bounds the events and service checks waiting for the next
// event batch.
const maxPendingEvents = 10000

// Forwarder sends snapshots and events to the upstream aggregators. Its
// methods are safe for concurrent use.
type Forwarder struct {
	opts      Options
	log       logrus.FieldLogger
	comp      *compressor
	sem       chan struct{}
	noRetry   bool
	userAgent string
	m         fwdMetrics

	mu        sync.Mutex
	endpoints []*endpoint
	all       map[*upstream]struct{} // active and retired, until drained
	active    atomic.Pointer[[]*upstream]
	runCtx    context.Context // set by Run: upstreams started later use it

	wg       sync.WaitGroup // upstream loops, requests, probes
	draining atomic.Bool

	encMu  sync.Mutex // SendMetrics / event batching state
	enc    encoder
	raw    []byte
	keyBuf []byte
	parts  map[partKey]*selection
	hdrs   map[string]http.Header

	evMu   sync.Mutex
	events []*metrics.Event
	checks []*metrics.ServiceCheck
}

var (
	_ backends.Backend            = (*Forwarder)(nil)
	_ backends.Runner             = (*Forwarder)(nil)
	_ backends.ServiceCheckSender = (*Forwarder)(nil)
)

// endpoint is one api-endpoint with the upstreams it stands for now.
type endpoint struct {
	raw  string
	url  *url.URL
	host string // to resolve ("" when the host is an address or resolution is off)
	port string
	ups  []*upstream
}

type fwdMetrics struct {
	batches    *prometheus.CounterVec
	sentItems  *prometheus.CounterVec
	sentBytes  prometheus.Counter
	droppedB   map[string]prometheus.Counter
	droppedI   map[string]prometheus.Counter
	retries    prometheus.Counter
	duration   prometheus.Histogram
	rerouted   prometheus.Counter
	down, up   prometheus.Counter
	probes     *prometheus.CounterVec
	fallbacks  prometheus.Counter
	evDropped  prometheus.Counter
	dnsFailure prometheus.Counter
}

// New builds a forwarder. Endpoint names are resolved here once when
// DNSRefresh is set (bounded by ClientTimeout); nothing is sent before Run.
func New(opts Options, log logrus.FieldLogger, reg prometheus.Registerer) (*Forwarder, error) {
	opts.setDefaults()
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("no api-endpoint")
	}
	comp, err := newCompressor(opts.Compression, opts.CompressionLevel)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		opts:      opts,
		log:       log,
		comp:      comp,
		sem:       make(chan struct{}, opts.MaxRequests),
		noRetry:   opts.RetryBudget < 0,
		userAgent: "garner/" + version.Get().Version + " (forwarder)",
		all:       map[*upstream]struct{}{},
		parts:     map[partKey]*selection{},
		hdrs:      map[string]http.Header{},
	}
	if err := f.newMetrics(reg); err != nil {
		return nil, err
	}
	for _, raw := range opts.Endpoints {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("api-endpoint %q: want an http:// or https:// base URL", raw)
		}
		ep := &endpoint{raw: raw, url: u, port: u.Port()}
		if ep.port == "" {
			ep.port = "80"
			if u.Scheme == "https" {
				ep.port = "443"
			}
		}
		if _, err := netip.ParseAddr(u.Hostname()); err != nil && opts.DNSRefresh > 0 {
			ep.host = u.Hostname()
		}
		f.endpoints = append(f.endpoints, ep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.ClientTimeout)
	defer cancel()
	f.mu.Lock()
	for _, ep := range f.endpoints {
		f.resolveLocked(ctx, ep)
	}
	f.publishLocked()
	f.mu.Unlock()
	return f, nil
}

func (f *Forwarder) newMetrics(reg prometheus.Registerer) error {
	droppedB := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_batches_total",
		Help: "Forwarder requests given up, by reason: buffer_full (max-buffer-size), expired (waited past the retry budget while the upstream was out), retries (failed until the retry budget ran out), rejected (4xx with fast-fail, or not sendable as v2), shutdown (unsent at the end of the drain).",
	}, []string{"reason"})
	droppedI := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_forwarder_dropped_series_total",
		Help: "Series (and events) in the dropped forwarder requests, by reason.",
	}, []string{"reason"})
	f.m = fwdMetrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_forwarder_batches_total", Help: "Forwarder requests built, by kind (raw, event).",
		}, []string{"kind"}),
		sentItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_forwarder_sent_series_total", Help: "Series (kind=raw) and events (kind=event) accepted by an upstream.",
		}, []string{"kind"}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_sent_bytes_total", Help: "Request body bytes (compressed) accepted by an upstream."}),
		droppedB:  map[string]prometheus.Counter{},
		droppedI:  map[string]prometheus.Counter{},
		retries:   prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_retries_total", Help: "Forwarder request attempts after the first."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "garner_forwarder_request_duration_seconds", Help: "Duration of one forwarder request attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		rerouted:   prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_rerouted_series_total", Help: "Series sent to their next choice because their first-choice upstream was out."}),
		down:       prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_upstream_down_total", Help: "Times an upstream was taken out of the choice after upstream-failures failures in a row."}),
		up:         prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_upstream_up_total", Help: "Times an upstream came back into the choice after a successful probe."}),
		probes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_forwarder_probes_total", Help: "Probes of upstreams that were out, by result (up, down)."}, []string{"result"}),
		fallbacks:  prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_protocol_fallbacks_total", Help: "Upstreams that answered 404 to /v3 and are spoken to in v2 since."}),
		evDropped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_dropped_events_total", Help: "Events and service checks dropped before batching: too many waiting."}),
		dnsFailure: prometheus.NewCounter(prometheus.CounterOpts{Name: "garner_forwarder_dns_failures_total", Help: "Failed resolutions of an api-endpoint name (the previous addresses are kept)."}),
	}
	for _, r := range dropReasons {
		f.m.droppedB[r] = droppedB.WithLabelValues(r)
		f.m.droppedI[r] = droppedI.WithLabelValues(r)
	}
	for _, k := range []string{"raw", "event"} {
		f.m.batches.WithLabelValues(k)
		f.m.sentItems.WithLabelValues(k)
	}
	upstreams := func(up bool) func() float64 {
		return func() float64 {
			n := 0
			for _, u := range f.upstreams() {
				if u.up.Load() == up {
					n++
				}
			}
			return float64(n)
		}
	}
	cs := []prometheus.Collector{
		f.m.batches, f.m.sentItems, f.m.sentBytes, droppedB, droppedI, f.m.retries, f.m.duration, f.m.rerouted,
		f.m.down, f.m.up, f.m.probes, f.m.fallbacks, f.m.evDropped, f.m.dnsFailure,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "garner_forwarder_upstreams", Help: "Upstreams by state.", ConstLabels: prometheus.Labels{"state": "up"}}, upstreams(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "garner_forwarder_upstreams", Help: "Upstreams by state.", ConstLabels: prometheus.Labels{"state": "down"}}, upstreams(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "garner_forwarder_buffered_bytes", Help: "Request bytes queued or in flight, all upstreams."}, func() float64 {
			n := 0
			for _, u := range f.allUpstreams() {
				_, _, b := u.pending()
				n += b
			}
			return float64(n)
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("cannot register forwarder metrics: %w", err)
		}
	}
	return nil
}

// Name implements backends.Backend.
func (f *Forwarder) Name() string { return Name }

func (f *Forwarder) upstreams() []*upstream {
	if p := f.active.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *Forwarder) allUpstreams() []*upstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*upstream, 0, len(f.all))
	for u := range f.all {
		out = append(out, u)
	}
	return out
}

// resolveLocked sets ep.ups from the endpoint's current addresses. On a
// failed resolution the previous upstreams stay; without any, the endpoint
// is one upstream that the HTTP client resolves itself.
func (f *Forwarder) resolveLocked(ctx context.Context, ep *endpoint) {
	type want struct {
		id  string
		pin netip.AddrPort
	}
	var wants []want
	if ep.host != "" {
		addrs, err := f.opts.Resolver.LookupNetIP(ctx, "ip", ep.host)
		if err != nil || len(addrs) == 0 {
			f.m.dnsFailure.Inc()
			if err == nil {
				err = errors.New("no addresses")
			}
			f.log.WithError(err).WithField("api_endpoint", ep.raw).Warn("cannot resolve api-endpoint; keeping its previous addresses")
			if len(ep.ups) > 0 {
				return
			}
		}
		for _, a := range addrs {
			p, perr := parsePort(ep.port)
			if perr != nil {
				continue
			}
			ap := netip.AddrPortFrom(a.Unmap(), p)
			id := ep.url.Scheme + "://" + ap.String() + ep.url.EscapedPath()
			wants = append(wants, want{id: id, pin: ap})
		}
		slices.SortFunc(wants, func(a, b want) int { return strings.Compare(a.id, b.id) })
	}
	if len(wants) == 0 {
		wants = []want{{id: ep.raw}}
	}
	old := map[string]*upstream{}
	for _, u := range ep.ups {
		old[u.id] = u
	}
	var ups []*upstream
	for _, w := range wants {
		if u, ok := old[w.id]; ok {
			ups = append(ups, u)
			delete(old, w.id)
			continue
		}
		u := newUpstream(f, ep.raw, w.id, ep.url, w.pin)
		ups = append(ups, u)
		f.all[u] = struct{}{}
		f.startLocked(u)
		if ep.ups != nil {
			f.log.WithFields(logrus.Fields{"api_endpoint": ep.raw, "upstream": u.id}).Info("new upstream address")
		}
	}
	for _, u := range old {
		u.mu.Lock()
		u.retired = true
		u.mu.Unlock()
		u.signal()
		f.log.WithFields(logrus.Fields{"api_endpoint": ep.raw, "upstream": u.id}).Info("upstream address gone: sending what it holds, then forgetting it")
	}
	ep.ups = ups
}

func parsePort(s string) (uint16, error) {
	var p uint16
	_, err := fmt.Sscan(s, &p)
	return p, err
}

// publishLocked makes the current upstreams the routing choice.
func (f *Forwarder) publishLocked() {
	var ups []*upstream
	for _, ep := range f.endpoints {
		ups = append(ups, ep.ups...)
	}
	slices.SortFunc(ups, func(a, b *upstream) int { return strings.Compare(a.id, b.id) })
	ups = slices.CompactFunc(ups, func(a, b *upstream) bool { return a.id == b.id })
	f.active.Store(&ups)
}

// startLocked starts u's loop when Run is running (else Run starts it).
func (f *Forwarder) startLocked(u *upstream) {
	if f.runCtx == nil || u.started.Swap(true) {
		return
	}
	f.wg.Add(1)
	go u.run(f.runCtx)
}

// forget removes a retired upstream that has nothing left to send.
func (f *Forwarder) forget(u *upstream) {
	f.mu.Lock()
	delete(f.all, u)
	f.mu.Unlock()
}

func (f *Forwarder) wakeAll() {
	for _, u := range f.allUpstreams() {
		u.signal()
	}
}

func (f *Forwarder) dropped(b *batch, reason string) {
	f.m.droppedB[reason].Inc()
	f.m.droppedI[reason].Add(float64(b.items))
}

func (f *Forwarder) sentItems(b *batch) {
	f.m.sentItems.WithLabelValues(b.kind.String()).Add(float64(b.items))
}

// newBatch builds a batch (deadline from now) from raw bytes.
func (f *Forwarder) newBatch(kind batchKind, v2 bool, raw []byte, items int, h http.Header) (*batch, error) {
	body, enc, err := f.comp.compress(raw, v2)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	deadline := now.Add(f.opts.RetryBudget)
	if f.noRetry {
		deadline = now.Add(f.opts.FlushInterval) // one attempt, which may wait one interval for a slot
	}
	f.m.batches.WithLabelValues(kind.String()).Inc()
	return &batch{kind: kind, v2: v2, body: body, enc: enc, header: h, items: items, created: now, deadline: deadline}, nil
}

func newBatchID() []byte {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return id
}

// partKey is one request's destination: upstream and dynamic header values.
type partKey struct {
	up  *upstream
	hdr string
}

// SendMetrics splits the snapshot over the upstreams, encodes, compresses
// and queues it. It never waits for the network.
func (f *Forwarder) SendMetrics(_ context.Context, snap *metrics.Snapshot) error {
	if snap.Len() == 0 {
		return nil
	}
	ups := f.upstreams()
	if len(ups) == 0 {
		return errors.New("no upstream")
	}
	hashes := make([]uint64, len(ups))
	ok := make([]bool, len(ups))
	anyUp, allUp := false, true
	for i, u := range ups {
		hashes[i] = u.hash
		ok[i] = u.up.Load()
		anyUp = anyUp || ok[i]
		allUp = allUp && ok[i]
	}
	if !anyUp {
		ok = nil // every upstream is out: keep the first choices
	}

	f.encMu.Lock()
	defer f.encMu.Unlock()
	for _, p := range f.parts {
		p.reset()
	}
	assign := func(s *metrics.Series) *selection {
		var h uint64
		h, f.keyBuf = seriesHash(f.keyBuf, s)
		c := choose(h, hashes, ok)
		if !allUp && anyUp && choose(h, hashes, nil) != c {
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
		if len(snap.Sets[i].Members) == 0 {
			continue
		}
		p := assign(&snap.Sets[i].Series)
		p.sets = append(p.sets, int32(i))
	}
	for i := range snap.Timers {
		if len(snap.Timers[i].Values) == 0 {
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
		p.split(f.opts.MaxSeries, func(sel *selection) {
			v2 := k.up.v2.Load()
			if v2 {
				f.raw = f.enc.appendV2(f.raw[:0], snap, sel)
			} else {
				f.raw = f.enc.appendV3(f.raw[:0], newBatchID(), f.opts.Hostname, snap, sel)
			}
			b, err := f.newBatch(kindRaw, v2, f.raw, sel.len(), h)
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
func (f *Forwarder) headerKey(s *metrics.Series) string {
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

// SendEvent queues an event for the next event batch (every flush-interval).
func (f *Forwarder) SendEvent(_ context.Context, e *metrics.Event) error {
	f.evMu.Lock()
	defer f.evMu.Unlock()
	if len(f.events)+len(f.checks) >= maxPendingEvents {
		f.m.evDropped.Inc()
		return nil
	}
	f.events = append(f.events, e)
	return nil
}

// SendServiceCheck queues a service check for the next event batch. v2
// upstreams have no service checks: those are dropped and counted.
func (f *Forwarder) SendServiceCheck(_ context.Context, c *metrics.ServiceCheck) error {
	f.evMu.Lock()
	defer f.evMu.Unlock()
	if len(f.events)+len(f.checks) >= maxPendingEvents {
		f.m.evDropped.Inc()
		return nil
	}
	f.checks = append(f.checks, c)
	return nil
}

// flushEvents routes the waiting events and service checks: v3 upstreams
// get one /v3/event batch each, v2 upstreams one /v2/event per event.
func (f *Forwarder) flushEvents() {
	f.evMu.Lock()
	events, checks := f.events, f.checks
	f.events, f.checks = nil, nil
	f.evMu.Unlock()
	if len(events)+len(checks) == 0 {
		return
	}
	ups := f.upstreams()
	if len(ups) == 0 {
		return
	}
	hashes := make([]uint64, len(ups))
	ok := make([]bool, len(ups))
	anyUp := false
	for i, u := range ups {
		hashes[i], ok[i] = u.hash, u.up.Load()
		anyUp = anyUp || ok[i]
	}
	if !anyUp {
		ok = nil
	}
	pick := func(parts ...string) int {
		var h uint64
		f.encMu.Lock()
		h, f.keyBuf = seriesHash(f.keyBuf, &metrics.Series{Name: strings.Join(parts, "\x00")})
		f.encMu.Unlock()
		return choose(h, hashes, ok)
	}
	evBy := map[int][]*metrics.Event{}
	for _, e := range events {
		i := pick(e.Title, e.Hostname, e.AggregationKey, e.Source)
		evBy[i] = append(evBy[i], e)
	}
	scBy := map[int][]*metrics.ServiceCheck{}
	for _, c := range checks {
		i := pick(c.Name, c.Hostname, c.Source)
		scBy[i] = append(scBy[i], c)
	}
	for i, u := range ups {
		evs, scs := evBy[i], scBy[i]
		if len(evs)+len(scs) == 0 {
			continue
		}
		if u.v2.Load() {
			for _, e := range evs {
				if b, err := f.newBatch(kindEvent, true, appendEvent(nil, e), 1, nil); err == nil {
					u.enqueue(b)
				}
			}
			if len(scs) > 0 {
				f.dropped(&batch{items: len(scs)}, reasonRejected)
			}
			continue
		}
		raw := appendEventBatch(nil, newBatchID(), evs, scs)
		if b, err := f.newBatch(kindEvent, false, raw, len(evs)+len(scs), nil); err == nil {
			u.enqueue(b)
		}
	}
}

// toV2 re-encodes a v3 batch for v2, in place. An event batch becomes one
// request per event: b carries the first, the others are returned. Service
// checks cannot go in v2 and are dropped and counted.
func (f *Forwarder) toV2(b *batch) ([]*batch, error) {
	raw, err := decompress(b.body, b.enc)
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
		body, enc, err := f.comp.compress(e.appendV2(nil, snap, sel), true)
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
		f.dropped(&batch{items: len(m.ServiceChecks)}, reasonRejected)
	}
	if len(m.Events) == 0 {
		return nil, errors.New("v2 has no service checks: nothing left to send")
	}
	var out []*batch
	for i, ev := range m.Events {
		e := &metrics.Event{
			Title: ev.Title, Text: ev.Text, DateHappened: ev.DateHappened, Hostname: ev.Hostname,
			AggregationKey: ev.AggregationKey, SourceTypeName: ev.SourceTypeName, Tags: ev.Tags, Source: ev.SourceIp,
			Priority: metrics.Priority(ev.Priority), AlertType: metrics.AlertType(ev.AlertType),
		}
		body, enc, err := f.comp.compress(appendEvent(nil, e), true)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			b.body, b.enc, b.v2, b.items = body, enc, true, 1
			continue
		}
		out = append(out, &batch{kind: kindEvent, v2: true, body: body, enc: enc, items: 1, created: b.created, deadline: b.deadline})
	}
	return out, nil
}

// snapshotOfV3 turns a decoded v3 batch back into a snapshot with every
// series selected.
func snapshotOfV3(m *garnerpb.RawBatch) (*metrics.Snapshot, *selection) {
	s := &metrics.Snapshot{}
	sel := &selection{}
	for i, c := range m.Counters {
		s.Counters = append(s.Counters, metrics.Counter{Series: metrics.Series{Name: c.Name, Tags: c.Tags, Source: c.Source}, Value: c.Value})
		sel.counters = append(sel.counters, int32(i))
	}
	for i, g := range m.Gauges {
		s.Gauges = append(s.Gauges, metrics.Gauge{Series: metrics.Series{Name: g.Name, Tags: g.Tags, Source: g.Source}, Value: g.Value})
		sel.gauges = append(sel.gauges, int32(i))
	}
	for i, x := range m.Sets {
		ms := make(map[string]struct{}, len(x.Members))
		for _, mm := range x.Members {
			ms[mm] = struct{}{}
		}
		s.Sets = append(s.Sets, metrics.Set{Series: metrics.Series{Name: x.Name, Tags: x.Tags, Source: x.Source}, Members: ms})
		sel.sets = append(sel.sets, int32(i))
	}
	for i, t := range m.Timers {
		s.Timers = append(s.Timers, metrics.Timer{Series: metrics.Series{Name: t.Name, Tags: t.Tags, Source: t.Source}, Values: t.Values, SampledCount: t.SampleCount})
		sel.timers = append(sel.timers, int32(i))
	}
	return s, sel
}

// Run sends until ctx ends, then keeps sending what it holds for
// DrainTimeout (retrying even upstreams that are out), counts what is left
// as dropped, and returns nil once every goroutine it started has exited.
func (f *Forwarder) Run(ctx context.Context) error {
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	f.mu.Lock()
	f.runCtx = sendCtx
	for u := range f.all {
		f.startLocked(u)
	}
	f.mu.Unlock()

	events := time.NewTicker(f.opts.FlushInterval)
	defer events.Stop()
	probes := time.NewTicker(f.opts.ProbeInterval)
	defer probes.Stop()
	var dns <-chan time.Time
	if f.opts.DNSRefresh > 0 {
		t := time.NewTicker(f.opts.DNSRefresh)
		defer t.Stop()
		dns = t.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-events.C:
			f.flushEvents()
		case <-probes.C:
			f.probeDown(sendCtx)
		case <-dns:
			f.refreshDNS(sendCtx)
		}
	}

	// Drain: send what is held, every upstream allowed, until empty or the
	// timeout. Events may still arrive from the event dispatcher meanwhile.
	f.draining.Store(true)
	f.wakeAll()
	start := time.Now()
	deadline := start.Add(f.opts.DrainTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		f.flushEvents()
		if f.empty() && time.Since(start) >= 200*time.Millisecond {
			break
		}
		<-tick.C
	}
	cancelSend()
	f.wg.Wait()
	for _, u := range f.allUpstreams() {
		u.mu.Lock()
		for _, b := range u.queue {
			f.dropped(b, reasonShutdown)
		}
		u.queue, u.bytes = nil, 0
		u.mu.Unlock()
	}
	return nil
}

// empty reports whether nothing is queued, in flight or waiting to be
// batched.
func (f *Forwarder) empty() bool {
	f.evMu.Lock()
	n := len(f.events) + len(f.checks)
	f.evMu.Unlock()
	if n > 0 {
		return false
	}
	for _, u := range f.allUpstreams() {
		if q, in, _ := u.pending(); q+in > 0 {
			return false
		}
	}
	return true
}

// probeDown probes every upstream that is out (one probe each at a time).
func (f *Forwarder) probeDown(ctx context.Context) {
	for _, u := range f.upstreams() {
		if !u.up.Load() && u.probing.CompareAndSwap(false, true) {
			f.wg.Add(1)
			go u.probe(ctx)
		}
	}
}

// refreshDNS re-resolves the endpoints that are names.
func (f *Forwarder) refreshDNS(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, f.opts.ClientTimeout)
	defer cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ep := range f.endpoints {
		if ep.host != "" {
			f.resolveLocked(rctx, ep)
		}
	}
	f.publishLocked()
}

// Dependency is one api-endpoint for the health registry.
type Dependency struct {
	Name  string // the api-endpoint
	Check func(ctx context.Context) error
}

// Dependencies returns one check per api-endpoint: it passes when one of
// the endpoint's upstreams accepted a request recently (within three
// flush intervals plus the client timeout), else when one answers a probe
// now.
func (f *Forwarder) Dependencies() []Dependency {
	var out []Dependency
	for _, ep := range f.endpoints {
		out = append(out, Dependency{Name: ep.raw, Check: func(ctx context.Context) error { return f.checkEndpoint(ctx, ep) }})
	}
	return out
}

func (f *Forwarder) checkEndpoint(ctx context.Context, ep *endpoint) error {
	f.mu.Lock()
	ups := append([]*upstream(nil), ep.ups...)
	f.mu.Unlock()
	recent := time.Now().Add(-(3*f.opts.FlushInterval + f.opts.ClientTimeout)).UnixNano()
	for _, u := range ups {
		if u.lastOK.Load() >= recent {
			return nil
		}
	}
	var errs []error
	for _, u := range ups {
		err := u.ping(ctx)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
