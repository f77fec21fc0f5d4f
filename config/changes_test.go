package config

import (
	"slices"
	"testing"
)

// TestChangedKeys: two loads differ exactly in the keys whose effective
// values differ, named as keys, however the value was written.
func TestChangedKeys(t *testing.T) {
	const base = "flush-interval = \"10s\"\nfilters = \"f\"\n[filter.f]\nmatch-metrics = \"a.*\"\ndrop-metric = true\n"
	cases := []struct {
		name string
		file string
		args []string
		want []string
	}{
		{name: "nothing", file: base, want: nil},
		{name: "same value written otherwise", file: base, args: []string{"--flush-interval=10000ms"}, want: nil},
		// backend-timeout follows flush-interval when unset: not a change of its own.
		{name: "flush-interval only", file: base, args: []string{"--flush-interval=5s"}, want: []string{"flush-interval"}},
		{name: "log-level", file: base, args: []string{"--log-level=debug"}, want: []string{"log-level"}},
		{name: "filter edited", file: base + "drop-host = true\n", want: []string{"filter.f.drop-host"}},
		// A section added or removed is named once, not key by key.
		{name: "filter removed", file: "flush-interval = \"10s\"\n", want: []string{"filter.f", "filters"}},
		{name: "http server added", file: "http-servers = \"a\"\n" + base + "[http.a]\n", want: []string{"http-servers", "http.a"}},
		{name: "prometheus header", file: base + "[prometheus.headers]\nX-Scope-OrgID = \"t1\"\n", want: []string{"prometheus.headers.x-scope-orgid"}},
	}
	old, err := Load([]string{"--config-path", writeFile(t, "old.toml", base)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next, err := Load(append(tc.args, "--config-path", writeFile(t, "new.toml", tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if got := ChangedKeys(old, next); !slices.Equal(got, tc.want) {
				t.Fatalf("ChangedKeys = %q, want %q", got, tc.want)
			}
		})
	}
	// A written-out default is no change once the section exists on both sides.
	a, _ := Load([]string{"--config-path", writeFile(t, "a.toml", "http-servers = \"a\"\n[http.a]\n")})
	b, _ := Load([]string{"--config-path", writeFile(t, "b.toml", "http-servers = \"a\"\n[http.a]\naddress = \"127.0.0.1:8080\"\nenable-healthcheck = true\n")})
	if got := ChangedKeys(a, b); len(got) != 0 {
		t.Fatalf("writing out the defaults of [http.a] changed %q", got)
	}
	if v := old.Values()["filter.f.match-metrics"]; v != `["a.*"]` {
		t.Fatalf(`Values()["filter.f.match-metrics"] = %q`, v)
	}
}
