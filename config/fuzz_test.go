package config

import (
	"errors"
	"testing"
)

// FuzzConfigFile loads arbitrary bytes as a config file: Load returns a
// config or an error, never panics, and its errors name a key.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"flush-interval = \"1s\"\n[graphite]\naddress = \"x:1\"\n",
		"backends: [graphite]\npercent-threshold: [90, -10]\n",
		`{"max-workers": 3, "default-tags": ["a:b"]}`,
		"[disabled-sub-metrics]\nlower = true\n",
		"socket-receive-buffer = \"9GiB\"\n",
		"= = =\n[[[\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	exts := []string{".toml", ".yaml", ".json"}
	f.Fuzz(func(t *testing.T, data []byte, ext uint8) {
		p := writeFile(t, "c"+exts[int(ext)%len(exts)], string(data))
		c, err := Load([]string{"--config-path", p})
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Key == "" {
				t.Fatalf("error without a key: %v", err)
			}
			return
		}
		if c.FlushInterval <= 0 || c.MaxWorkers <= 0 {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
	})
}
