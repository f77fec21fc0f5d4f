// Package exporter is a drop-in for prometheus/statsd_exporter: a
// Prometheus scrape endpoint on its own listener, shaped by a
// statsd_exporter mapping file (pkg/mapping).
//
// # What each statsd type becomes
//
//   - counter → a Prometheus counter, the running total since the series
//     appeared (sample rates applied). A negative increment is dropped and
//     counted, as statsd_exporter refuses negative counter samples.
//   - gauge → a gauge with the aggregator's value: +N / -N deltas apply to
//     the current value (gauge-deltas).
//   - timer (ms, h, d) → a summary or histogram as the mapping's
//     observer_type says (default summary), each ms value observed in
//     seconds (÷ 1000), h and d values as sent (statsd_exporter's rule;
//     model.Timer.Unscaled), then × the mapping's scale. A value sent with
//     @rate is observed int(1/rate) times, as statsd_exporter does (at most
//     10000 times; the rest counted in
//     garner_exporter_capped_observations_total).
//     With timer-aggregation = "histogram" a timer reaches the exporter as
//     an exponential histogram, not values: each of its values is observed
//     as estimated from its bucket (pkg/histogram's AppendValues: within the
//     bucket's relative width, 2.19% at the default histogram-max-buckets,
//     the lowest and highest exact). _count and the bucket a value falls in
//     are therefore exact except within that width of a bucket bound, and
//     _sum and quantiles are within it; counted in
//     garner_exporter_estimated_observations_total.
//     A histogram without native buckets is the exporter's own
//     (classicHist); summaries and native histograms are client_golang's.
//   - set → a gauge of the unique members seen in the last flush interval
//     (statsd_exporter drops sets); matched by match_metric_type: gauge.
//
// DogStatsD tags k:v become labels (key escaped like a name); a tag without
// a value, or with an empty key or value, is skipped and counted, as
// statsd_exporter skips it. Mapping labels win over tags unless the mapping
// sets honor_labels. The sender's address is not a label.
//
// # Where it differs on purpose
//
// A name seen with a second type (a counter and a gauge both mapped to
// "x", say) keeps the first: the other series is dropped, counted
// (reason="type_conflict") and logged at a bounded rate; /metrics never
// answers 500 for it. A changed label set is simply another series.
// Updates arrive once per flush interval, not per line.
//
// # Expiry
//
// A series whose mapping has a ttl leaves the exposition once it has had no
// samples for that long: counters with a non-zero increment, timers with
// values, sets with members, and gauges present in the flush (garner's
// aggregator repeats an idle gauge until expiry-interval-gauge, so a
// gauge's ttl counts from then). ttl 0 keeps a series for good, bounded by
// MaxSeries.
package exporter

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/mapping"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/tlsconf"
	"github.com/garner-metrics/garner/pkg/web"
)

// Name is the backend's name in the backends key.
const Name = "exporter"

// Exporter is the backend. Safe for concurrent use: the flusher's
// SendMetrics, scrapes and ReloadMapping may run at once.
type Exporter struct {
	backends.NoEvents // events have no place in a scrape

	opts   Options
	log    logrus.FieldLogger
	m      *selfMetrics
	mapper atomic.Pointer[mapping.Mapper]
	gen    atomic.Uint64 // mapper generation, bumped by every (re)load
	ln     net.Listener
	srv    *http.Server
	scrape http.Handler // the telemetry path's handler
	spare  atomic.Pointer[scrapeBuf]
	clash  *ratelog.Limiter
	tagLog *ratelog.Limiter

	mu sync.Mutex
	st state
}

var (
	_ backends.Backend = (*Exporter)(nil)
	_ backends.Runner  = (*Exporter)(nil)
)

// New loads the mapping file (refusing a bad one, the error naming the
// line) and binds the listener; Run serves it.
func New(opts Options, deps backends.Deps) (*Exporter, error) {
	if opts.TelemetryPath == "" || opts.TelemetryPath[0] != '/' {
		return nil, fmt.Errorf("exporter.telemetry-path %q must start with /", opts.TelemetryPath)
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prom.NewRegistry()
	}
	e := &Exporter{opts: opts, log: deps.Log, m: newSelfMetrics(reg), clash: ratelog.Every(time.Minute, 5), tagLog: ratelog.Every(time.Minute, 5)}
	if e.log == nil {
		e.log = logrus.New()
	}
	e.st.init()
	if err := e.ReloadMapping(opts.MappingConfig); err != nil {
		return nil, err
	}
	var tc *tls.Config
	if opts.TLS.Enabled() {
		var err error
		if tc, err = tlsconf.ServerConfig(opts.TLS, e.log); err != nil {
			return nil, fmt.Errorf("%s: %w", tlsKey(err), err)
		}
	}
	ln, err := net.Listen("tcp", opts.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("exporter.listen-address %q: %w", opts.ListenAddress, err)
	}
	if tc != nil {
		ln = e.tlsListener(ln, tc, reg)
	}
	e.ln = ln
	mux := http.NewServeMux()
	e.scrape = e.serveMetrics(promhttp.HandlerFor(gatherFunc(e.gather), promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      scrapeErrorLog{e},
	}))
	mux.Handle(opts.TelemetryPath, e.scrape)
	if opts.TelemetryPath != "/" {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, "garner statsd_exporter-compatible endpoint: %s\n", opts.TelemetryPath)
		})
	}
	e.srv = &http.Server{Handler: e.authorize(mux), ReadHeaderTimeout: 10 * time.Second}
	e.log.WithFields(logrus.Fields{"http_server": "exporter", "address": ln.Addr().String(), "path": opts.TelemetryPath,
		"tls": tc != nil, "token": opts.Token != ""}).Info("serving http")
	return e, nil
}

// tlsKey is the key of the file a tlsconf error is about.
func tlsKey(err error) string {
	var fe *tlsconf.FileError
	if errors.As(err, &fe) {
		switch fe.Field {
		case tlsconf.FieldKey:
			return "exporter.tls-key-file"
		case tlsconf.FieldClientCA:
			return "exporter.tls-client-ca-file"
		}
	}
	return "exporter.tls-cert-file"
}

// tlsListener serves TLS on ln: a failed handshake is counted in
// garner_tls_handshake_errors_total{listener="exporter",reason} and logged
// at a bounded rate.
func (e *Exporter) tlsListener(ln net.Listener, tc *tls.Config, reg prom.Registerer) net.Listener {
	vec := tlsconf.HandshakeErrors(reg)
	for _, r := range tlsconf.Reasons {
		vec.WithLabelValues(Name, r)
	}
	lim := ratelog.Every(time.Minute, 10)
	log := e.log.WithField("http_server", Name)
	return tlsconf.Listener(ln, tc, func(c net.Conn, err error) {
		reason := tlsconf.HandshakeReason(err)
		vec.WithLabelValues(Name, reason).Inc()
		if l := lim.Entry(log); l != nil {
			l.WithError(err).WithFields(logrus.Fields{"remote": c.RemoteAddr().String(), "reason": reason}).
				Warn("tls handshake with a scraper failed; closing it")
		}
	})
}

// authorize lets a request through when it carries the bearer token (or
// no token is configured); else 401 with garner's JSON error body.
func (e *Exporter) authorize(next http.Handler) http.Handler {
	if e.opts.Token == "" {
		return next
	}
	token := []byte(e.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		const prefix = "Bearer "
		if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) ||
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(prefix):])), token) != 1 {
			e.m.unauthorized.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="garner exporter"`)
			web.WriteError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs \"Authorization: Bearer <exporter.token>\"")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Addr is the address the scrape endpoint listens on.
func (e *Exporter) Addr() string { return e.ln.Addr().String() }

// Name implements backends.Backend.
func (e *Exporter) Name() string { return Name }

// Run serves scrapes until ctx ends, then shuts the server down (waiting
// up to 5s for scrapes in progress). It returns nil after a clean stop.
func (e *Exporter) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Serve(e.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("exporter: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("exporter: %w", err)
	}
	return nil
}

// Close closes the listener (for an Exporter whose Run never started).
func (e *Exporter) Close() error {
	err := e.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ReloadMapping loads the mapping file at path ("" = no mappings) and
// swaps it in. A file that does not load keeps the mappings in force; the
// error says why and where. Series already exposed keep their state; each
// garner series is mapped again at its next flush.
func (e *Exporter) ReloadMapping(path string) error {
	var m *mapping.Mapper
	if path != "" {
		var warnings []string
		var err error
		m, warnings, err = mapping.Load(path, e.opts.MappingCacheSize)
		for _, w := range warnings {
			e.log.WithField("file", path).Warn("mapping file: " + w)
		}
		if err != nil {
			e.m.reloads.WithLabelValues("error").Inc()
			return fmt.Errorf("exporter.mapping-config: %w", err)
		}
		e.log.WithFields(logrus.Fields{"file": path, "mappings": len(m.Mappings())}).Info("mapping file loaded")
	}
	e.mapper.Store(m)
	e.gen.Add(1)
	e.m.reloads.WithLabelValues("ok").Inc()
	e.m.mappings.Set(float64(len(m.Mappings())))
	return nil
}

// SendMetrics applies one flush to the exposed series, then expires the
// series idle past their ttl.
func (e *Exporter) SendMetrics(_ context.Context, s *model.Snapshot) error {
	now := s.Time
	if now.IsZero() {
		now = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apply(s, now)
	e.expire(now)
	e.m.series.Set(float64(e.st.nseries))
	return nil
}

type scrapeErrorLog struct{ e *Exporter }

func (l scrapeErrorLog) Println(v ...any) {
	if ok, n := l.e.clash.Allow(); ok {
		l.e.log.WithField(ratelog.SuppressedField, n).Warn(fmt.Sprint(v...))
	}
}

type selfMetrics struct {
	dropped      *prom.CounterVec
	tags         prom.Counter
	reloads      *prom.CounterVec
	mappings     prom.Gauge
	series       prom.Gauge
	estimated    prom.Counter
	capped       prom.Counter
	unauthorized prom.Counter
	scrapes      map[string]prom.Counter // by format
}

// The reasons of garner_exporter_dropped_samples_total.
const (
	reasonTypeConflict  = "type_conflict"  // the name is exposed with another type
	reasonReservedLabel = "reserved_label" // a le label on a histogram, quantile on a summary
	reasonMaxSeries     = "max_series"     // MaxSeries reached
	reasonNegative      = "negative_counter"
	reasonNonFinite     = "nonfinite_counter"   // NaN or ±Inf counter increment
	reasonDropAction    = "action_drop"         // a mapping with action: drop (wanted, not lost)
	reasonPastGauge     = "past_interval_gauge" // a gauge of a past interval (timestamps = "honor")
)

func newSelfMetrics(reg prom.Registerer) *selfMetrics {
	m := &selfMetrics{
		mappings: prom.NewGauge(prom.GaugeOpts{Name: "garner_exporter_mappings", Help: "Mappings in the loaded mapping file."}),
		series:   prom.NewGauge(prom.GaugeOpts{Name: "garner_exporter_series", Help: "Series the exporter's endpoint exposes."}),
	}
	reg.MustRegister(m.mappings, m.series)
	for _, c := range []struct {
		dst        *prom.Counter
		name, help string
	}{
		{&m.tags, "garner_exporter_tags_skipped_total", "Tags not turned into labels: no value, or an empty key or value (statsd_exporter skips them too)."},
		{&m.estimated, "garner_exporter_estimated_observations_total", "Timer values observed as estimated from a timer-aggregation=histogram series' buckets (each within its bucket's relative width of the value sent)."},
		{&m.capped, "garner_exporter_capped_observations_total", "Timer observations left out because a value's sample rate asked for more than 10000 (statsd_exporter observes a value int(1/rate) times; garner at most 10000)."},
		{&m.unauthorized, "garner_exporter_unauthorized_requests_total", "Requests to the exporter's endpoint refused (401) for a missing or wrong bearer token (exporter.token)."},
	} {
		*c.dst = prom.NewCounter(prom.CounterOpts{Name: c.name, Help: c.help})
		reg.MustRegister(*c.dst)
	}
	m.dropped, _ = counterVec(reg, "garner_exporter_dropped_samples_total", "Series samples of a flush the exporter did not expose, by reason: type_conflict, reserved_label, max_series, negative_counter, nonfinite_counter, action_drop, past_interval_gauge (a gauge of a past flush interval, timestamps = \"honor\": it must not replace the current value).",
		"reason", reasonTypeConflict, reasonReservedLabel, reasonMaxSeries, reasonNegative, reasonNonFinite, reasonDropAction, reasonPastGauge)
	m.reloads, _ = counterVec(reg, "garner_exporter_mapping_loads_total", "Loads of the mapping file (start and SIGHUP), by result: ok, error (the old mappings stay).",
		"result", "ok", "error")
	_, m.scrapes = counterVec(reg, "garner_exporter_scrapes_total", "Scrapes of the exporter's endpoint, by format: text, protobuf (delimited, written directly), other (protobuf text or compact, through client_golang).",
		"format", formatText, formatProtobuf, formatOther)
	return m
}

// counterVec creates and registers a counter vector of one label with a
// child for each of values, so that each is exposed (at 0) from the start;
// it returns the vector and those children by value.
func counterVec(reg prom.Registerer, name, help, label string, values ...string) (*prom.CounterVec, map[string]prom.Counter) {
	v := prom.NewCounterVec(prom.CounterOpts{Name: name, Help: help}, []string{label})
	reg.MustRegister(v)
	children := make(map[string]prom.Counter, len(values))
	for _, x := range values {
		children[x] = v.WithLabelValues(x)
	}
	return v, children
}
