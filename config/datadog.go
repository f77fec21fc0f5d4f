package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/garner-metrics/garner/backends/datadog"
)

var datadogDefaults = datadog.DefaultOptions()

var datadogKeys = []key{
	{"datadog.api_key", kString, datadogDefaults.APIKey, "Datadog API key, sent as the DD-API-KEY header; required with the datadog backend", false},
	{"datadog.api_endpoint", kString, datadogDefaults.APIEndpoint, "Base URL of the Datadog API (series go to <api_endpoint>/api/v1/series); e.g. https://api.datadoghq.eu, or http://127.0.0.1:8428/datadog for VictoriaMetrics", false},
	{"datadog.compress_payload", kString, true /* deflate, as datadog.DefaultOptions */, "Request body compression: true or \"deflate\" (zlib, gostatsd's), \"gzip\", false or \"none\"", false},
	{"datadog.metrics_per_batch", kInt, datadogDefaults.MetricsPerBatch, "Most garner series per request (a timer is ~14 Datadog series); a flush is split into several requests beyond it", false},
	{"datadog.max_requests", kInt, datadogDefaults.MaxRequests, "Most requests in flight at once (gostatsd's default is 10 per CPU)", false},
	{"datadog.max_request_elapsed_time", kDuration, datadogDefaults.MaxRequestElapsedTime, "Time budget of one request, retries with exponential backoff included (connection errors, 408, 429, 5xx are retried); the batch is dropped and counted after it", false},
	{"datadog.client_timeout", kDuration, datadogDefaults.ClientTimeout, "Bound on one request attempt", false},
	{"datadog.user-agent", kString, datadogDefaults.UserAgent, "User-Agent header of every request", false},
}

func (c *Config) loadDatadog(r *reader) {
	d := &c.Datadog
	d.APIKey = strings.TrimSpace(r.str("datadog.api_key"))
	d.APIEndpoint = strings.TrimRight(strings.TrimSpace(r.str("datadog.api_endpoint")), "/")
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
	d.MetricsPerBatch = r.positiveInt("datadog.metrics_per_batch")
	d.MaxRequests = r.positiveInt("datadog.max_requests")
	d.MaxRequestElapsedTime = r.positiveDuration("datadog.max_request_elapsed_time")
	d.ClientTimeout = r.positiveDuration("datadog.client_timeout")
	d.UserAgent = r.str("datadog.user-agent")
	if d.APIEndpoint == "" {
		r.fail("datadog.api_endpoint", errors.New("must not be empty"))
	} else if err := checkHTTPURL(d.APIEndpoint); err != nil {
		r.fail("datadog.api_endpoint", err)
	}
	if contains(c.Backends, "datadog") && d.APIKey == "" {
		r.fail("datadog.api_key", errors.New("required when the datadog backend is enabled"))
	}
}
