package config

import (
	"testing"
	"time"
)

// Tests of the [influxdb], [datadog] and [statsdaemon] sections.

func TestOutputSectionDefaults(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
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
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("default of %s is wrong: %+v %+v %+v", ch.name, c.InfluxDB, c.Datadog, c.Statsdaemon)
		}
	}
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
	c, err := Load([]string{"--config-path", path})
	if err != nil {
		t.Fatal(err)
	}
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
			c, err := Load([]string{"--config-path", writeFile(t, "c.toml", "[datadog]\ncompress_payload = "+tc.in+"\n")})
			if err != nil {
				t.Fatal(err)
			}
			if c.Datadog.Compression != tc.want {
				t.Errorf("compress_payload = %s: compression %q, want %q", tc.in, c.Datadog.Compression, tc.want)
			}
		})
	}
}

func TestOutputSectionsBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		wantKey string
	}{
		{"influxdb without endpoint", "backends = \"influxdb\"\n[influxdb]\norg = \"o\"\nbucket = \"b\"\n", "influxdb.api-endpoint"},
		{"influxdb endpoint not a URL", "[influxdb]\napi-endpoint = \"127.0.0.1:8086\"\n", "influxdb.api-endpoint"},
		{"influxdb api-version 3", "[influxdb]\napi-version = 3\n", "influxdb.api-version"},
		{"influxdb api-version text", "[influxdb]\napi-version = \"two\"\n", "influxdb.api-version"},
		{"influxdb v1 without database", "backends = \"influxdb\"\n[influxdb]\napi-endpoint = \"http://x:8086\"\napi-version = 1\n", "influxdb.database"},
		{"influxdb v2 without org", "backends = \"influxdb\"\n[influxdb]\napi-endpoint = \"http://x:8086\"\nbucket = \"b\"\n", "influxdb.org"},
		{"influxdb v2 without bucket", "backends = \"influxdb\"\n[influxdb]\napi-endpoint = \"http://x:8086\"\norg = \"o\"\n", "influxdb.bucket"},
		{"influxdb bad consistency", "[influxdb]\nconsistency = \"most\"\n", "influxdb.consistency"},
		{"influxdb bad compress", "[influxdb]\ncompress-payload = \"yes please\"\n", "influxdb.compress-payload"},
		{"influxdb zero batch", "[influxdb]\nmetrics-per-batch = 0\n", "influxdb.metrics-per-batch"},
		{"influxdb zero requests", "[influxdb]\nmax-requests = 0\n", "influxdb.max-requests"},
		{"influxdb elapsed without unit", "[influxdb]\nmax-request-elapsed-time = 15\n", "influxdb.max-request-elapsed-time"},
		{"influxdb unknown key", "[influxdb]\napi_endpoint = \"http://x\"\n", "influxdb.api_endpoint"},
		{"datadog without key", "backends = \"datadog\"\n", "datadog.api_key"},
		{"datadog bad endpoint", "[datadog]\napi_endpoint = \"api.datadoghq.com\"\n", "datadog.api_endpoint"},
		{"datadog empty endpoint", "[datadog]\napi_endpoint = \"\"\n", "datadog.api_endpoint"},
		{"datadog bad compression", "[datadog]\ncompress_payload = \"brotli\"\n", "datadog.compress_payload"},
		{"datadog zero batch", "[datadog]\nmetrics_per_batch = 0\n", "datadog.metrics_per_batch"},
		{"datadog negative requests", "[datadog]\nmax_requests = -2\n", "datadog.max_requests"},
		{"datadog bad elapsed", "[datadog]\nmax_request_elapsed_time = \"soon\"\n", "datadog.max_request_elapsed_time"},
		{"datadog zero timeout", "[datadog]\nclient_timeout = \"0s\"\n", "datadog.client_timeout"},
		{"statsdaemon without address", "backends = \"statsdaemon\"\n", "statsdaemon.address"},
		{"statsdaemon address without port", "[statsdaemon]\naddress = \"localhost\"\n", "statsdaemon.address"},
		{"statsdaemon bad bool", "[statsdaemon]\ntcp_transport = \"tcp\"\n", "statsdaemon.tcp_transport"},
		{"statsdaemon zero dial timeout", "[statsdaemon]\ndial_timeout = \"0s\"\n", "statsdaemon.dial_timeout"},
		{"statsdaemon negative write timeout", "[statsdaemon]\nwrite_timeout = \"-1s\"\n", "statsdaemon.write_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]string{"--config-path", writeFile(t, "c.toml", tc.file)})
			requireKeyError(t, err, tc.wantKey)
		})
	}
}
