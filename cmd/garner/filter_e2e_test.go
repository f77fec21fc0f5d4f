package main_test

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// gostatsdFilteringConfig is gostatsd's filtering example (FILTERING.md:
// make-global, noisy-tag, drop-subset) with a namespace, default tags and
// ignore-host, as a gostatsd user would deploy it. Filters match the
// namespaced name, as in gostatsd.
const gostatsdFilteringConfig = `
backends = 'graphite'
namespace = 'app'
default-tags = 'env:prod team:core'
ignore-host = true
filters = 'make-global noisy-tag drop-subset'

[graphite]
address = '%s'

[filter.make-global]
match-metrics = 'app.global.*'
drop-host = true
drop-tags = 'host:*'

[filter.noisy-tag]
drop-tags = 'request_path:*'

[filter.drop-subset]
match-metrics = 'app.noisy.*'
exclude-metrics = 'app.noisy.butok.*'
drop-metric = true
`

func startWithConfig(t *testing.T, config string, args ...string) (*garnertest.Process, string) {
	t.Helper()
	p := garnertest.StartConfig(t, config, append([]string{"--metrics-addr", "127.0.0.1:0", "--shutdown-grace", "0s"}, args...)...)
	return p, p.UDPAddr(t)
}

// TestGostatsdFilteringExample runs gostatsd's filtering example config
// and checks garner's Graphite output series by series against what
// gostatsd writes for the same datagrams: the dropped metrics do not appear
// at all, stripped tags and hosts are gone, hosts that drop-host merged add
// up in one series, the excluded metric survives.
func TestGostatsdFilteringExample(t *testing.T) {
	g := garnertest.NewGraphite(t)
	p, udp := startWithConfig(t, fmt.Sprintf(gostatsdFilteringConfig, g.Addr()), "--flush-interval", "1h")
	payloads := []string{
		// make-global: host stripped (source and tag), request_path stripped by noisy-tag;
		// two hosts become one series.
		"global.requests:1|c|#host:web1,request_path:/a,code:200\nglobal.requests:2|c|#request_path:/b,code:200,host:web2",
		// drop-subset: dropped, whatever the type and tags...
		"noisy.debug:1|c|#host:web1\nnoisy.debug.timing:3|ms\nnoisy.x:1|g|#request_path:/x\nnoisy.s:a|s",
		// ...except what exclude-metrics keeps.
		"noisy.butok.ping:5|g|#host:web1",
		// Not global: the host tag is the source (ignore-host); request_path stripped.
		"api.latency:10|ms|#host:web1,request_path:/c\napi.latency:20|ms|#host:web1",
		// No host tag with ignore-host: no source. A default tag sent again is not doubled.
		"api.users:u1|s|#env:prod\napi.users:u2|s",
		// The filters match the namespaced name: this one is not app.noisy.*
		"other.noisy.a:1|c|#host:web3",
	}
	got := finalValues(t, p, g, udp, payloads...)
	const tags = ";env=prod;team=core"
	want := map[string]string{
		"stats.counters.app.global.requests.count;code=200" + tags:          "3",
		"stats.gauges.app.noisy.butok.ping" + tags + ";host=web1":           "5.000000",
		"stats.timers.app.api.latency.count" + tags + ";host=web1":          "2",
		"stats.timers.app.api.latency.lower" + tags + ";host=web1":          "10.000000",
		"stats.timers.app.api.latency.upper" + tags + ";host=web1":          "20.000000",
		"stats.timers.app.api.latency.mean" + tags + ";host=web1":           "15.000000",
		"stats.timers.app.api.latency.median" + tags + ";host=web1":         "15.000000",
		"stats.timers.app.api.latency.std" + tags + ";host=web1":            "5.000000",
		"stats.timers.app.api.latency.sum" + tags + ";host=web1":            "30.000000",
		"stats.timers.app.api.latency.sum_squares" + tags + ";host=web1":    "500.000000",
		"stats.timers.app.api.latency.count_90" + tags + ";host=web1":       "2.000000",
		"stats.timers.app.api.latency.mean_90" + tags + ";host=web1":        "15.000000",
		"stats.timers.app.api.latency.sum_90" + tags + ";host=web1":         "30.000000",
		"stats.timers.app.api.latency.sum_squares_90" + tags + ";host=web1": "500.000000",
		"stats.timers.app.api.latency.upper_90" + tags + ";host=web1":       "20.000000",
		"stats.sets.app.api.users" + tags:                                   "2",
		"stats.counters.app.other.noisy.a.count" + tags + ";host=web3":      "1",
	}
	// Rates depend on the measured interval: present and positive.
	rates := []string{
		"stats.counters.app.global.requests.rate;code=200" + tags,
		"stats.timers.app.api.latency.count_ps" + tags + ";host=web1",
		"stats.counters.app.other.noisy.a.rate" + tags + ";host=web3",
	}
	checkValues(t, got, want)
	for _, name := range rates {
		if r, err := strconv.ParseFloat(got[name], 64); err != nil || r <= 0 {
			t.Errorf("%s = %q, want a positive rate", name, got[name])
		}
	}
	// Series by series: nothing else, in particular nothing dropped.
	var extra []string
	for name := range got {
		if _, ok := want[name]; !ok && !inList(rates, name) {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("unexpected series:\n%s", strings.Join(extra, "\n"))
	}
	for _, l := range g.Lines() {
		if strings.Contains(l, "noisy.debug") || strings.Contains(l, "noisy.x") || strings.Contains(l, "noisy.s") ||
			strings.Contains(l, "request_path") || strings.Contains(l, "web2") {
			t.Errorf("filtered data in the output: %s", l)
		}
	}
}

func inList(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestTagRulesAndMappingEndToEnd checks drop-tag-keys, max-tag-value-length
// and a name mapping on the real binary.
func TestTagRulesAndMappingEndToEnd(t *testing.T) {
	g := garnertest.NewGraphite(t)
	p, udp := startWithConfig(t, fmt.Sprintf(`
backends = 'graphite'
namespace = 'app'
drop-tag-keys = 'request_id'
max-tag-value-length = 4
mappings = 'http'

[graphite]
address = '%s'

[mapping.http]
match = '^http\.(?P<method>[a-z]+)\.([0-9]{3})$'
name = 'http_requests'
tags = 'method:${method} code:$2'
`, g.Addr()), "--flush-interval", "1h")
	got := finalValues(t, p, g, udp, "http.get.200:1|c|#request_id:1\nhttp.get.200:1|c|#request_id:2\nhttp.post.500:1|c\nlong:1|c|#k:abcdefgh")
	checkValues(t, got, map[string]string{
		"stats.counters.app.http_requests.count;code=200;method=get;host=127.0.0.1":  "2",
		"stats.counters.app.http_requests.count;code=500;method=post;host=127.0.0.1": "1",
		"stats.counters.app.long.count;k=abcd;host=127.0.0.1":                        "1",
	})
}
