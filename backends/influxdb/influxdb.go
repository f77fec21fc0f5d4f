// Package influxdb writes aggregates to InfluxDB (or anything that takes its
// line protocol over HTTP, such as VictoriaMetrics) with the v1
// (/write?db=&rp=&consistency=) or v2 (/api/v2/write?org=&bucket=) write API,
// mapped as gostatsd maps them: measurement = metric name, tags = the
// series' tags plus host=<source>, fields count,rate (counters), value
// (gauges), count (sets), lower,upper,count,rate,mean,median,stddev,sum,
// sum_squares and the percentiles (timers), le.<bound> (histogram timers).
// Events become points of the measurement "events".
//
// Timestamps are the flush time in milliseconds (precision=ms). Every
// numeric field is written as a float, so a field never changes type.
// NaN and ±Inf have no line-protocol form: such a field is left out (and
// counted in garner_influxdb_nonfinite_values_total); a line left with no
// field is not written.
//
// Sending, batching, retries and drop counting are httpsend's: a flush is
// cut into requests of metrics-per-batch series, at most max-requests in
// flight, each retried within max-request-elapsed-time.
package influxdb

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/httpsend"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "influxdb"

// Client is the InfluxDB backend. Safe for concurrent use.
type Client struct {
	writeURL  string
	pingURL   string
	header    http.Header
	sender    *httpsend.Sender
	perBatch  int
	nonFinite prometheus.Counter
	dropped   prometheus.Counter
}

var (
	_ backends.Backend       = (*Client)(nil)
	_ backends.HealthChecker = (*Client)(nil)
)

// New builds the backend from the [influxdb] section.
func New(cfg Options, deps backends.Deps) (*Client, error) {
	base, err := url.Parse(cfg.APIEndpoint)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("influxdb api-endpoint %q is not a URL", cfg.APIEndpoint)
	}
	q := base.Query()
	q.Set("precision", "ms")
	w := *base
	switch cfg.APIVersion {
	case 1:
		w.Path = strings.TrimRight(base.Path, "/") + "/write"
		q.Set("db", cfg.Database)
		if cfg.RetentionPolicy != "" {
			q.Set("rp", cfg.RetentionPolicy)
		}
		if cfg.Consistency != "" {
			q.Set("consistency", cfg.Consistency)
		}
	case 2:
		w.Path = strings.TrimRight(base.Path, "/") + "/api/v2/write"
		q.Set("org", cfg.Org)
		q.Set("bucket", cfg.Bucket)
	default:
		return nil, fmt.Errorf("influxdb api-version %d: want 1 or 2", cfg.APIVersion)
	}
	w.RawQuery = q.Encode()
	ping := *base
	ping.Path = strings.TrimRight(base.Path, "/") + "/ping"

	comp := httpsend.None
	if cfg.CompressPayload {
		comp = httpsend.Gzip
	}
	sender, err := httpsend.New(httpsend.Options{
		Subsystem:             Name,
		MaxRequests:           cfg.MaxRequests,
		Timeout:               cfg.Timeout,
		MaxRequestElapsedTime: cfg.MaxRequestElapsedTime,
		Compression:           comp,
		TLS:                   cfg.TLS,
		Deps:                  deps,
	})
	if err != nil {
		return nil, err
	}
	header := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	if cfg.Credentials != "" {
		header.Set("Authorization", "Token "+cfg.Credentials)
	}
	c := &Client{
		writeURL: w.String(), pingURL: ping.String(), header: header, sender: sender,
		perBatch: cfg.MetricsPerBatch, dropped: deps.DroppedSeries,
	}
	if c.nonFinite, err = deps.NonFinite(Name, "Field values left out because they were NaN or ±Inf (line protocol has no form for them)."); err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements backends.Backend.
func (c *Client) Name() string { return Name }

// SendMetrics writes the snapshot in batches of metrics-per-batch series and
// returns when every batch was written or given up on (see httpsend).
func (c *Client) SendMetrics(ctx context.Context, s *model.Snapshot) error {
	p := httpsend.Split(s.Len(), c.perBatch, func(dst []byte, lo, hi int) ([]byte, error) {
		var e encoder
		e.nonFinite = c.nonFinite
		for k := lo; k < hi; k++ {
			dst = e.appendSeries(dst, s, k)
		}
		if e.empty > 0 && c.dropped != nil {
			c.dropped.Add(float64(e.empty))
		}
		return dst, nil
	})
	return c.sender.Send(ctx, httpsend.Request{URL: c.writeURL, Header: c.header}, p)
}

// SendEvent writes the event as a point of the measurement "events" with
// fields title and text, tags priority, alerttype, sourcetypename and host.
func (c *Client) SendEvent(ctx context.Context, ev *model.Event) error {
	p := httpsend.One(1, func(dst []byte) ([]byte, error) {
		var e encoder
		return e.appendEvent(dst, ev), nil
	})
	return c.sender.Send(ctx, httpsend.Request{URL: c.writeURL, Header: c.header}, p)
}

// CheckHealth GETs <api-endpoint>/ping (InfluxDB 1.x and 2.x, and
// VictoriaMetrics, answer 204).
func (c *Client) CheckHealth(ctx context.Context) error {
	code, err := c.sender.Probe(ctx, c.pingURL, nil)
	if err != nil {
		return err
	}
	if code < 200 || code > 299 {
		return fmt.Errorf("influxdb ping %q answered %d", c.pingURL, code)
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.sender.Client().CloseIdleConnections()
	return nil
}

// encoder formats line protocol. It keeps scratch space between lines and
// is used by one goroutine.
type encoder struct {
	tags      []tagKV
	fields    int // fields written on the current line
	nonFinite prometheus.Counter
	empty     int // series that produced no line
}

type tagKV struct{ k, v string }

// appendSeries appends the line of the snapshot's k-th series, counting
// counters, then timers, gauges and sets.
func (e *encoder) appendSeries(dst []byte, s *model.Snapshot, k int) []byte {
	ts := s.Time.UnixMilli()
	if k < len(s.Counters) {
		x := &s.Counters[k]
		return e.line(dst, &x.Series, pointMillis(ts, x.At), func(dst []byte) []byte {
			dst = e.field(dst, "count", x.Value)
			return e.field(dst, "rate", x.PerSecond)
		})
	}
	k -= len(s.Counters)
	if k < len(s.Timers) {
		t := &s.Timers[k]
		return e.line(dst, &t.Series, ts, func(dst []byte) []byte {
			if t.Histogram != nil {
				for _, b := range t.Histogram {
					dst = e.field(dst, "le."+model.FormatBound(b.Le), float64(b.Count))
				}
				return dst
			}
			for _, st := range model.TimerStats {
				if !s.Disabled.Has(st.Sub) {
					dst = e.field(dst, timerField(st.Name), st.Value(t))
				}
			}
			for _, p := range t.Percentiles {
				dst = e.field(dst, p.Name, p.Value)
			}
			return dst
		})
	}
	k -= len(s.Timers)
	if k < len(s.Gauges) {
		g := &s.Gauges[k]
		return e.line(dst, &g.Series, pointMillis(ts, g.At), func(dst []byte) []byte { return e.field(dst, "value", g.Value) })
	}
	k -= len(s.Gauges)
	st := &s.Sets[k]
	return e.line(dst, &st.Series, ts, func(dst []byte) []byte { return e.field(dst, "count", float64(st.Count())) })
}

// pointMillis is a point's time in unix milliseconds: the flush's (snap),
// or a past interval's end (at, unix nanos; timestamps = "honor").
func pointMillis(snap, at int64) int64 {
	if at == 0 {
		return snap
	}
	return at / int64(time.Millisecond)
}

// timerField maps garner's timer stat names to gostatsd's InfluxDB field names.
func timerField(name string) string {
	switch name {
	case "count_ps":
		return "rate"
	case "std":
		return "stddev"
	}
	return name
}

// line appends "<measurement>[,tags] <fields> <ts>\n"; it writes nothing
// when fields writes no field.
func (e *encoder) line(dst []byte, s *model.Series, ts int64, fields func([]byte) []byte) []byte {
	start := len(dst)
	if s.Name == "" || s.Name[0] == '#' {
		e.empty++
		return dst
	}
	dst = appendMeasurement(dst, s.Name)
	dst = e.appendTags(dst, s.Tags, s.Source)
	dst = append(dst, ' ')
	e.fields = 0
	dst = fields(dst)
	if e.fields == 0 {
		e.empty++
		return dst[:start]
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '\n')
}

// field appends ",key=value" (no comma before the first), leaving out
// non-finite values.
func (e *encoder) field(dst []byte, key string, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if e.nonFinite != nil {
			e.nonFinite.Inc()
		}
		return dst
	}
	if e.fields > 0 {
		dst = append(dst, ',')
	}
	e.fields++
	dst = appendEscaped(dst, key, true)
	dst = append(dst, '=')
	return appendFloat(dst, v)
}

// appendTags writes the series' tags as gostatsd does: "k:v" → k=v, a bare
// tag → unnamed=<tag>, several values of one key joined with "__" (sorted),
// keys sorted; then host=<source> unless a host tag exists. Tags with an
// empty key or value are left out (line protocol refuses them).
func (e *encoder) appendTags(dst []byte, tags []string, source string) []byte {
	e.tags = e.tags[:0]
	hasHost := false
	for _, t := range tags {
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			k, v = "unnamed", t
		}
		if k == "" || v == "" {
			continue
		}
		if k == "host" {
			hasHost = true
		}
		e.tags = append(e.tags, tagKV{k, v})
	}
	if !hasHost && source != "" {
		e.tags = append(e.tags, tagKV{"host", source})
	}
	slices.SortFunc(e.tags, func(a, b tagKV) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	for i, t := range e.tags {
		if i > 0 && e.tags[i-1].k == t.k {
			dst = append(dst, "__"...)
		} else {
			dst = append(dst, ',')
			dst = appendEscaped(dst, t.k, true)
			dst = append(dst, '=')
		}
		dst = appendEscaped(dst, t.v, true)
	}
	return dst
}

// appendEvent appends an event as gostatsd writes it.
func (e *encoder) appendEvent(dst []byte, ev *model.Event) []byte {
	tags := make([]string, 0, len(ev.Tags)+4)
	hasHost := false
	for _, t := range ev.Tags {
		if strings.HasPrefix(t, "host:") {
			hasHost = true
		}
		tags = append(tags, t)
	}
	tags = append(tags, "priority:"+ev.Priority.String(), "alerttype:"+ev.AlertType.String())
	if ev.SourceTypeName != "" {
		tags = append(tags, "sourcetypename:"+ev.SourceTypeName)
	}
	if ev.AggregationKey != "" {
		tags = append(tags, "aggregationkey:"+ev.AggregationKey)
	}
	host := ev.Hostname
	if host == "" {
		host = ev.Source
	}
	if hasHost {
		host = ""
	}
	dst = append(dst, "events"...)
	dst = e.appendTags(dst, tags, host)
	dst = append(dst, " title="...)
	dst = appendStringField(dst, ev.Title)
	dst = append(dst, ",text="...)
	dst = appendStringField(dst, ev.Text)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ev.DateHappened*1000, 10)
	return append(dst, '\n')
}

// appendMeasurement escapes commas and spaces (and a backslash that would
// otherwise escape one of them or the end).
func appendMeasurement(dst []byte, s string) []byte { return appendEscaped(dst, s, false) }

// appendEscaped escapes a tag key, tag value or field key (withEquals) or a
// measurement: ',', ' ' (and '=' for keys and values) get a backslash; a
// backslash is doubled only where it would otherwise escape what follows it
// (line protocol keeps other backslashes literally); newlines, which line
// protocol cannot carry, become spaces.
func appendEscaped(dst []byte, s string, withEquals bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ',', ' ':
			dst = append(dst, '\\', c)
		case '=':
			if withEquals {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
		case '\n', '\r':
			dst = append(dst, '\\', ' ')
		case '\\':
			if i == len(s)-1 || strings.IndexByte(`\, =`, s[i+1]) >= 0 || s[i+1] == '\n' || s[i+1] == '\r' {
				dst = append(dst, '\\', '\\')
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendStringField writes a double-quoted string field value, escaping
// '"' and '\', and writing newlines as the two characters \n.
func appendStringField(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendFloat writes v in the shortest form that reads back exactly,
// without an exponent in the usual range.
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(dst, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'e', -1, 64)
}
