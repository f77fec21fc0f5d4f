// Package ingest serves the aggregator side of the forwarding protocol:
// POST /v2/raw and /v2/event (gostatsd's wire format) and POST /v3/raw and
// /v3/event (garner's). Forwarded series go into the aggregator's shards
// through a receiver.SeriesWriter, so they aggregate exactly like statsd
// lines; events and service checks go to the event dispatcher.
//
// Every request is answered 202 once applied; 400 when the body does not
// decode; 413 when the body or its decompressed form is over its limit
// (decompression stops at the limit: a deflate bomb costs at most
// MaxDecompressedBytes); 415 on an unknown Content-Encoding. /v3 batches
// carry an id: a batch seen within DedupWindow is answered 202 again
// without being applied twice.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// Options configures the handlers. Each field names its config key; a zero
// field takes its value from DefaultOptions, except ServeV3.
type Options struct {
	// MaxBodyBytes bounds the request body as sent (key
	// ingestion.max-body-bytes); a larger one is answered 413. Default 16 MiB.
	MaxBodyBytes int64
	// MaxDecompressedBytes bounds the body after decompression (key
	// ingestion.max-decompressed-bytes); decompression stops there and the
	// request is answered 413. Default 64 MiB.
	MaxDecompressedBytes int64
	// DedupWindow is how long /v3 batch ids are remembered (key
	// ingestion.dedup-window). Default 5m.
	DedupWindow time.Duration
	// MaxBatchIDs bounds the ids remembered, oldest forgotten first (no
	// key). Default 1<<20.
	MaxBatchIDs int
	// ServeV3 mounts /v3/raw and /v3/event (key ingestion.v3). Default true;
	// false in a zero Options.
	ServeV3 bool
	// ApplyTimeout is how long a request waits for full shard queues (key
	// ingestion.apply-timeout); what is not applied by then is dropped and
	// counted. Default 5s.
	ApplyTimeout time.Duration
}

// DefaultOptions returns the options every key defaults to.
func DefaultOptions() Options {
	return Options{
		MaxBodyBytes:         16 << 20,
		MaxDecompressedBytes: 64 << 20,
		DedupWindow:          5 * time.Minute,
		MaxBatchIDs:          1 << 20,
		ServeV3:              true,
		ApplyTimeout:         5 * time.Second,
	}
}

// withDefaults fills the zero fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	fill(&o.MaxBodyBytes, d.MaxBodyBytes)
	fill(&o.MaxDecompressedBytes, d.MaxDecompressedBytes)
	fill(&o.DedupWindow, d.DedupWindow)
	fill(&o.MaxBatchIDs, d.MaxBatchIDs)
	fill(&o.ApplyTimeout, d.ApplyTimeout)
	return o
}

// fill sets *v to def when it is not positive (unset).
func fill[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Route is one handler to mount, with its net/http ServeMux pattern
// ("POST /v2/raw": other methods get 405 from the mux).
type Route struct {
	Pattern string
	Handler http.Handler
}

// Handler holds the ingestion endpoints. Its routes are safe for concurrent
// use.
type Handler struct {
	opts      Options
	log       logrus.FieldLogger
	writers   sync.Pool // *receiver.SeriesWriter
	decoders  sync.Pool // *decoder, each with its own SeriesWriter
	bufs      sync.Pool // *bytes.Buffer
	inflaters sync.Pool // *inflater
	zstd      *zstd.Decoder
	dedup     *dedup
	logLim    *ratelog.Limiter
	m         ingestMetrics
}

type ingestMetrics struct {
	requests *prometheus.CounterVec // endpoint, result
	series   map[string]prometheus.Counter
	events   prometheus.Counter
	checks   prometheus.Counter
	invalid  prometheus.Counter
	body     prometheus.Counter
	inflated prometheus.Counter
	dropped  prometheus.Counter
}

// Request results, the result label of garner_ingest_requests_total.
const (
	resAccepted    = "accepted"
	resDuplicate   = "duplicate"
	resBadRequest  = "bad_request"
	resTooLarge    = "too_large"
	resBadEncoding = "unsupported_encoding"
)

// New builds the handlers, which apply what they receive through lines.
// Self-metrics are registered on reg.
func New(opts Options, lines *receiver.Lines, log logrus.FieldLogger, reg prometheus.Registerer) (*Handler, error) {
	opts = opts.withDefaults()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(opts.MaxDecompressedBytes)), zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, fmt.Errorf("cannot create the zstd decoder: %w", err)
	}
	h := &Handler{
		opts:   opts,
		log:    log,
		zstd:   dec,
		dedup:  newDedup(opts.DedupWindow, opts.MaxBatchIDs),
		logLim: ratelog.Every(10*time.Second, 1),
	}
	h.writers.New = func() any { return lines.NewSeriesWriter() }
	h.decoders.New = func() any { return &decoder{sink: lines.NewSeriesWriter()} }
	h.bufs.New = func() any { return new(bytes.Buffer) }
	series := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "garner_ingest_series_total", Help: "Forwarded series applied to the shards, by type.",
	}, []string{"type"})
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	h.m = ingestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garner_ingest_requests_total",
			Help: "Forwarding requests (/v2/raw, /v3/raw, /v2/event, /v3/event) by endpoint and result: accepted, duplicate (a v3 batch already applied), bad_request, too_large, unsupported_encoding.",
		}, []string{"endpoint", "result"}),
		series: map[string]prometheus.Counter{
			"counter": series.WithLabelValues("counter"), "gauge": series.WithLabelValues("gauge"),
			"set": series.WithLabelValues("set"), "timer": series.WithLabelValues("timer"),
		},
		events:   counter("garner_ingest_events_total", "Forwarded events handed to the event dispatcher."),
		checks:   counter("garner_ingest_service_checks_total", "Forwarded service checks handed to the event dispatcher."),
		invalid:  counter("garner_ingest_invalid_series_total", "Forwarded series skipped because they have no name, or a timer histogram or set sketch (HyperLogLog) that does not hold together."),
		body:     counter("garner_ingest_body_bytes_total", "Request body bytes received, as sent (compressed)."),
		inflated: counter("garner_ingest_decompressed_bytes_total", "Request body bytes after decompression."),
		dropped:  counter("garner_ingest_dropped_samples_total", "Forwarded samples dropped because the shards' queues stayed full for ingestion.apply-timeout (also in garner_aggregator_queue_dropped_lines_total)."),
	}
	if err := registerAll(reg, h.m.requests, series, h.m.events, h.m.checks, h.m.invalid, h.m.body, h.m.inflated, h.m.dropped); err != nil {
		return nil, err
	}
	return h, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("cannot register ingestion metrics: %w", err)
		}
	}
	return nil
}

// Routes returns the handlers to mount: /v2/raw and /v2/event always,
// /v3/raw and /v3/event with Options.ServeV3 (without them a garner
// forwarder falls back to v2 on the 404).
func (h *Handler) Routes() []Route {
	rs := []Route{
		{"POST /v2/raw", h.endpoint("/v2/raw", false, h.rawV2)},
		{"POST /v2/event", h.endpoint("/v2/event", false, h.eventV2)},
	}
	if h.opts.ServeV3 {
		rs = append(rs,
			Route{"POST /v3/raw", h.endpoint("/v3/raw", true, h.rawV3)},
			Route{"POST /v3/event", h.endpoint("/v3/event", true, h.eventV3)},
		)
	}
	return rs
}

// Close releases the decoder's goroutines.
func (h *Handler) Close() { h.zstd.Close() }

// errTooLarge is a body over one of the limits (413).
var errTooLarge = errors.New("request body too large")

// errDecode is a body that does not decode (400).
var errDecode = errors.New("cannot decode the body")

// applyFunc decodes a decompressed body and applies it. It returns the
// result label (resAccepted or resDuplicate) or an error wrapping errDecode.
type applyFunc func(ctx context.Context, body []byte) (string, error)

func (h *Handler) endpoint(name string, v3 bool, apply applyFunc) http.Handler {
	res := map[string]prometheus.Counter{}
	for _, r := range []string{resAccepted, resDuplicate, resBadRequest, resTooLarge, resBadEncoding} {
		res[r] = h.m.requests.WithLabelValues(name, r)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, result, err := h.serve(r, v3, apply)
		res[result].Inc()
		if err != nil {
			if e := h.logLim.Entry(h.log); e != nil {
				e.WithFields(logrus.Fields{"endpoint": name, "remote": r.RemoteAddr, "status": code}).
					WithError(err).Warn("refusing a forwarding request")
			}
			http.Error(w, err.Error(), code)
			return
		}
		if result == resDuplicate {
			w.Header().Set("X-Garner-Duplicate", "true")
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// serve reads, decompresses, decodes and applies one request.
func (h *Handler) serve(r *http.Request, v3 bool, apply applyFunc) (int, string, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "deflate":
	case "zstd":
		if !v3 {
			return http.StatusUnsupportedMediaType, resBadEncoding, errors.New("zstd is only accepted on /v3 endpoints; use deflate or identity")
		}
	default:
		if len(enc) > 32 {
			enc = enc[:32]
		}
		return http.StatusUnsupportedMediaType, resBadEncoding, fmt.Errorf("unsupported Content-Encoding %q: use deflate, identity (or zstd on /v3)", enc)
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		return http.StatusRequestEntityTooLarge, resTooLarge, fmt.Errorf("%w: %d bytes, ingestion.max-body-bytes is %d", errTooLarge, r.ContentLength, h.opts.MaxBodyBytes)
	}
	raw := h.bufs.Get().(*bytes.Buffer)
	defer h.putBuf(raw)
	raw.Reset()
	if _, err := raw.ReadFrom(io.LimitReader(r.Body, h.opts.MaxBodyBytes+1)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, resTooLarge, fmt.Errorf("%w: over %d bytes", errTooLarge, mbe.Limit)
		}
		return http.StatusBadRequest, resBadRequest, fmt.Errorf("cannot read the body: %w", err)
	}
	if int64(raw.Len()) > h.opts.MaxBodyBytes {
		return http.StatusRequestEntityTooLarge, resTooLarge, fmt.Errorf("%w: over ingestion.max-body-bytes (%d)", errTooLarge, h.opts.MaxBodyBytes)
	}
	h.m.body.Add(float64(raw.Len()))

	body := raw.Bytes()
	if enc == "deflate" || enc == "zstd" {
		out := h.bufs.Get().(*bytes.Buffer)
		defer h.putBuf(out)
		out.Reset()
		var err error
		if body, err = h.decompress(out, body, enc); err != nil {
			if errors.Is(err, errTooLarge) {
				return http.StatusRequestEntityTooLarge, resTooLarge, err
			}
			return http.StatusBadRequest, resBadRequest, err
		}
	}
	h.m.inflated.Add(float64(len(body)))

	// A body read whole is applied whole, even if its sender gives up
	// meanwhile (its client timeout, a proxy cutting the answer): the batch
	// id is already taken, so a retry would be ignored as a duplicate and
	// what was not applied would be lost. Only apply-timeout bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.opts.ApplyTimeout)
	defer cancel()
	result, err := apply(ctx, body)
	if err != nil {
		return http.StatusBadRequest, resBadRequest, err
	}
	return http.StatusAccepted, result, nil
}

// maxPooledBuf keeps huge one-off bodies from staying in the pool.
const maxPooledBuf = 4 << 20

func (h *Handler) putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		h.bufs.Put(b)
	}
}

// decompress inflates body (into out's memory where it can), stopping at
// MaxDecompressedBytes.
func (h *Handler) decompress(out *bytes.Buffer, body []byte, enc string) ([]byte, error) {
	limit := h.opts.MaxDecompressedBytes
	tooLarge := fmt.Errorf("%w: decompressed over ingestion.max-decompressed-bytes (%d)", errTooLarge, limit)
	if enc == "zstd" {
		dst, err := h.zstd.DecodeAll(body, out.Bytes()[:0])
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, tooLarge
			}
			return nil, fmt.Errorf("cannot decompress zstd: %w", err)
		}
		if int64(len(dst)) > limit {
			return nil, tooLarge
		}
		return dst, nil
	}
	// deflate: the zlib format, as gostatsd sends it. An inflater's
	// dictionary and window are reused, from request to request.
	in, _ := h.inflaters.Get().(*inflater)
	if in == nil {
		in = &inflater{}
	}
	defer h.inflaters.Put(in)
	in.body.Reset(body)
	var err error
	if in.zr == nil {
		in.zr, err = zlib.NewReader(&in.body)
	} else {
		err = in.zr.(zlib.Resetter).Reset(&in.body, nil)
	}
	if err != nil {
		in.zr = nil // a reader whose Reset failed is not reused
		return nil, fmt.Errorf("cannot decompress deflate (zlib): %w", err)
	}
	in.limited = io.LimitedReader{R: in.zr, N: limit + 1}
	n, err := out.ReadFrom(&in.limited)
	if err != nil {
		return nil, fmt.Errorf("cannot decompress deflate (zlib): %w", err)
	}
	if n > limit {
		return nil, tooLarge
	}
	return out.Bytes(), nil
}

// inflater is a pooled zlib reader with the reader of the body it inflates.
type inflater struct {
	body    bytes.Reader
	zr      io.ReadCloser // implements zlib.Resetter
	limited io.LimitedReader
}

// rawV2 applies a pb.RawMessageV2.
func (h *Handler) rawV2(ctx context.Context, body []byte) (string, error) {
	d := h.decoders.Get().(*decoder)
	defer h.putDecoder(d)
	d.start(true)
	if d.rawV2(body) != nil {
		n, bad, err := generatedV2(body, d.sink)
		if err != nil {
			return "", err
		}
		h.finish(ctx, d.sink.(*receiver.SeriesWriter), n, bad)
		return resAccepted, nil
	}
	d.start(false)
	_ = d.rawV2(body) // checked above
	h.finish(ctx, d.sink.(*receiver.SeriesWriter), d.n, d.bad)
	return resAccepted, nil
}

// rawV3 applies a garner.v3.RawBatch, once per batch id.
func (h *Handler) rawV3(ctx context.Context, body []byte) (string, error) {
	d := h.decoders.Get().(*decoder)
	defer h.putDecoder(d)
	d.start(true)
	if d.rawV3(body) != nil {
		msg, err := generatedV3(body)
		if err != nil {
			return "", err
		}
		if !h.dedup.firstTime(msg.BatchId, time.Now()) {
			return resDuplicate, nil
		}
		n, bad := applyGeneratedV3(msg, d.sink)
		h.finish(ctx, d.sink.(*receiver.SeriesWriter), n, bad)
		return resAccepted, nil
	}
	if !h.dedup.firstTime(d.batchID, time.Now()) {
		return resDuplicate, nil
	}
	d.start(false)
	_ = d.rawV3(body) // checked above
	h.finish(ctx, d.sink.(*receiver.SeriesWriter), d.n, d.bad)
	return resAccepted, nil
}

// putDecoder returns d, with its SeriesWriter, to the pool.
func (h *Handler) putDecoder(d *decoder) {
	d.release()
	h.decoders.Put(d)
}

// finish hands what w wrote to the shards and counts it: n is the series
// applied by type (counters, gauges, sets, timers), bad those skipped.
func (h *Handler) finish(ctx context.Context, w *receiver.SeriesWriter, n [4]int, bad int) {
	if dropped := w.Send(ctx); dropped > 0 {
		h.m.dropped.Add(float64(dropped))
		if e := h.logLim.Entry(h.log); e != nil {
			e.WithField("dropped_samples", dropped).Warn("shard queues stayed full for ingestion.apply-timeout: dropping forwarded samples")
		}
	}
	for i, typ := range [4]string{"counter", "gauge", "set", "timer"} {
		h.m.series[typ].Add(float64(n[i]))
	}
	if bad > 0 {
		h.m.invalid.Add(float64(bad))
	}
}

// eventV2 hands one pb.EventV2 to the event dispatcher.
func (h *Handler) eventV2(_ context.Context, body []byte) (string, error) {
	var msg pb.EventV2
	if err := proto.Unmarshal(body, &msg); err != nil {
		return "", fmt.Errorf("%w as a v2 EventV2: %w", errDecode, err)
	}
	h.event(&model.Event{
		Title: msg.Title, Text: msg.Text, DateHappened: msg.DateHappened, Hostname: msg.Hostname,
		AggregationKey: msg.AggregationKey, SourceTypeName: msg.SourceTypeName, Tags: msg.Tags, Source: msg.SourceIP,
		Priority: wireEnum(msg.Priority, model.PriorityLow), AlertType: wireEnum(msg.Type, model.AlertSuccess),
	})
	return resAccepted, nil
}

// eventV3 hands a garner.v3.EventBatch to the event dispatcher, once per
// batch id.
func (h *Handler) eventV3(_ context.Context, body []byte) (string, error) {
	var msg garnerpb.EventBatch
	if err := proto.Unmarshal(body, &msg); err != nil {
		return "", fmt.Errorf("%w as a v3 EventBatch: %w", errDecode, err)
	}
	if !h.dedup.firstTime(msg.BatchId, time.Now()) {
		return resDuplicate, nil
	}
	for _, m := range msg.Events {
		h.event(&model.Event{
			Title: m.Title, Text: m.Text, DateHappened: m.DateHappened, Hostname: m.Hostname,
			AggregationKey: m.AggregationKey, SourceTypeName: m.SourceTypeName, Tags: m.Tags, Source: m.SourceIp,
			Priority: wireEnum(m.Priority, model.PriorityLow), AlertType: wireEnum(m.AlertType, model.AlertSuccess),
		})
	}
	for _, m := range msg.ServiceChecks {
		c := &model.ServiceCheck{
			Name: m.Name, Timestamp: m.Timestamp, Hostname: m.Hostname, Tags: m.Tags, Message: m.Message, Source: m.SourceIp,
			Status: model.CheckUnknown,
		}
		if m.Status >= 0 && m.Status < garnerpb.ServiceCheck_UNKNOWN {
			c.Status = model.CheckStatus(m.Status)
		}
		dispatch(h, c, &c.Timestamp, (*receiver.SeriesWriter).ServiceCheck, h.m.checks)
	}
	return resAccepted, nil
}

// wireEnum converts an enum of the v2 or v3 protocol to garner's, which
// numbers its values as both protocols do (0 … highest); an unknown value
// is the zero value (normal priority, info).
func wireEnum[W ~int32, G ~uint8](w W, highest G) G {
	if w < 0 || w > W(highest) {
		return 0
	}
	return G(w)
}

func (h *Handler) event(e *model.Event) {
	dispatch(h, e, &e.DateHappened, (*receiver.SeriesWriter).Event, h.m.events)
}

// dispatch hands an event or a service check (x, stamped now when its
// time, at, is 0) to the event dispatcher through a pooled writer, and
// counts it in n.
func dispatch[T any](h *Handler, x T, at *int64, send func(*receiver.SeriesWriter, T), n prometheus.Counter) {
	if *at == 0 {
		*at = time.Now().Unix()
	}
	w := h.writers.Get().(*receiver.SeriesWriter)
	send(w, x)
	h.writers.Put(w)
	n.Inc()
}
