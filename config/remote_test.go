package config

import (
	"testing"
	"time"

	"github.com/garner-metrics/garner/backends/otlp"
)

// Tests of the [prometheus] and [otlp] sections.

func TestPrometheusSection(t *testing.T) {
	c := mustLoad(t, "--config-path", writeFile(t, "p.toml", `
backends = "prometheus"
[prometheus]
remote-write-url = "http://127.0.0.1:9090/api/v1/write"
bearer-token = "s3cret"
metrics-per-batch = 250
max-requests = 2
timeout = "3s"
timers = "Native-Histogram"
[prometheus.headers]
X-Scope-OrgID = "tenant-1"
X-Other = "a, b"
`))
	p := c.Prometheus
	if p.RemoteWriteURL != "http://127.0.0.1:9090/api/v1/write" || p.BearerToken != "s3cret" ||
		p.MetricsPerBatch != 250 || p.MaxRequests != 2 || p.Timeout != 3*time.Second || p.Timers != "native-histogram" {
		t.Fatalf("got %+v", p)
	}
	if len(p.Headers) != 2 || p.Headers["X-Scope-Orgid"] != "tenant-1" || p.Headers["X-Other"] != "a, b" {
		t.Fatalf("headers = %v", p.Headers)
	}

	d := Default().Prometheus
	if d.MetricsPerBatch != 1000 || d.MaxRequests != 4 || d.Timeout != 5*time.Second || d.RemoteWriteURL != "" || d.Timers != "summary" {
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
		{"exponential histogram", "conversion = \"asexponentialhistogram\"\n", 15 * time.Second, otlp.AsExponentialHistogram},
		{"seconds as string", "max_request_elapsed_time = \"7\"\nconversion = \"asgauge\"\n", 7 * time.Second, otlp.AsGauge},
		{"duration", "max_request_elapsed_time = \"1m30s\"\n", 90 * time.Second, otlp.AsGauge},
		{"default", "", 15 * time.Second, otlp.AsGauge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, "--config-path", writeFile(t, "o.toml", `
backends = "otlp"
[otlp]
metrics_endpoint = "http://127.0.0.1:4318/v1/metrics"
logs_endpoint = "http://127.0.0.1:4318/v1/logs"
resource_keys = ["service", "env"]
`+tc.file))
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
