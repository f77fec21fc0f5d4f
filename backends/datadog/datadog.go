// Package datadog posts aggregates to the Datadog API (or anything that
// takes it, such as VictoriaMetrics' /datadog endpoint) as gostatsd does:
// JSON series to <api_endpoint>/api/v1/series, events to /api/v1/events and
// service checks to /api/v1/check_run, authenticated with the DD-API-KEY
// header, compressed with deflate (zlib) or gzip.
//
// Mapping (gostatsd's): a counter is a "rate" <name> (per second) plus a
// "gauge" <name>.count (the interval's total, so totals can be summed back);
// a timer is gauges <name>.lower/.upper/.count/.mean/.median/.std/.sum/
// .sum_squares and its percentiles (<name>.upper_90, ...) plus a "rate"
// <name>.count_ps, minus disabled sub-metrics; a gsd_histogram timer is one
// gauge <name>.histogram per bucket with the tag le:<bound>; gauges and sets
// (unique count) are gauges. Every point has the flush time (unix seconds),
// interval = the measured flush interval in whole seconds, host = the series'
// source and the series' tags.
//
// JSON has no NaN or ±Inf: a NaN point is left out and ±Inf is sent as
// ±MaxFloat64; both are counted in garner_datadog_nonfinite_values_total.
//
// Sending, batching (metrics_per_batch garner series per request), retries
// and drop counting are httpsend's.
package datadog

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "datadog"

// Client is the Datadog backend. Safe for concurrent use.
type Client struct {
	endpoint  string
	header    http.Header
	sender    *httpsend.Sender
	perBatch  int
	nonFinite prometheus.Counter
}

var (
	_ backends.Backend            = (*Client)(nil)
	_ backends.ServiceCheckSender = (*Client)(nil)
	_ backends.HealthChecker      = (*Client)(nil)
)

// New builds the backend from the [datadog] section.
func New(cfg Options, deps backends.Deps) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("datadog api_key is required")
	}
	if cfg.APIEndpoint == "" {
		return nil, fmt.Errorf("datadog api_endpoint is required")
	}
	comp, err := httpsend.ParseCompression(cfg.Compression, httpsend.Deflate)
	if err != nil {
		return nil, fmt.Errorf("datadog compress_payload: %w", err)
	}
	sender, err := httpsend.New(httpsend.Options{
		Subsystem:             Name,
		MaxRequests:           cfg.MaxRequests,
		Timeout:               cfg.ClientTimeout,
		MaxRequestElapsedTime: cfg.MaxRequestElapsedTime,
		Compression:           comp,
		TLS:                   cfg.TLS,
		UserAgent:             cfg.UserAgent,
		Deps:                  deps,
	})
	if err != nil {
		return nil, err
	}
	c := &Client{
		endpoint: cfg.APIEndpoint,
		header:   http.Header{"Content-Type": {"application/json"}, "Dd-Api-Key": {cfg.APIKey}},
		sender:   sender,
		perBatch: cfg.MetricsPerBatch,
	}
	if c.nonFinite, err = deps.NonFinite(Name, "Points that were NaN (left out) or ±Inf (sent as ±MaxFloat64): JSON has no form for them."); err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendMetrics posts the snapshot to /api/v1/series in batches of
// metrics_per_batch garner series and returns when every batch was
// delivered or given up on.
func (c *Client) SendMetrics(ctx context.Context, s *model.Snapshot) error {
	p := httpsend.Split(s.Len(), c.perBatch, func(dst []byte, lo, hi int) ([]byte, error) {
		e := encoder{snap: s, nonFinite: c.nonFinite}
		out := e.appendSeriesBody(dst, lo, hi)
		if e.n == 0 {
			return dst, nil // every point was NaN: nothing to post
		}
		return out, nil
	})
	return c.sender.Send(ctx, httpsend.Request{URL: c.endpoint + "/api/v1/series", Header: c.header}, p)
}

// SendEvent posts the event to /api/v1/events.
func (c *Client) SendEvent(ctx context.Context, ev *model.Event) error {
	p := httpsend.One(1, func(dst []byte) ([]byte, error) { return appendEvent(dst, ev), nil })
	return c.sender.Send(ctx, httpsend.Request{URL: c.endpoint + "/api/v1/events", Header: c.header}, p)
}

// SendServiceCheck posts the check to /api/v1/check_run.
func (c *Client) SendServiceCheck(ctx context.Context, sc *model.ServiceCheck) error {
	p := httpsend.One(1, func(dst []byte) ([]byte, error) { return appendServiceCheck(dst, sc), nil })
	return c.sender.Send(ctx, httpsend.Request{URL: c.endpoint + "/api/v1/check_run", Header: c.header}, p)
}

// CheckHealth GETs /api/v1/validate with the API key: the API must answer
// and accept the key.
func (c *Client) CheckHealth(ctx context.Context) error {
	code, err := c.sender.Probe(ctx, c.endpoint+"/api/v1/validate", c.header)
	if err != nil {
		return err
	}
	switch {
	case code == http.StatusForbidden || code == http.StatusUnauthorized:
		return fmt.Errorf("datadog rejected the api_key (%d)", code)
	case code < 200 || code > 299:
		return fmt.Errorf("datadog validate answered %d", code)
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.sender.Client().CloseIdleConnections()
	return nil
}

// encoder writes one batch's JSON body; used by one goroutine.
type encoder struct {
	snap      *model.Snapshot
	nonFinite prometheus.Counter
	ts        []byte // the current point's time, unix seconds, formatted
	snapTS    []byte // the flush's time, formatted
	atTS      []byte // a past interval's end, formatted (pointTime)
	interval  []byte
	n         int // points written in this body
}

// appendSeriesBody appends {"series":[...]} with the points of the
// snapshot's series [lo, hi) (counters, then timers, gauges, sets).
func (e *encoder) appendSeriesBody(dst []byte, lo, hi int) []byte {
	s := e.snap
	e.snapTS = strconv.AppendInt(e.snapTS[:0], s.Time.Unix(), 10)
	e.ts = e.snapTS
	e.interval = strconv.AppendInt(e.interval[:0], max(1, int64(math.Round(s.Interval.Seconds()))), 10)
	dst = append(dst, `{"series":[`...)
	for k := lo; k < hi; k++ {
		dst = e.appendOne(dst, k)
	}
	return append(dst, "]}"...)
}

// pointTime sets the time of the points that follow: the flush's, or a past
// interval's end (at, unix nanos; timestamps = "honor").
func (e *encoder) pointTime(at int64) {
	if at == 0 {
		e.ts = e.snapTS
		return
	}
	e.atTS = strconv.AppendInt(e.atTS[:0], at/int64(time.Second), 10)
	e.ts = e.atTS
}

func (e *encoder) appendOne(dst []byte, k int) []byte {
	s := e.snap
	e.ts = e.snapTS
	if k < len(s.Counters) {
		x := &s.Counters[k]
		e.pointTime(x.At)
		dst = e.point(dst, &x.Series, "", "rate", x.PerSecond, "")
		return e.point(dst, &x.Series, ".count", "gauge", x.Value, "")
	}
	k -= len(s.Counters)
	if k < len(s.Timers) {
		t := &s.Timers[k]
		if t.Histogram != nil {
			for _, b := range t.Histogram {
				dst = e.point(dst, &t.Series, ".histogram", "gauge", float64(b.Count), "le:"+model.FormatBound(b.Le))
			}
			return dst
		}
		for _, st := range model.TimerStats {
			if s.Disabled.Has(st.Sub) {
				continue
			}
			typ := "gauge"
			if st.Sub == model.SubCountPerSecond {
				typ = "rate"
			}
			dst = e.point(dst, &t.Series, "."+st.Name, typ, st.Value(t), "")
		}
		for _, p := range t.Percentiles {
			dst = e.point(dst, &t.Series, "."+p.Name, "gauge", p.Value, "")
		}
		return dst
	}
	k -= len(s.Timers)
	if k < len(s.Gauges) {
		g := &s.Gauges[k]
		e.pointTime(g.At)
		return e.point(dst, &g.Series, "", "gauge", g.Value, "")
	}
	k -= len(s.Gauges)
	st := &s.Sets[k]
	return e.point(dst, &st.Series, "", "gauge", float64(st.Count()), "")
}

// point appends one Datadog series object with a single point.
func (e *encoder) point(dst []byte, s *model.Series, suffix, typ string, v float64, extraTag string) []byte {
	switch {
	case math.IsNaN(v):
		e.countNonFinite()
		return dst
	case math.IsInf(v, 1):
		e.countNonFinite()
		v = math.MaxFloat64
	case math.IsInf(v, -1):
		e.countNonFinite()
		v = -math.MaxFloat64
	}
	if e.n > 0 {
		dst = append(dst, ',')
	}
	e.n++
	dst = append(dst, `{"metric":`...)
	dst = appendJSONString(dst, s.Name)
	if suffix != "" { // names are sanitised: the suffix needs no escaping
		dst = append(dst[:len(dst)-1], suffix...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"points":[[`...)
	dst = append(dst, e.ts...)
	dst = append(dst, ',')
	dst = appendJSONFloat(dst, v)
	dst = append(dst, `]],"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","interval":`...)
	dst = append(dst, e.interval...)
	// host and tags are always written, empty or not: VictoriaMetrics
	// (1.79) reuses its decoded series objects and would otherwise give a
	// series without them the host and tags of an earlier one.
	dst = append(dst, `,"host":`...)
	dst = appendJSONString(dst, s.Source)
	dst = append(dst, `,"tags":[`...)
	for i, t := range s.Tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, t)
	}
	if extraTag != "" {
		if len(s.Tags) > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, extraTag)
	}
	return append(dst, "]}"...)
}

func (e *encoder) countNonFinite() {
	if e.nonFinite != nil {
		e.nonFinite.Inc()
	}
}

// appendEvent appends the /api/v1/events body. host is the event's
// hostname, or the sender's address when it named none.
func appendEvent(dst []byte, ev *model.Event) []byte {
	dst = append(dst, `{"title":`...)
	dst = appendJSONString(dst, ev.Title)
	dst = append(dst, `,"text":`...)
	dst = appendJSONString(dst, ev.Text)
	if ev.DateHappened != 0 {
		dst = append(dst, `,"date_happened":`...)
		dst = strconv.AppendInt(dst, ev.DateHappened, 10)
	}
	host := ev.Hostname
	if host == "" {
		host = ev.Source
	}
	dst = appendOptString(dst, "host", host)
	dst = appendOptString(dst, "aggregation_key", ev.AggregationKey)
	dst = appendOptString(dst, "source_type_name", ev.SourceTypeName)
	dst = appendTags(dst, ev.Tags)
	dst = append(dst, `,"priority":"`...)
	dst = append(dst, ev.Priority.String()...)
	dst = append(dst, `","alert_type":"`...)
	dst = append(dst, ev.AlertType.String()...)
	return append(dst, `"}`...)
}

// appendServiceCheck appends the /api/v1/check_run body; status is 0 ok,
// 1 warning, 2 critical, 3 unknown.
func appendServiceCheck(dst []byte, sc *model.ServiceCheck) []byte {
	dst = append(dst, `{"check":`...)
	dst = appendJSONString(dst, sc.Name)
	host := sc.Hostname
	if host == "" {
		host = sc.Source
	}
	dst = append(dst, `,"host_name":`...)
	dst = appendJSONString(dst, host)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(sc.Status), 10)
	if sc.Timestamp != 0 {
		dst = append(dst, `,"timestamp":`...)
		dst = strconv.AppendInt(dst, sc.Timestamp, 10)
	}
	dst = appendOptString(dst, "message", sc.Message)
	dst = appendTags(dst, sc.Tags)
	return append(dst, '}')
}

func appendOptString(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

func appendTags(dst []byte, tags []string) []byte {
	if len(tags) == 0 {
		return dst
	}
	dst = append(dst, `,"tags":[`...)
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, t)
	}
	return append(dst, ']')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// appendJSONFloat writes a finite v as a JSON number, shortest form.
func appendJSONFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(dst, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'e', -1, 64)
}
