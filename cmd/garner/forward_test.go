package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/garner-metrics/garner/config"
)

// TestForwarderModeLeavesConfig: forwarder mode adjusts a copy for the
// pipeline; the loaded config (what SIGHUP reloads compare) stays as loaded.
func TestForwarderModeLeavesConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garner.toml")
	body := "server-mode = \"forwarder\"\nbackends = \"graphite\"\nflush-interval = \"10s\"\nflush-aligned = true\n" +
		"[http-transport]\napi-endpoint = \"http://agg:8080\"\nflush-interval = \"2s\"\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--config-path", path})
	if err != nil {
		t.Fatal(err)
	}
	loaded := *cfg
	pc := forwarderMode(cfg)
	if !reflect.DeepEqual(*cfg, loaded) {
		t.Fatal("forwarderMode changed the loaded config")
	}
	if pc == cfg || pc.Backends != nil || pc.FlushInterval != 2*time.Second || pc.FlushAligned ||
		pc.BackendTimeout != 2*time.Second || pc.Expiry.Counter != -1 {
		t.Fatalf("pipeline config not adjusted for forwarder mode: %+v", pc)
	}
	cfg.Forward.ServerMode = config.ModeStandalone
	if forwarderMode(cfg) != cfg {
		t.Fatal("standalone mode: want the config itself")
	}
}
