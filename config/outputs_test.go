package config

import (
	"testing"
	"time"
)

// Tests of the [influxdb], [datadog] and [statsdaemon] sections, and the
// refused configurations of every output section.

func TestOutputSectionDefaults(t *testing.T) {
	c := mustLoad(t)
	requireChecks(t, []any{c.InfluxDB, c.Datadog, c.Statsdaemon}, []check{
		{"influxdb.api-version", c.InfluxDB.APIVersion == 2},
		{"influxdb.compress-payload", c.InfluxDB.CompressPayload},
		{"influxdb.metrics-per-batch", c.InfluxDB.MetricsPerBatch == 5000},
		{"influxdb.max-requests", c.InfluxDB.MaxRequests == 10},
		{"influxdb.max-request-elapsed-time", c.InfluxDB.MaxRequestElapsedTime == 15*time.Second},
		{"influxdb.timeout", c.InfluxDB.Timeout == 10*time.Second},
		{"datadog.api_endpoint", c.Datadog.APIEndpoint == "https://api.datadoghq.com"},
		{"datadog.compress_payload", c.Datadog.Compression == "deflate"},
		{"datadog.metrics_per_batch", c.Datadog.MetricsPerBatch == 1000},
		{"datadog.max_request_elapsed_time", c.Datadog.MaxRequestElapsedTime == 15*time.Second},
		{"datadog.client_timeout", c.Datadog.ClientTimeout == 9*time.Second},
		{"datadog.user-agent", c.Datadog.UserAgent == "garner"},
		{"statsdaemon.tcp_transport", !c.Statsdaemon.TCPTransport},
		{"statsdaemon.dial_timeout", c.Statsdaemon.DialTimeout == 5*time.Second},
		{"statsdaemon.write_timeout", c.Statsdaemon.WriteTimeout == 30*time.Second},
	})
}

func TestOutputSectionsFromFile(t *testing.T) {
	path := writeFile(t, "o.toml", `
backends = "influxdb datadog statsdaemon"
[influxdb]
api-endpoint = "http://127.0.0.1:8086/"
api-version = 1
database = "stats"
retention-policy = "short"
consistency = "QUORUM"
credentials = "u:p"
compress-payload = false
metrics-per-batch = 10
max-requests = 3
max-request-elapsed-time = "2s"
[datadog]
api_key = "k"
api_endpoint = "http://127.0.0.1:8428/datadog"
compress_payload = "gzip"
metrics_per_batch = 7
max_requests = 2
user-agent = "ua"
[statsdaemon]
address = "127.0.0.1:8125"
tcp_transport = true
disable_tags = true
write_timeout = "0"
`)
	c := mustLoad(t, "--config-path", path)
	i, d, s := c.InfluxDB, c.Datadog, c.Statsdaemon
	if i.APIEndpoint != "http://127.0.0.1:8086" || i.APIVersion != 1 || i.Database != "stats" || i.RetentionPolicy != "short" ||
		i.Consistency != "quorum" || i.Credentials != "u:p" || i.CompressPayload || i.MetricsPerBatch != 10 ||
		i.MaxRequests != 3 || i.MaxRequestElapsedTime != 2*time.Second {
		t.Errorf("influxdb: %+v", i)
	}
	if d.APIKey != "k" || d.APIEndpoint != "http://127.0.0.1:8428/datadog" || d.Compression != "gzip" ||
		d.MetricsPerBatch != 7 || d.MaxRequests != 2 || d.UserAgent != "ua" {
		t.Errorf("datadog: %+v", d)
	}
	if s.Address != "127.0.0.1:8125" || !s.TCPTransport || !s.DisableTags || s.WriteTimeout != 0 {
		t.Errorf("statsdaemon: %+v", s)
	}
}

func TestDatadogCompressPayload(t *testing.T) {
	cases := []struct{ in, want string }{
		{"true", "deflate"}, {"false", ""}, {`"deflate"`, "deflate"}, {`"gzip"`, "gzip"}, {`"none"`, ""}, {`"GZIP"`, "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			c := mustLoad(t, "--config-path", writeFile(t, "c.toml", "[datadog]\ncompress_payload = "+tc.in+"\n"))
			if c.Datadog.Compression != tc.want {
				t.Errorf("compress_payload = %s: compression %q, want %q", tc.in, c.Datadog.Compression, tc.want)
			}
		})
	}
}

func TestOutputSectionsBadConfig(t *testing.T) {
	requireBadConfigs(t, []badConfig{
		{name: "influxdb without endpoint", file: "backends = \"influxdb\"\n[influxdb]\norg = \"o\"\nbucket = \"b\"\n", wantKey: "influxdb.api-endpoint"},
		{name: "influxdb endpoint not a URL", file: "[influxdb]\napi-endpoint = \"127.0.0.1:8086\"\n", wantKey: "influxdb.api-endpoint"},
		{name: "influxdb api-version 3", file: "[influxdb]\napi-version = 3\n", wantKey: "influxdb.api-version"},
		{name: "influxdb api-version text", file: "[influxdb]\napi-version = \"two\"\n", wantKey: "influxdb.api-version"},
		{name: "influxdb v1 without database", file: "backends = \"influxdb\"\n[influxdb]\napi-endpoint = \"http://x:8086\"\napi-version = 1\n", wantKey: "influxdb.database"},
		{name: "influxdb v2 without org", file: "backends = \"influxdb\"\n[influxdb]\napi-endpoint = \"http://x:8086\"\nbucket = \"b\"\n", wantKey: "influxdb.org"},
		{name: "influxdb v2 without bucket", file: "backends = \"influxdb\"\n[influxdb]\napi-endpoint = \"http://x:8086\"\norg = \"o\"\n", wantKey: "influxdb.bucket"},
		{name: "influxdb bad consistency", file: "[influxdb]\nconsistency = \"most\"\n", wantKey: "influxdb.consistency"},
		{name: "influxdb bad compress", file: "[influxdb]\ncompress-payload = \"yes please\"\n", wantKey: "influxdb.compress-payload"},
		{name: "influxdb zero batch", file: "[influxdb]\nmetrics-per-batch = 0\n", wantKey: "influxdb.metrics-per-batch"},
		{name: "influxdb zero requests", file: "[influxdb]\nmax-requests = 0\n", wantKey: "influxdb.max-requests"},
		{name: "influxdb elapsed without unit", file: "[influxdb]\nmax-request-elapsed-time = 15\n", wantKey: "influxdb.max-request-elapsed-time"},
		{name: "influxdb unknown key", file: "[influxdb]\napi_endpoint = \"http://x\"\n", wantKey: "influxdb.api_endpoint"},
		{name: "datadog without key", file: "backends = \"datadog\"\n", wantKey: "datadog.api_key"},
		{name: "datadog bad endpoint", file: "[datadog]\napi_endpoint = \"api.datadoghq.com\"\n", wantKey: "datadog.api_endpoint"},
		{name: "datadog empty endpoint", file: "[datadog]\napi_endpoint = \"\"\n", wantKey: "datadog.api_endpoint"},
		{name: "datadog bad compression", file: "[datadog]\ncompress_payload = \"brotli\"\n", wantKey: "datadog.compress_payload"},
		{name: "datadog zero batch", file: "[datadog]\nmetrics_per_batch = 0\n", wantKey: "datadog.metrics_per_batch"},
		{name: "datadog negative requests", file: "[datadog]\nmax_requests = -2\n", wantKey: "datadog.max_requests"},
		{name: "datadog bad elapsed", file: "[datadog]\nmax_request_elapsed_time = \"soon\"\n", wantKey: "datadog.max_request_elapsed_time"},
		{name: "datadog zero timeout", file: "[datadog]\nclient_timeout = \"0s\"\n", wantKey: "datadog.client_timeout"},
		{name: "statsdaemon without address", file: "backends = \"statsdaemon\"\n", wantKey: "statsdaemon.address"},
		{name: "statsdaemon address without port", file: "[statsdaemon]\naddress = \"localhost\"\n", wantKey: "statsdaemon.address"},
		{name: "statsdaemon bad bool", file: "[statsdaemon]\ntcp_transport = \"tcp\"\n", wantKey: "statsdaemon.tcp_transport"},
		{name: "statsdaemon zero dial timeout", file: "[statsdaemon]\ndial_timeout = \"0s\"\n", wantKey: "statsdaemon.dial_timeout"},
		{name: "statsdaemon negative write timeout", file: "[statsdaemon]\nwrite_timeout = \"-1s\"\n", wantKey: "statsdaemon.write_timeout"},
		{name: "prometheus without url", file: "backends = \"prometheus\"\n", wantKey: "prometheus.remote-write-url"},
		{name: "prometheus url not http", file: "[prometheus]\nremote-write-url = \"ftp://x/y\"\n", wantKey: "prometheus.remote-write-url"},
		{name: "prometheus url without host", file: "[prometheus]\nremote-write-url = \"http:///api/v1/write\"\n", wantKey: "prometheus.remote-write-url"},
		{name: "prometheus token and basic auth", file: "[prometheus]\nbearer-token = \"t\"\nbasic-auth-username = \"u\"\n", wantKey: "prometheus.bearer-token"},
		{name: "prometheus password without user", file: "[prometheus]\nbasic-auth-password = \"p\"\n", wantKey: "prometheus.basic-auth-username"},
		{name: "prometheus zero batch", file: "[prometheus]\nmetrics-per-batch = 0\n", wantKey: "prometheus.metrics-per-batch"},
		{name: "prometheus unknown timers", file: "[prometheus]\ntimers = \"histogram\"\n", wantKey: "prometheus.timers"},
		{name: "prometheus timeout without unit", file: "[prometheus]\ntimeout = 5\n", wantKey: "prometheus.timeout"},
		{name: "prometheus bad header name", file: "[prometheus.headers]\n\"X Bad\" = \"v\"\n", wantKey: "prometheus.headers.x bad"},
		{name: "prometheus header not a string", file: "[prometheus.headers]\nX-N = 3\n", wantKey: "prometheus.headers.x-n"},
		{name: "prometheus unknown key", file: "[prometheus]\nremote_write_url = \"http://x\"\n", wantKey: "prometheus.remote_write_url"},
		{name: "otlp without endpoint", file: "backends = \"otlp\"\n", wantKey: "otlp.metrics_endpoint"},
		{name: "otlp bad logs endpoint", file: "[otlp]\nlogs_endpoint = \"localhost:4318\"\n", wantKey: "otlp.logs_endpoint"},
		{name: "otlp bad conversion", file: "[otlp]\nconversion = \"AsSummary\"\n", wantKey: "otlp.conversion"},
		{name: "otlp negative retries", file: "[otlp]\nmax_retries = -1\n", wantKey: "otlp.max_retries"},
		{name: "otlp zero elapsed", file: "[otlp]\nmax_request_elapsed_time = 0\n", wantKey: "otlp.max_request_elapsed_time"},
		{name: "otlp bad elapsed", file: "[otlp]\nmax_request_elapsed_time = \"soon\"\n", wantKey: "otlp.max_request_elapsed_time"},
		{name: "otlp zero requests", file: "[otlp]\nmax_requests = 0\n", wantKey: "otlp.max_requests"},
	})
}
