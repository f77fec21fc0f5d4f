package config

import (
	"reflect"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/health"
)

func TestAdminDefaults(t *testing.T) {
	c := mustLoad(t)
	want := Admin{
		Addr: "127.0.0.1:8126", HealthBasePath: "/health", ShutdownGrace: 2 * time.Second,
		Health: health.Options{Interval: 10 * time.Second, Timeout: 5 * time.Second, History: 100, Window: 20},
	}
	if !reflect.DeepEqual(c.Admin, want) {
		t.Fatalf("Admin = %+v\nwant    %+v", c.Admin, want)
	}
}

// TestHTTPServers: gostatsd's http-servers with [http.<name>] sections, and
// its per-server defaults.
func TestHTTPServers(t *testing.T) {
	path := writeFile(t, "h.toml", `
http-servers = "lb Ingest"
admin-addr = ""
enable-prof = true
health-base-path = "probes/"

[http.lb]
address = "0.0.0.0:9000"

[http.ingest]
address = "127.0.0.1:9001"
enable-ingestion = true
enable-healthcheck = false
enable-expvar = "true"
`)
	c := mustLoad(t, "--config-path", path)
	want := []HTTPServer{
		{Name: "lb", Address: "0.0.0.0:9000", EnableHealthcheck: true},
		{Name: "ingest", Address: "127.0.0.1:9001", EnableIngestion: true, EnableExpvar: true},
	}
	if !reflect.DeepEqual(c.Admin.HTTPServers, want) {
		t.Fatalf("HTTPServers = %+v\nwant %+v", c.Admin.HTTPServers, want)
	}
	if c.Admin.Addr != "" || !c.Admin.EnableProf || c.Admin.HealthBasePath != "/probes" {
		t.Fatalf("Admin = %+v", c.Admin)
	}

	// A listed server without a section gets gostatsd's defaults.
	c = mustLoad(t, "--http-servers=plain")
	if want := []HTTPServer{{Name: "plain", Address: "127.0.0.1:8080", EnableHealthcheck: true}}; !reflect.DeepEqual(c.Admin.HTTPServers, want) {
		t.Fatalf("HTTPServers = %+v", c.Admin.HTTPServers)
	}

	// The token from the environment.
	t.Setenv("GARNER_ADMIN_TOKEN", "tok")
	c, err := Load(nil)
	if err != nil || c.Admin.Token != "tok" {
		t.Fatalf("token from env: %q, %v", c.Admin.Token, err)
	}
}

func TestBadAdminConfig(t *testing.T) {
	requireBadConfigs(t, []badConfig{
		{name: "admin-addr without port", args: []string{"--admin-addr=localhost"}, wantKey: "admin-addr"},
		{name: "base path is the root", args: []string{"--health-base-path=/"}, wantKey: "health-base-path"},
		{name: "base path with a pattern", args: []string{"--health-base-path=/{x}"}, wantKey: "health-base-path"},
		{name: "negative grace", args: []string{"--shutdown-grace=-1s"}, wantKey: "shutdown-grace"},
		{name: "grace without unit", file: "shutdown-grace = 2\n", wantKey: "shutdown-grace"},
		{name: "timeout over interval", args: []string{"--dependency-check-interval=1s", "--dependency-check-timeout=2s"}, wantKey: "dependency-check-timeout"},
		{name: "zero history", args: []string{"--dependency-history=0"}, wantKey: "dependency-history"},
		{name: "bad server name", args: []string{"--http-servers=a/b"}, wantKey: "http-servers"},
		{name: "server listed twice", args: []string{"--http-servers=a A"}, wantKey: "http-servers"},
		{name: "section not listed", file: "http-servers = \"a\"\n[http.b]\naddress = \"127.0.0.1:1\"\n", wantKey: "http.b"},
		{name: "bad server address", file: "http-servers = \"a\"\n[http.a]\naddress = \"nowhere\"\n", wantKey: "http.a.address"},
		{name: "bad server bool", file: "http-servers = \"a\"\n[http.a]\nenable-prof = \"perhaps\"\n", wantKey: "http.a.enable-prof"},
		{name: "unknown server key", file: "http-servers = \"a\"\n[http.a]\nenable-everything = true\n", wantKey: "http.a.enable-everything"},
		{name: "server on the admin address", file: "http-servers = \"a\"\n[http.a]\naddress = \"127.0.0.1:8126\"\n", wantKey: "http.a.address"},
		{name: "bad enable-prof", file: "enable-prof = \"sometimes\"\n", wantKey: "enable-prof"},
	})
}
