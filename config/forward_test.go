package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/forwarder"
)

func TestForwardDefaults(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := c.Forward
	checks := []struct {
		name string
		ok   bool
	}{
		{"server-mode", f.ServerMode == ModeStandalone},
		{"protocol", f.HTTPTransport.Protocol == "v3"},
		{"flush-interval", f.HTTPTransport.FlushInterval == time.Second},
		{"max-requests", f.HTTPTransport.MaxRequests == 1000},
		{"max-request-elapsed-time", f.HTTPTransport.MaxRequestElapsedTime == 30*time.Second},
		{"compression", f.HTTPTransport.CompressionType == "zlib" && f.HTTPTransport.CompressionLevel == 9},
		{"client-timeout", f.HTTPTransport.ClientTimeout == 10*time.Second},
		{"custom-headers", len(f.HTTPTransport.CustomHeaders) == 0},
		{"max-buffer-size", f.HTTPTransport.MaxBufferSize == 64<<20},
		{"ingestion limits", f.Ingestion.MaxBodyBytes == 16<<20 && f.Ingestion.MaxDecompressedBytes == 64<<20},
		{"ingestion v3", f.Ingestion.ServeV3},
		{"dedup-window", f.Ingestion.DedupWindow == 5*time.Minute},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("default of %s is wrong: %+v", ch.name, f)
		}
	}
	// The key defaults are the forwarder's own.
	got := f.HTTPTransport
	got.CustomHeaders, got.DynamicHeaders = nil, nil
	if want := forwarder.DefaultOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("[http-transport] defaults\n%+v\nwant forwarder.DefaultOptions()\n%+v", got, want)
	}
}

func TestForwardFile(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		env   [2]string
		check func(f Forward) bool
	}{
		{
			name: "gostatsd forwarder file",
			file: `server-mode = "forwarder"
[http-transport]
api-endpoint = "http://agg-1:8080 http://agg-2:8080/"
max-request-elapsed-time = -1
consolidator-slots = 4
concurrent-merge = 2
transport = "default"
compress = false
dynamic-headers = ["region", "service"]
[http-transport.custom-headers]
x-region = "us-east-1"
`,
			check: func(f Forward) bool {
				return f.ServerMode == ModeForwarder && len(f.HTTPTransport.APIEndpoints) == 2 && f.HTTPTransport.APIEndpoints[1] == "http://agg-2:8080" &&
					f.HTTPTransport.MaxRequestElapsedTime < 0 && f.HTTPTransport.CompressionType == "none" && f.HTTPTransport.CustomHeaders["X-Region"] == "us-east-1" &&
					len(f.HTTPTransport.DynamicHeaders) == 2 && f.ConsolidatorSlots == 4
			},
		},
		{
			name: "custom headers as inline table",
			file: "[http-transport]\ncustom-headers = {service = \"api\"}\n",
			check: func(f Forward) bool {
				return f.HTTPTransport.CustomHeaders["Service"] == "api"
			},
		},
		{
			name: "zstd v3 and ingestion section",
			file: "[http-transport]\ncompression-type = \"zstd\"\ncompression-level = 3\n[ingestion]\nv3 = false\nmax-body-bytes = \"1MiB\"\n",
			check: func(f Forward) bool {
				return f.HTTPTransport.CompressionType == "zstd" && f.HTTPTransport.CompressionLevel == 3 && !f.Ingestion.ServeV3 && f.Ingestion.MaxBodyBytes == 1<<20
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.file != "" {
				args = []string{"--config-path", writeFile(t, "c.toml", tc.file)}
			}
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			c, err := Load(args)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c.Forward) {
				t.Fatalf("unexpected: %+v", c.Forward)
			}
		})
	}
}

func TestForwardBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		wantKey string
	}{
		{"forwarder without endpoint", "server-mode = \"forwarder\"\n", "http-transport.api-endpoint"},
		{"bad server mode", "server-mode = \"relay\"\n", "server-mode"},
		{"endpoint without scheme", "[http-transport]\napi-endpoint = \"agg:8080\"\n", "http-transport.api-endpoint"},
		{"endpoint with query", "[http-transport]\napi-endpoint = \"http://agg:8080/?x=1\"\n", "http-transport.api-endpoint"},
		{"bad protocol", "[http-transport]\nprotocol = \"v4\"\n", "http-transport.protocol"},
		{"zstd with v2", "[http-transport]\nprotocol = \"v2\"\ncompression-type = \"zstd\"\n", "http-transport.compression-type"},
		{"lz4", "[http-transport]\ncompression-type = \"lz4\"\n", "http-transport.compression-type"},
		{"level out of range", "[http-transport]\ncompression-level = 11\n", "http-transport.compression-level"},
		{"zero retry budget", "[http-transport]\nmax-request-elapsed-time = \"0s\"\n", "http-transport.max-request-elapsed-time"},
		{"negative dns refresh", "[http-transport]\ndns-refresh = \"-1s\"\n", "http-transport.dns-refresh"},
		{"custom headers not a table", "[http-transport]\ncustom-headers = \"{oops\"\n", "http-transport.custom-headers"},
		{"bad header name", "[http-transport.custom-headers]\n\"x a\" = \"b\"\n", "http-transport.custom-headers.x a"},
		{"header not a string", "[http-transport.custom-headers]\nx-a = 1\n", "http-transport.custom-headers.x-a"},
		{"unknown key", "[http-transport]\nmax-request = 3\n", "http-transport.max-request"},
		{"zero body limit", "[ingestion]\nmax-body-bytes = 0\n", "ingestion.max-body-bytes"},
		{"zero buffer age", "[http-transport]\nmax-buffer-age = \"0s\"\n", "http-transport.max-buffer-age"},
		{"negative v3 reprobe", "[http-transport]\nv3-reprobe-interval = \"-1m\"\n", "http-transport.v3-reprobe-interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]string{"--config-path", writeFile(t, "c.toml", tc.file)})
			requireKeyError(t, err, tc.wantKey)
		})
	}
}

// TestForwardEndpointPathNormalised (issue 15): an api-endpoint copied with
// its /v2/raw or /v3/raw path is taken without it, with one warning each.
func TestForwardEndpointPathNormalised(t *testing.T) {
	c, err := Load([]string{"--config-path", writeFile(t, "c.toml",
		"[http-transport]\napi-endpoint = \"http://agg-1:8080/v2/raw http://agg-2:8080/prefix/v3/raw/ http://agg-3:8080\"\nmax-buffer-age = \"3m\"\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://agg-1:8080", "http://agg-2:8080/prefix", "http://agg-3:8080"}
	if got := c.Forward.HTTPTransport.APIEndpoints; !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints %q, want %q", got, want)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "/v2/raw") || !strings.Contains(c.Warnings[1], "http://agg-2:8080/prefix") {
		t.Errorf("warnings %q, want one per normalised endpoint", c.Warnings)
	}
	if c.Forward.HTTPTransport.MaxBufferAge != 3*time.Minute {
		t.Errorf("max-buffer-age %v, want 3m", c.Forward.HTTPTransport.MaxBufferAge)
	}
}
