package config

import (
	"path/filepath"
	"testing"
)

func TestAuthKeys(t *testing.T) {
	adminFile := writeFile(t, "admin", "s3cret-admin\n")
	ingestFile := writeFile(t, "ingest", "s3cret-ingest\n")
	c := mustLoad(t, "--admin-token-file", adminFile, "--ingestion-token-file", ingestFile,
		"--config-path", writeFile(t, "f.toml", "[http-transport]\nbearer-token-file = \""+ingestFile+"\"\n"))
	if c.Admin.Token != "s3cret-admin" || c.Auth.IngestionToken != "s3cret-ingest" {
		t.Errorf("tokens from files: admin %q, ingestion %q", c.Admin.Token, c.Auth.IngestionToken)
	}
	if got := c.Forward.HTTPTransport.CustomHeaders["Authorization"]; got != "Bearer s3cret-ingest" {
		t.Errorf("forwarder Authorization header = %q", got)
	}
	if d := mustLoad(t, "--ingestion-token", "x"); d.Auth.IngestionToken != "x" || d.Admin.Token != "" {
		t.Errorf("ingestion-token: %+v, admin %q", d.Auth, d.Admin.Token)
	}

	empty := writeFile(t, "empty", "\n")
	requireBadConfigs(t, []badConfig{
		{name: "admin token twice", args: []string{"--admin-token=a", "--admin-token-file=" + adminFile}, wantKey: "admin-token-file"},
		{name: "token file missing", args: []string{"--ingestion-token-file=" + filepath.Join(t.TempDir(), "none")}, wantKey: "ingestion-token-file"},
		{name: "token file empty", args: []string{"--admin-token-file=" + empty}, wantKey: "admin-token-file"},
		{name: "same tokens", args: []string{"--admin-token=a", "--ingestion-token=a"}, wantKey: "ingestion-token"},
		{name: "socket mode not octal", args: []string{"--metrics-socket-mode=rw"}, wantKey: "metrics-socket-mode"},
		{name: "socket mode nobody can send", args: []string{"--metrics-socket-mode=0444"}, wantKey: "metrics-socket-mode"},
		{name: "bearer and custom Authorization", file: "[http-transport]\nbearer-token = \"t\"\n[http-transport.custom-headers]\nAuthorization = \"Basic x\"\n", wantKey: "http-transport.bearer-token"},
	})
}
