package config

import (
	"testing"
	"time"

	"github.com/garner-metrics/garner/backends/otlp"
)

// Tests of the [prometheus] and [otlp] sections.

func TestPrometheusSection(t *testing.T) {
	c, err := Load([]string{"--config-path", writeFile(t, "p.toml", `
backends = "prometheus"
[prometheus]
remote-write-url = "http://127.0.0.1:9090/api/v1/write"
bearer-token = "s3cret"
metrics-per-batch = 250
max-requests = 2
timeout = "3s"
[prometheus.headers]
X-Scope-OrgID = "tenant-1"
X-Other = "a, b"
`)})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Prometheus
	if p.RemoteWriteURL != "http://127.0.0.1:9090/api/v1/write" || p.BearerToken != "s3cret" ||
		p.MetricsPerBatch != 250 || p.MaxRequests != 2 || p.Timeout != 3*time.Second {
		t.Fatalf("got %+v", p)
	}
	if len(p.Headers) != 2 || p.Headers["X-Scope-Orgid"] != "tenant-1" || p.Headers["X-Other"] != "a, b" {
		t.Fatalf("headers = %v", p.Headers)
	}

	d := Default().Prometheus
	if d.MetricsPerBatch != 1000 || d.MaxRequests != 4 || d.Timeout != 5*time.Second || d.RemoteWriteURL != "" {
		t.Fatalf("defaults = %+v", d)
	}
}

func TestOTLPSection(t *testing.T) {
	cases := []struct {
		name        string
		file        string
		wantElapsed time.Duration
		wantConv    string
	}{
		{"gostatsd seconds", "max_request_elapsed_time = 20\nconversion = \"AsHistogram\"\n", 20 * time.Second, otlp.AsHistogram},
		{"seconds as string", "max_request_elapsed_time = \"7\"\nconversion = \"asgauge\"\n", 7 * time.Second, otlp.AsGauge},
		{"duration", "max_request_elapsed_time = \"1m30s\"\n", 90 * time.Second, otlp.AsGauge},
		{"default", "", 15 * time.Second, otlp.AsGauge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load([]string{"--config-path", writeFile(t, "o.toml", `
backends = "otlp"
[otlp]
metrics_endpoint = "http://127.0.0.1:4318/v1/metrics"
logs_endpoint = "http://127.0.0.1:4318/v1/logs"
resource_keys = ["service", "env"]
`+tc.file)})
			if err != nil {
				t.Fatal(err)
			}
			o := c.OTLP
			if o.MaxRequestElapsedTime != tc.wantElapsed || o.Conversion != tc.wantConv {
				t.Fatalf("elapsed %s conversion %q, want %s %q", o.MaxRequestElapsedTime, o.Conversion, tc.wantElapsed, tc.wantConv)
			}
			if o.LogsEndpoint != "http://127.0.0.1:4318/v1/logs" || len(o.ResourceKeys) != 2 || o.ResourceKeys[1] != "env" ||
				!o.CompressPayload || o.MaxRetries != 3 || o.MetricsPerBatch != 1000 || o.MaxRequests != 4 {
				t.Fatalf("got %+v", o)
			}
		})
	}
}

func TestRemoteBackendsBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		wantKey string
	}{
		{"prometheus without url", "backends = \"prometheus\"\n", "prometheus.remote-write-url"},
		{"prometheus url not http", "[prometheus]\nremote-write-url = \"ftp://x/y\"\n", "prometheus.remote-write-url"},
		{"prometheus url without host", "[prometheus]\nremote-write-url = \"http:///api/v1/write\"\n", "prometheus.remote-write-url"},
		{"prometheus token and basic auth", "[prometheus]\nbearer-token = \"t\"\nbasic-auth-username = \"u\"\n", "prometheus.bearer-token"},
		{"prometheus password without user", "[prometheus]\nbasic-auth-password = \"p\"\n", "prometheus.basic-auth-username"},
		{"prometheus zero batch", "[prometheus]\nmetrics-per-batch = 0\n", "prometheus.metrics-per-batch"},
		{"prometheus timeout without unit", "[prometheus]\ntimeout = 5\n", "prometheus.timeout"},
		{"prometheus bad header name", "[prometheus.headers]\n\"X Bad\" = \"v\"\n", "prometheus.headers.x bad"},
		{"prometheus header not a string", "[prometheus.headers]\nX-N = 3\n", "prometheus.headers.x-n"},
		{"prometheus unknown key", "[prometheus]\nremote_write_url = \"http://x\"\n", "prometheus.remote_write_url"},
		{"otlp without endpoint", "backends = \"otlp\"\n", "otlp.metrics_endpoint"},
		{"otlp bad logs endpoint", "[otlp]\nlogs_endpoint = \"localhost:4318\"\n", "otlp.logs_endpoint"},
		{"otlp bad conversion", "[otlp]\nconversion = \"AsSummary\"\n", "otlp.conversion"},
		{"otlp negative retries", "[otlp]\nmax_retries = -1\n", "otlp.max_retries"},
		{"otlp zero elapsed", "[otlp]\nmax_request_elapsed_time = 0\n", "otlp.max_request_elapsed_time"},
		{"otlp bad elapsed", "[otlp]\nmax_request_elapsed_time = \"soon\"\n", "otlp.max_request_elapsed_time"},
		{"otlp zero requests", "[otlp]\nmax_requests = 0\n", "otlp.max_requests"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]string{"--config-path", writeFile(t, "c.toml", tc.file)})
			requireKeyError(t, err, tc.wantKey)
		})
	}
}
