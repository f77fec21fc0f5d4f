package config

import (
	"strings"
	"testing"
)

// TestSyntaxErrorsNamePosition: a config file that does not parse fails
// the load with file:line:column.
func TestSyntaxErrorsNamePosition(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"c.toml", "flush-interval = \"5s\"\nbackends = \"graphite\n", "c.toml:2:21: TOML: basic strings cannot have new lines"},
		{"c.toml", "flush-interval = \"5s\"\n[graphite\n", "c.toml:2:10: TOML: "},
		{"c.yaml", "flush-interval: 5s\nbackends: [graphite\n", "c.yaml:2:11: YAML: "},
		{"c.yml", "a:\n  b: 1\n c: 2\n", "c.yml:3:2: YAML: "},
		{"c.json", "{\"a\": 1,\n \"b\": }\n", "c.json:2:8: JSON: "},
	} {
		_, err := Load([]string{"--config-path", writeFile(t, tc.name, tc.data)})
		requireKeyError(t, err, "config-path")
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: %v, want %q", tc.name, tc.data, err, tc.want)
		}
	}
}
