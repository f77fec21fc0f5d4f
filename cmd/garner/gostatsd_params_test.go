package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2EGostatsdParams: garner starts with every gostatsd parameter at
// once, as flags and as a config file, and warns once for each it ignores.
func TestE2EGostatsdParams(t *testing.T) {
	b, err := os.ReadFile("../../config/testdata/gostatsd-params.txt")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	var file strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		if name == "metrics-addr" {
			value = garnertest.FreeAddr(t)
		}
		flags = append(flags, "--"+name+"="+value)
		fmt.Fprintf(&file, "%s = %q\n", name, value)
	}
	if len(flags) < 45 {
		t.Fatalf("%d gostatsd parameters: the list is cut short", len(flags))
	}
	const ignored = 16 // config/gostatsd.go ignoredKeys
	for name, args := range map[string][]string{
		"flags": flags,
		"file":  {"--config-path", garnertest.WriteConfig(t, file.String())},
	} {
		t.Run(name, func(t *testing.T) {
			p := garnertest.StartReady(t, append(args, "--admin-addr="+garnertest.FreeAddr(t))...)
			if n := strings.Count(p.Stderr(), "gostatsd setting "); n != ignored {
				t.Errorf("%d ignored-key warnings, want %d:\n%s", n, ignored, p.Stderr())
			}
			p.StopOK(t)
		})
	}
}
