package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/garner-metrics/garner/backends/otlp"
)

var otlpDefaults = otlp.DefaultOptions()

var otlpKeys = []key{
	{"otlp.metrics_endpoint", kString, otlpDefaults.MetricsEndpoint, "OTLP/HTTP protobuf metrics URL, e.g. http://127.0.0.1:4318/v1/metrics; required with the otlp backend", false},
	{"otlp.logs_endpoint", kString, otlpDefaults.LogsEndpoint, "OTLP/HTTP protobuf logs URL for events, e.g. http://127.0.0.1:4318/v1/logs; empty = events are not sent", false},
	{"otlp.max_requests", kInt, otlpDefaults.MaxRequests, "Most OTLP requests in flight at once (metrics and logs together)", false},
	{"otlp.max_retries", kInt, otlpDefaults.MaxRetries, "Retries of one failed request (network error, 408, 429, 5xx); 0 = no retry", false},
	{"otlp.max_request_elapsed_time", kDuration, otlpDefaults.MaxRequestElapsedTime, "Bound on one request with its retries; a bare number is seconds (gostatsd writes 15)", false},
	{"otlp.compress_payload", kBool, otlpDefaults.CompressPayload, "gzip request bodies (Content-Encoding: gzip)", false},
	{"otlp.metrics_per_batch", kInt, otlpDefaults.MetricsPerBatch, "Most metrics (one data point each) per request; a flush is split into several requests beyond it", false},
	{"otlp.resource_keys", kList, "", "Tag keys whose tags become resource attributes instead of data point attributes, space-separated (e.g. \"service env\")", false},
	{"otlp.conversion", kString, otlpDefaults.Conversion, "Timers as AsGauge (gauges <name>.lower, .upper, .count, ... and <name>.histogram{le}) or AsHistogram (OTLP histograms)", false},
	{"otlp.user_agent", kString, otlpDefaults.UserAgent, "User-Agent of OTLP requests; empty = garner/<version>", false},
}

func (c *Config) loadOTLP(r *reader) {
	o := &c.OTLP
	o.MetricsEndpoint = strings.TrimSpace(r.str("otlp.metrics_endpoint"))
	o.LogsEndpoint = strings.TrimSpace(r.str("otlp.logs_endpoint"))
	o.MaxRequests = r.positiveInt("otlp.max_requests")
	o.MaxRetries = r.int("otlp.max_retries")
	if o.MaxRetries < 0 {
		r.fail("otlp.max_retries", fmt.Errorf("must not be negative, got %d", o.MaxRetries))
	}
	o.MaxRequestElapsedTime = r.secondsOrDuration("otlp.max_request_elapsed_time")
	if o.MaxRequestElapsedTime <= 0 {
		r.fail("otlp.max_request_elapsed_time", fmt.Errorf("must be a positive duration, got %s", o.MaxRequestElapsedTime))
	}
	o.CompressPayload = r.bool("otlp.compress_payload")
	o.MetricsPerBatch = r.positiveInt("otlp.metrics_per_batch")
	o.ResourceKeys = r.list("otlp.resource_keys")
	o.UserAgent = r.str("otlp.user_agent")
	switch conv := r.str("otlp.conversion"); strings.ToLower(conv) {
	case "asgauge":
		o.Conversion = otlp.AsGauge
	case "ashistogram":
		o.Conversion = otlp.AsHistogram
	default:
		r.fail("otlp.conversion", fmt.Errorf("%q is not one of %s, %s", conv, otlp.AsGauge, otlp.AsHistogram))
	}
	if o.MetricsEndpoint != "" {
		if err := checkHTTPURL(o.MetricsEndpoint); err != nil {
			r.fail("otlp.metrics_endpoint", err)
		}
	} else if contains(c.Backends, "otlp") {
		r.fail("otlp.metrics_endpoint", errors.New("required when the otlp backend is enabled"))
	}
	if o.LogsEndpoint != "" {
		if err := checkHTTPURL(o.LogsEndpoint); err != nil {
			r.fail("otlp.logs_endpoint", err)
		}
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
