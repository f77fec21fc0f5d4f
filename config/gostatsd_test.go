package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gostatsdParams reads testdata/gostatsd-params.txt: every top-level
// gostatsd parameter with a value of its kind.
func gostatsdParams(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/gostatsd-params.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if name, value, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			out[name] = value
		}
	}
	return out
}

// TestGostatsdParams: every gostatsd parameter is accepted in a file, as a
// flag and as a GARNER_ variable; an ignored one warns exactly once, an
// implemented one not at all.
func TestGostatsdParams(t *testing.T) {
	params := gostatsdParams(t)
	if len(params) < 45 {
		t.Fatalf("%d gostatsd parameters: the list is cut short", len(params))
	}
	for name, value := range params {
		_, ignored := ignoredKeyNamed(name)
		check := func(t *testing.T, c *Config, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, w := range c.Warnings {
				if strings.Contains(w, name) {
					n++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[ignored]; n != want || len(c.Warnings) != want {
				t.Fatalf("%d warnings naming it (want %d): %q", n, want, c.Warnings)
			}
		}
		t.Run(name+"/file", func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "g.toml")
			if err := os.WriteFile(f, []byte(name+" = "+tomlLiteral(value)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load([]string{"--config-path", f})
			check(t, c, err)
		})
		t.Run(name+"/flag", func(t *testing.T) {
			c, err := Load([]string{"--" + name + "=" + value})
			check(t, c, err)
		})
		t.Run(name+"/env", func(t *testing.T) {
			t.Setenv(envName(name), value)
			c, err := Load(nil)
			check(t, c, err)
		})
	}
	for _, k := range ignoredKeys {
		if _, ok := params[k.name]; !ok {
			t.Errorf("ignored key %q is not a gostatsd parameter", k.name)
		}
	}
}

// tomlLiteral writes a flag value as TOML: numbers and booleans bare.
func tomlLiteral(v string) string {
	if v == "true" || v == "false" || (v != "" && strings.Trim(v, "0123456789") == "") {
		return v
	}
	return `"` + v + `"`
}

func TestGostatsdBoolFlagsWithoutValue(t *testing.T) {
	c, err := Load([]string{"--heartbeat-enabled", "--conn-per-reader", "--log-raw-metric"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 3 {
		t.Fatalf("warnings %q", c.Warnings)
	}
}

func TestGostatsdNames(t *testing.T) {
	c, err := Load([]string{"--receive-buffer-size=1024", "--timer-histogram-limit=7", "--fast-fail-on-non-retryable-errors"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxDatagramSize != 1024 || c.HistogramLimit != 7 || !c.Forward.HTTPTransport.FastFail {
		t.Fatalf("max-datagram-size %d, histogram-limit %d, fast-fail %v", c.MaxDatagramSize, c.HistogramLimit, c.Forward.HTTPTransport.FastFail)
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"--receive-buffer-size=1024", "--max-datagram-size=2048"}, "receive-buffer-size"},
		{[]string{"--receive-buffer-size=100"}, "receive-buffer-size"},
		{[]string{"--timer-histogram-limit=7", "--histogram-limit=8"}, "timer-histogram-limit"},
		{[]string{"--cloud-provider=aws"}, "cloud-provider"},
	} {
		_, err := Load(tc.args)
		if err == nil || !strings.Contains(err.Error(), `"`+tc.key+`"`) {
			t.Errorf("%q: error %v, want one naming %q", tc.args, err, tc.key)
		}
	}
	if _, err := Load([]string{"--cloud-provider="}); err != nil {
		t.Errorf("an empty cloud-provider: %v", err)
	}
}
