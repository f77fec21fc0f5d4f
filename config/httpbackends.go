package config

// The sections of the HTTP backends: [influxdb], [datadog], [prometheus]
// and [otlp]. Each maps its keys onto the backend's Options and takes the
// key defaults from the backend's DefaultOptions.

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/garner-metrics/garner/backends/datadog"
	"github.com/garner-metrics/garner/backends/influxdb"
	"github.com/garner-metrics/garner/backends/otlp"
	"github.com/garner-metrics/garner/backends/prometheus"
)

var (
	influxdbDefaults   = influxdb.DefaultOptions()
	datadogDefaults    = datadog.DefaultOptions()
	prometheusDefaults = prometheus.DefaultOptions()
	otlpDefaults       = otlp.DefaultOptions()
)

var influxdbKeys = []key{
	{"influxdb.api-endpoint", kString, influxdbDefaults.APIEndpoint, "Base URL of InfluxDB (or anything that takes its line protocol, e.g. VictoriaMetrics), e.g. http://127.0.0.1:8086; required with the influxdb backend", false, nil},
	{"influxdb.api-version", kInt, influxdbDefaults.APIVersion, "Write API: 1 = POST /write?db=&rp=&consistency=, 2 = POST /api/v2/write?org=&bucket=", false, to(func(c *Config) any { return &c.InfluxDB.APIVersion })},
	{"influxdb.database", kString, influxdbDefaults.Database, "Database to write to (api-version 1; required there)", false, to(func(c *Config) any { return &c.InfluxDB.Database })},
	{"influxdb.retention-policy", kString, influxdbDefaults.RetentionPolicy, "Retention policy (api-version 1); empty = the database's default", false, to(func(c *Config) any { return &c.InfluxDB.RetentionPolicy })},
	{"influxdb.consistency", kString, influxdbDefaults.Consistency, "Write consistency (api-version 1, InfluxDB Enterprise): any, one, quorum, all; empty = server default", false, nil},
	{"influxdb.org", kString, influxdbDefaults.Org, "Organization (api-version 2; required there)", false, to(func(c *Config) any { return &c.InfluxDB.Org })},
	{"influxdb.bucket", kString, influxdbDefaults.Bucket, "Bucket (api-version 2; required there)", false, to(func(c *Config) any { return &c.InfluxDB.Bucket })},
	{"influxdb.credentials", kString, influxdbDefaults.Credentials, "Sent as \"Authorization: Token <credentials>\": an API token (v2) or \"user:password\" (v1); empty = none", false, to(func(c *Config) any { return &c.InfluxDB.Credentials })},
	{"influxdb.compress-payload", kBool, influxdbDefaults.CompressPayload, "Gzip request bodies", false, to(func(c *Config) any { return &c.InfluxDB.CompressPayload })},
	{"influxdb.metrics-per-batch", kInt, influxdbDefaults.MetricsPerBatch, "Most series (one line each) per write request; a flush is split into several requests beyond it", false, toPositive(func(c *Config) any { return &c.InfluxDB.MetricsPerBatch })},
	{"influxdb.max-requests", kInt, influxdbDefaults.MaxRequests, "Most write requests in flight at once (gostatsd's default is 10 per CPU)", false, toPositive(func(c *Config) any { return &c.InfluxDB.MaxRequests })},
	{"influxdb.max-request-elapsed-time", kDuration, influxdbDefaults.MaxRequestElapsedTime, "Time budget of one request, retries with exponential backoff included (connection errors, 408, 429, 5xx are retried); the batch is dropped and counted after it", false, toPositive(func(c *Config) any { return &c.InfluxDB.MaxRequestElapsedTime })},
	{"influxdb.timeout", kDuration, influxdbDefaults.Timeout, "Bound on one write request attempt", false, toPositive(func(c *Config) any { return &c.InfluxDB.Timeout })},
}

func (c *Config) loadInfluxDB(r *reader) {
	x := &c.InfluxDB
	x.APIEndpoint = strings.TrimRight(r.httpURL("influxdb.api-endpoint", c.requiredWith(influxdb.Name)), "/")
	x.Consistency = strings.ToLower(r.str("influxdb.consistency"))
	if x.APIVersion != 1 && x.APIVersion != 2 {
		r.fail("influxdb.api-version", fmt.Errorf("must be 1 or 2, got %d", x.APIVersion))
	}
	if !contains([]string{"", "any", "one", "quorum", "all"}, x.Consistency) {
		r.fail("influxdb.consistency", fmt.Errorf("%q is not one of any, one, quorum, all (or empty)", x.Consistency))
	}
	if !contains(c.Backends, influxdb.Name) {
		return
	}
	switch x.APIVersion {
	case 1:
		if x.Database == "" {
			r.fail("influxdb.database", errors.New("required with api-version 1"))
		}
	case 2:
		if x.Org == "" {
			r.fail("influxdb.org", errors.New("required with api-version 2"))
		}
		if x.Bucket == "" {
			r.fail("influxdb.bucket", errors.New("required with api-version 2"))
		}
	}
}

var datadogKeys = []key{
	{"datadog.api_key", kString, datadogDefaults.APIKey, "Datadog API key, sent as the DD-API-KEY header; required with the datadog backend", false, nil},
	{"datadog.api_endpoint", kString, datadogDefaults.APIEndpoint, "Base URL of the Datadog API (series go to <api_endpoint>/api/v1/series); e.g. https://api.datadoghq.eu, or http://127.0.0.1:8428/datadog for VictoriaMetrics", false, nil},
	{"datadog.compress_payload", kString, true /* deflate, as datadog.DefaultOptions */, "Request body compression: true or \"deflate\" (zlib, gostatsd's), \"gzip\", false or \"none\"", false, nil},
	{"datadog.metrics_per_batch", kInt, datadogDefaults.MetricsPerBatch, "Most garner series per request (a timer is ~14 Datadog series); a flush is split into several requests beyond it", false, toPositive(func(c *Config) any { return &c.Datadog.MetricsPerBatch })},
	{"datadog.max_requests", kInt, datadogDefaults.MaxRequests, "Most requests in flight at once (gostatsd's default is 10 per CPU)", false, toPositive(func(c *Config) any { return &c.Datadog.MaxRequests })},
	{"datadog.max_request_elapsed_time", kDuration, datadogDefaults.MaxRequestElapsedTime, "Time budget of one request, retries with exponential backoff included (connection errors, 408, 429, 5xx are retried); the batch is dropped and counted after it", false, toPositive(func(c *Config) any { return &c.Datadog.MaxRequestElapsedTime })},
	{"datadog.client_timeout", kDuration, datadogDefaults.ClientTimeout, "Bound on one request attempt", false, toPositive(func(c *Config) any { return &c.Datadog.ClientTimeout })},
	{"datadog.user-agent", kString, datadogDefaults.UserAgent, "User-Agent header of every request", false, to(func(c *Config) any { return &c.Datadog.UserAgent })},
}

func (c *Config) loadDatadog(r *reader) {
	d := &c.Datadog
	d.APIKey = strings.TrimSpace(r.str("datadog.api_key"))
	d.APIEndpoint = strings.TrimRight(r.httpURL("datadog.api_endpoint", "must not be empty"), "/")
	switch s := strings.ToLower(strings.TrimSpace(r.str("datadog.compress_payload"))); s {
	case "true", "deflate", "zlib":
		d.Compression = "deflate"
	case "gzip":
		d.Compression = "gzip"
	case "false", "none", "":
		d.Compression = ""
	default:
		r.fail("datadog.compress_payload", fmt.Errorf("%q is not one of true, false, deflate, gzip, none", s))
	}
	if missing := c.requiredWith(datadog.Name); missing != "" && d.APIKey == "" {
		r.fail("datadog.api_key", errors.New(missing))
	}
}

var prometheusKeys = []key{
	{"prometheus.remote-write-url", kString, prometheusDefaults.RemoteWriteURL, "Remote write endpoint, e.g. http://127.0.0.1:9090/api/v1/write (Prometheus with --web.enable-remote-write-receiver) or http://127.0.0.1:8428/api/v1/write (VictoriaMetrics); required with the prometheus backend", false, nil},
	{"prometheus.basic-auth-username", kString, prometheusDefaults.BasicAuthUsername, "HTTP basic auth user name for remote write; empty = no basic auth", false, to(func(c *Config) any { return &c.Prometheus.BasicAuthUsername })},
	{"prometheus.basic-auth-password", kString, prometheusDefaults.BasicAuthPassword, "HTTP basic auth password for remote write", false, to(func(c *Config) any { return &c.Prometheus.BasicAuthPassword })},
	{"prometheus.bearer-token", kString, prometheusDefaults.BearerToken, "Bearer token sent as \"Authorization: Bearer <token>\"; not with basic auth; empty = none", false, to(func(c *Config) any { return &c.Prometheus.BearerToken })},
	{"prometheus.metrics-per-batch", kInt, prometheusDefaults.MetricsPerBatch, "Most time series (one sample each) per remote write request; a flush is split into several requests beyond it", false, toPositive(func(c *Config) any { return &c.Prometheus.MetricsPerBatch })},
	{"prometheus.max-requests", kInt, prometheusDefaults.MaxRequests, "Most remote write requests in flight at once", false, toPositive(func(c *Config) any { return &c.Prometheus.MaxRequests })},
	{"prometheus.timeout", kDuration, prometheusDefaults.Timeout, "Bound on one remote write request attempt; failed attempts are retried with backoff until backend-timeout", false, toPositive(func(c *Config) any { return &c.Prometheus.Timeout })},
	{"prometheus.timers", kString, prometheusDefaults.Timers, "Timers as \"summary\" (<name>{quantile} of the interval, running <name>_sum and <name>_count) or \"native-histogram\" (one cumulative native histogram <name>, from the exponential histogram of timer-aggregation = \"histogram\" or built from the raw values in exact mode; Prometheus needs --enable-feature=native-histograms); gsd_histogram timers stay classic histograms", false, nil},
	{"prometheus.headers.*", kString, nil, "Extra HTTP headers for remote write, one per line in a [prometheus.headers] table: <Header-Name> = \"value\" (e.g. X-Scope-OrgID = \"tenant-1\"); Authorization is set by the auth keys above", false, nil},
}

func (c *Config) loadPrometheus(r *reader) {
	p := &c.Prometheus
	p.RemoteWriteURL = r.httpURL("prometheus.remote-write-url", c.requiredWith(prometheus.Name))
	p.Headers = r.headerMap("prometheus.headers")
	p.Timers = r.oneOf("prometheus.timers", prometheus.TimersSummary, prometheus.TimersNativeHistogram)
	if p.BearerToken != "" && (p.BasicAuthUsername != "" || p.BasicAuthPassword != "") {
		r.fail("prometheus.bearer-token", errors.New("set either bearer-token or basic-auth-username/-password, not both"))
	}
	if p.BasicAuthPassword != "" && p.BasicAuthUsername == "" {
		r.fail("prometheus.basic-auth-username", errors.New("required when basic-auth-password is set"))
	}
}

// httpURL reads key as an absolute http(s) URL (white space trimmed). An
// empty value fails with the message missing, unless missing is "".
func (r *reader) httpURL(key, missing string) string {
	u := strings.TrimSpace(r.str(key))
	switch {
	case u != "":
		if err := checkHTTPURL(u); err != nil {
			r.fail(key, err)
		}
	case missing != "":
		r.fail(key, errors.New(missing))
	}
	return u
}

// requiredWith is the message for a key that backend needs when it is
// enabled, "" when it is not.
func (c *Config) requiredWith(backend string) string {
	if !contains(c.Backends, backend) {
		return ""
	}
	return "required when the " + backend + " backend is enabled"
}

// checkHTTPURL accepts an absolute http or https URL with a host.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	return nil
}

var otlpKeys = []key{
	{"otlp.metrics_endpoint", kString, otlpDefaults.MetricsEndpoint, "OTLP/HTTP protobuf metrics URL, e.g. http://127.0.0.1:4318/v1/metrics; required with the otlp backend", false, nil},
	{"otlp.logs_endpoint", kString, otlpDefaults.LogsEndpoint, "OTLP/HTTP protobuf logs URL for events, e.g. http://127.0.0.1:4318/v1/logs; empty = events are not sent", false, nil},
	{"otlp.max_requests", kInt, otlpDefaults.MaxRequests, "Most OTLP requests in flight at once (metrics and logs together)", false, toPositive(func(c *Config) any { return &c.OTLP.MaxRequests })},
	{"otlp.max_retries", kInt, otlpDefaults.MaxRetries, "Retries of one failed request (network error, 408, 429, 5xx); 0 = no retry", false, toNonNegative(func(c *Config) any { return &c.OTLP.MaxRetries })},
	{"otlp.max_request_elapsed_time", kDuration, otlpDefaults.MaxRequestElapsedTime, "Bound on one request with its retries; a bare number is seconds (gostatsd writes 15)", false, nil},
	{"otlp.compress_payload", kBool, otlpDefaults.CompressPayload, "gzip request bodies (Content-Encoding: gzip)", false, to(func(c *Config) any { return &c.OTLP.CompressPayload })},
	{"otlp.metrics_per_batch", kInt, otlpDefaults.MetricsPerBatch, "Most metrics (one data point each) per request; a flush is split into several requests beyond it", false, toPositive(func(c *Config) any { return &c.OTLP.MetricsPerBatch })},
	{"otlp.resource_keys", kList, "", "Tag keys whose tags become resource attributes instead of data point attributes, space-separated (e.g. \"service env\")", false, to(func(c *Config) any { return &c.OTLP.ResourceKeys })},
	{"otlp.conversion", kString, otlpDefaults.Conversion, "Timers as AsGauge (gauges <name>.lower, .upper, .count, ... and <name>.histogram{le}), AsHistogram (OTLP histograms: count, sum, min, max, gsd_histogram buckets) or AsExponentialHistogram (OTLP exponential histograms, from the exponential histogram of timer-aggregation = \"histogram\" or built from the raw values in exact mode)", false, nil},
	{"otlp.user_agent", kString, otlpDefaults.UserAgent, "User-Agent of OTLP requests; empty = garner/<version>", false, to(func(c *Config) any { return &c.OTLP.UserAgent })},
}

func (c *Config) loadOTLP(r *reader) {
	o := &c.OTLP
	o.MetricsEndpoint = r.httpURL("otlp.metrics_endpoint", c.requiredWith(otlp.Name))
	o.LogsEndpoint = r.httpURL("otlp.logs_endpoint", "")
	o.MaxRequestElapsedTime = r.secondsOrDuration("otlp.max_request_elapsed_time")
	if o.MaxRequestElapsedTime <= 0 {
		r.fail("otlp.max_request_elapsed_time", fmt.Errorf("must be a positive duration, got %s", o.MaxRequestElapsedTime))
	}
	conversions := []string{otlp.AsGauge, otlp.AsHistogram, otlp.AsExponentialHistogram}
	conv := r.str("otlp.conversion")
	lower := strings.ToLower(conv) // not EqualFold, which also takes "ſ" for "s"
	for _, name := range conversions {
		if lower == strings.ToLower(name) {
			o.Conversion = name
		}
	}
	if o.Conversion == "" {
		r.fail("otlp.conversion", fmt.Errorf("%q is not one of %s", conv, strings.Join(conversions, ", ")))
	}
}

// secondsOrDuration reads a duration that gostatsd wrote as a whole number
// of seconds: 15 (or "15") is 15s; "1m" and other Go durations work too.
func (r *reader) secondsOrDuration(key string) (d time.Duration) {
	defer func() { r.note(key, d.String()) }()
	switch x := r.v.Get(key).(type) {
	case int, int64, float64:
		n := r.int(key)
		return time.Duration(n) * time.Second
	case string:
		s := strings.TrimSpace(x)
		if s != "" && strings.Trim(s, "0123456789") == "" {
			return time.Duration(r.int(key)) * time.Second
		}
	}
	return r.duration(key)
}
