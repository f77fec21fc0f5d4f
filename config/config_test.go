package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/model"
)

var update = flag.Bool("update", false, "rewrite config/garner.example.toml")

func TestExample(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteExample(&buf); err != nil {
		t.Fatal(err)
	}
	const path = "garner.example.toml"
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("%s is out of date with the key tables: run go test ./config -run TestExample -update", path)
	}
	for _, k := range allKeys() {
		if !strings.Contains(buf.String(), k.usage) {
			t.Errorf("key %q is not documented in the example", k.name)
		}
	}
}

// TestExampleUncommented loads the example with every static key set to its
// documented default: the documented defaults must be valid values.
func TestExampleUncommented(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteExample(&buf); err != nil {
		t.Fatal(err)
	}
	var out []string
	inDynamic := false
	keyLine := regexp.MustCompile(`^#([a-z0-9_-]+) = `)
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "#[") {
			inDynamic = strings.Contains(line, "<name>")
			if !inDynamic {
				out = append(out, line[1:])
			}
			continue
		}
		if !inDynamic && keyLine.MatchString(line) {
			line = line[1:]
			if i := strings.Index(line, " # "); i >= 0 {
				line = line[:i]
			}
		}
		out = append(out, line)
	}
	path := writeFile(t, "all.toml", strings.Join(out, "\n"))
	c, err := Load([]string{"--config-path", path})
	if err != nil {
		t.Fatalf("example with defaults uncommented does not load: %v", err)
	}
	if c.FlushInterval != 10*time.Second || c.MetricsAddr != ":8125" {
		t.Fatalf("unexpected values: %+v", c)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t)
	requireChecks(t, c, []check{
		{"metrics-addr", c.MetricsAddr == ":8125"},
		{"backends", len(c.Backends) == 1 && c.Backends[0] == "stdout"},
		{"flush-interval", c.FlushInterval == 10*time.Second},
		{"percent-threshold", len(c.PercentThreshold) == 1 && c.PercentThreshold[0] == 90},
		{"expiry", c.Expiry == Expiry{Counter: 5 * time.Minute, Gauge: 5 * time.Minute, Set: 5 * time.Minute, Timer: 5 * time.Minute}},
		{"gauge-deltas", c.GaugeDeltas},
		{"socket-receive-buffer", c.SocketReceiveBuffer == 8<<20},
		{"tcp-metrics-addr", c.TCPMetricsAddr == ""},
		{"graphite.address", c.Graphite.Address == "localhost:2003"},
		{"graphite.mode", c.Graphite.Mode == "tags"},
		{"graphite.global_prefix", c.Graphite.GlobalPrefix == "stats"},
		{"backend-timeout", c.BackendTimeout == c.FlushInterval},
	})
}

func TestPrecedence(t *testing.T) {
	path := writeFile(t, "g.toml", `
flush-interval = "3s"
namespace = "file"
hostname = "filehost"
percent-threshold = "90 99.9 -10"
expiry-interval = "1m"
expiry-interval-gauge = "-1s"
[graphite]
address = "file:2003"
[disabled-sub-metrics]
median = true
`)
	t.Setenv("GARNER_NAMESPACE", "env")
	t.Setenv("GARNER_FLUSH_INTERVAL", "4s")
	t.Setenv("GARNER_GRAPHITE_ADDRESS", "env:2003")
	c := mustLoad(t, "--config-path", path, "--flush-interval=5s")
	if c.FlushInterval != 5*time.Second {
		t.Errorf("flag must win: flush-interval = %s", c.FlushInterval)
	}
	if c.Namespace != "env" {
		t.Errorf("env must beat the file: namespace = %q", c.Namespace)
	}
	if c.Graphite.Address != "env:2003" {
		t.Errorf("env must reach sections: graphite.address = %q", c.Graphite.Address)
	}
	if c.Hostname != "filehost" {
		t.Errorf("file must beat the default: hostname = %q", c.Hostname)
	}
	if want := []float64{90, 99.9, -10}; len(c.PercentThreshold) != 3 || c.PercentThreshold[1] != want[1] || c.PercentThreshold[2] != want[2] {
		t.Errorf("percent-threshold = %v, want %v", c.PercentThreshold, want)
	}
	if c.Expiry.Counter != time.Minute || c.Expiry.Gauge != -time.Second {
		t.Errorf("expiry = %+v", c.Expiry)
	}
	if !c.DisabledSubMetrics.Has(model.SubMedian) || c.DisabledSubMetrics.Has(model.SubMean) {
		t.Errorf("disabled-sub-metrics = %b", c.DisabledSubMetrics)
	}
}

func TestFormats(t *testing.T) {
	for name, content := range map[string]string{
		"c.yaml": "backends: [\"graphite\", \"null\"]\ngraphite:\n  mode: basic\n",
		"c.json": `{"backends": "graphite null", "graphite": {"mode": "basic"}}`,
		"c.toml": "backends = \"graphite null\"\n[graphite]\nmode = \"basic\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, "--config-path", writeFile(t, name, content))
			if len(c.Backends) != 2 || c.Backends[0] != "graphite" || c.Backends[1] != "null" || c.Graphite.Mode != "basic" {
				t.Fatalf("got backends %v mode %q", c.Backends, c.Graphite.Mode)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	requireBadConfigs(t, []badConfig{
		{name: "unknown key", file: "flush-intervall = \"1s\"\n", wantKey: "flush-intervall"},
		{name: "unknown section key", file: "[graphite]\nadress = \"x\"\n", wantKey: "graphite.adress"},
		{name: "duration without unit", file: "flush-interval = 10\n", wantKey: "flush-interval"},
		{name: "bad duration", args: []string{"--expiry-interval=soon"}, wantKey: "expiry-interval"},
		{name: "zero flush interval", file: "flush-interval = \"0s\"\n", wantKey: "flush-interval"},
		{name: "unknown backend", args: []string{"--backends=graphite carbon"}, wantKey: "backends"},
		{name: "bad percentile", file: "percent-threshold = \"90 abc\"\n", wantKey: "percent-threshold"},
		{name: "zero percentile", file: "percent-threshold = \"0\"\n", wantKey: "percent-threshold"},
		{name: "bad bool", file: "ignore-host = \"maybe\"\n", wantKey: "ignore-host"},
		{name: "bad graphite mode", file: "[graphite]\nmode = \"fancy\"\n", wantKey: "graphite.mode"},
		{name: "bad size", file: "socket-receive-buffer = \"lots\"\n", wantKey: "socket-receive-buffer"},
		{name: "unknown env", env: [2]string{"GARNER_FLUSH_INTREVAL", "1s"}, wantKey: "GARNER_FLUSH_INTREVAL"},
		{name: "bad env value", env: [2]string{"GARNER_MAX_WORKERS", "many"}, wantKey: "max-workers"},
		{name: "offset beyond interval", args: []string{"--flush-interval=1s", "--flush-offset=2s"}, wantKey: "flush-offset"},
		{name: "missing file", args: []string{"--config-path=/nonexistent/garner.toml"}, wantKey: "config-path"},
	})
}

// badConfig is a configuration Load must refuse with an error naming wantKey.
type badConfig struct {
	name    string
	file    string    // TOML passed with --config-path; "" = no file
	args    []string  // flags
	env     [2]string // one environment variable, name and value
	wantKey string
	wantMsg string // when set, the error also says this
}

// requireBadConfigs runs each case as a subtest.
func requireBadConfigs(t *testing.T, cases []badConfig) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config-path", writeFile(t, "c.toml", tc.file))
			}
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			_, err := Load(args)
			requireKeyError(t, err, tc.wantKey)
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %v does not say %q", err, tc.wantMsg)
			}
		})
	}
}

// mustLoad is Load that fails the test on an error.
func mustLoad(t *testing.T, args ...string) *Config {
	t.Helper()
	c, err := Load(args)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check is one expectation on a loaded Config, named by its key.
type check struct {
	name string
	ok   bool
}

// requireChecks reports each failed check with got.
func requireChecks(t *testing.T, got any, checks []check) {
	t.Helper()
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("default of %s is wrong: %+v", ch.name, got)
		}
	}
}

// requireKeyError fails unless err is a config error that names wantKey.
func requireKeyError(t *testing.T, err error, wantKey string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a config error naming %q, got %v", wantKey, err)
	}
	if ce.Key != wantKey || !strings.Contains(err.Error(), wantKey) {
		t.Fatalf("error names %q (%v), want %q", ce.Key, err, wantKey)
	}
}

func TestBadFlag(t *testing.T) {
	if _, err := Load([]string{"--no-such-flag"}); err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("unknown flag: got %v", err)
	}
}

func TestIgnoredKeysWarn(t *testing.T) {
	c := mustLoad(t, "--config-path", writeFile(t, "c.toml", "cloud-provider = \"\"\nmax-parsers = 4\nestimated-tags = 4\n"))
	if len(c.Warnings) != 2 || !strings.Contains(strings.Join(c.Warnings, "\n"), "max-parsers") {
		t.Fatalf("want one warning per ignored key, got %q", c.Warnings)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int{"8MiB": 8 << 20, "512KiB": 512 << 10, "1048576": 1 << 20, "1G": 1 << 30, "64KiB": 64 << 10} {
		c, err := Load([]string{"--socket-receive-buffer=" + in})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if c.SocketReceiveBuffer != want {
			t.Errorf("%s = %d, want %d", in, c.SocketReceiveBuffer, want)
		}
	}
}

// TestPlainKeys: every plain key's field has its kind's Go type (a sign
// only on numbers), and Load fails a plain key of the wrong sign with its
// check's message.
func TestPlainKeys(t *testing.T) {
	types := map[kind][]string{
		kString:   {"*string"},
		kBool:     {"*bool"},
		kInt:      {"*int"},
		kSize:     {"*int", "*int64"},
		kFloat:    {"*float64"},
		kDuration: {"*time.Duration"},
		kList:     {"*[]string", "*[]float64"},
	}
	plain := 0
	for _, k := range allKeys() {
		if k.to == nil {
			continue
		}
		plain++
		typ := fmt.Sprintf("%T", k.to.field(&Config{}))
		if !slices.Contains(types[k.kind], typ) {
			t.Errorf("key %q of kind %d has a field of type %s, want one of %v", k.name, k.kind, typ, types[k.kind])
		}
		if k.to.sign != anySign && (typ == "*string" || typ == "*bool" || strings.HasPrefix(typ, "*[]")) {
			t.Errorf("key %q: a %s field cannot be checked for its sign", k.name, typ)
		}
	}
	if plain == 0 {
		t.Fatal("no plain keys")
	}
	for _, tc := range []struct {
		file, want string
	}{
		{"max-readers = 0\n", `config key "max-readers": must be at least 1, got 0`},
		{"max-event-length = 0\n", `config key "max-event-length": must be at least 1 byte, got 0`},
		{"[ingestion]\nmax-body-bytes = 0\n", `config key "ingestion.max-body-bytes": must be at least 1 byte, got 0`},
		{"flush-interval = \"0s\"\n", `config key "flush-interval": must be a positive duration, got 0s`},
		{"[otlp]\nmax_retries = -1\n", `config key "otlp.max_retries": must not be negative, got -1`},
		{"[statsdaemon]\nwrite_timeout = \"-1s\"\n", `config key "statsdaemon.write_timeout": must not be negative, got -1s`},
	} {
		_, err := Load([]string{"--config-path", writeFile(t, "c.toml", tc.file)})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %s", tc.file, err, tc.want)
		}
	}
}
