package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/garner-metrics/garner/backends/prometheus"
)

var prometheusDefaults = prometheus.DefaultOptions()

var prometheusKeys = []key{
	{"prometheus.remote-write-url", kString, prometheusDefaults.RemoteWriteURL, "Remote write endpoint, e.g. http://127.0.0.1:9090/api/v1/write (Prometheus with --web.enable-remote-write-receiver) or http://127.0.0.1:8428/api/v1/write (VictoriaMetrics); required with the prometheus backend", false},
	{"prometheus.basic-auth-username", kString, prometheusDefaults.BasicAuthUsername, "HTTP basic auth user name for remote write; empty = no basic auth", false},
	{"prometheus.basic-auth-password", kString, prometheusDefaults.BasicAuthPassword, "HTTP basic auth password for remote write", false},
	{"prometheus.bearer-token", kString, prometheusDefaults.BearerToken, "Bearer token sent as \"Authorization: Bearer <token>\"; not with basic auth; empty = none", false},
	{"prometheus.metrics-per-batch", kInt, prometheusDefaults.MetricsPerBatch, "Most time series (one sample each) per remote write request; a flush is split into several requests beyond it", false},
	{"prometheus.max-requests", kInt, prometheusDefaults.MaxRequests, "Most remote write requests in flight at once", false},
	{"prometheus.timeout", kDuration, prometheusDefaults.Timeout, "Bound on one remote write request attempt; failed attempts are retried with backoff until backend-timeout", false},
	{"prometheus.headers.*", kString, nil, "Extra HTTP headers for remote write, one per line in a [prometheus.headers] table: <Header-Name> = \"value\" (e.g. X-Scope-OrgID = \"tenant-1\"); Authorization is set by the auth keys above", false},
}

func (c *Config) loadPrometheus(r *reader) {
	p := &c.Prometheus
	p.RemoteWriteURL = strings.TrimSpace(r.str("prometheus.remote-write-url"))
	p.BasicAuthUsername = r.str("prometheus.basic-auth-username")
	p.BasicAuthPassword = r.str("prometheus.basic-auth-password")
	p.BearerToken = r.str("prometheus.bearer-token")
	p.MetricsPerBatch = r.positiveInt("prometheus.metrics-per-batch")
	p.MaxRequests = r.positiveInt("prometheus.max-requests")
	p.Timeout = r.positiveDuration("prometheus.timeout")
	p.Headers = r.headerMap("prometheus.headers")

	if p.BearerToken != "" && (p.BasicAuthUsername != "" || p.BasicAuthPassword != "") {
		r.fail("prometheus.bearer-token", errors.New("set either bearer-token or basic-auth-username/-password, not both"))
	}
	if p.BasicAuthPassword != "" && p.BasicAuthUsername == "" {
		r.fail("prometheus.basic-auth-username", errors.New("required when basic-auth-password is set"))
	}
	if p.RemoteWriteURL != "" {
		if err := checkHTTPURL(p.RemoteWriteURL); err != nil {
			r.fail("prometheus.remote-write-url", err)
		}
	} else if contains(c.Backends, "prometheus") {
		r.fail("prometheus.remote-write-url", errors.New("required when the prometheus backend is enabled"))
	}
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
