package datadog

import (
	"fmt"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2EEveryPathToVictoriaMetrics runs the real garner binary with the
// graphite, influxdb and datadog backends all writing to one real
// VictoriaMetrics (Graphite plaintext, /api/v2/write, /datadog/api/v1/series),
// sends statsd datagrams and requires every counter increment to be found
// through each path with /api/v1/export: the Graphite <name>.count, the
// InfluxDB count field and the Datadog <name>.count gauge each sum back to
// the total sent.
func TestE2EEveryPathToVictoriaMetrics(t *testing.T) {
	vm := garnertest.StartVictoriaMetrics(t, true)
	p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "graphite influxdb datadog"
metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
[graphite]
address = %q
[influxdb]
api-endpoint = %q
api-version = 2
org = "o"
bucket = "b"
[datadog]
api_key = "e2e"
api_endpoint = "%s/datadog"
metrics_per_batch = 3
`, vm.GraphiteAddr, vm.URL, vm.URL))
	udp := p.UDPAddr(t)
	const n = 60
	var total float64
	for i := range n {
		// 1 + 3/0.5 + a second series
		garnertest.SendUDP(t, udp, fmt.Sprintf("e2e.hits:1|c|#env:test\ne2e.hits:3|c|@0.5|#env:test\ne2e.other:%d|c", i%3))
		total += 1 + 6
		if i%20 == 19 {
			time.Sleep(150 * time.Millisecond)
		}
	}
	p.WaitRead(t, 3*n)
	p.StopOK(t)
	otherTotal := float64(20 * (0 + 1 + 2))

	paths := []struct {
		name     string
		selector string
		want     float64
	}{
		{"graphite", `{__name__="stats.counters.e2e.hits.count",env="test"}`, total},
		{"influxdb", `{__name__="e2e.hits_count",env="test"}`, total},
		{"datadog", `{__name__="e2e.hits.count",env="test"}`, total},
		{"graphite other", `{__name__="stats.counters.e2e.other.count"}`, otherTotal},
		{"influxdb other", `{__name__="e2e.other_count"}`, otherTotal},
		{"datadog other", `{__name__="e2e.other.count"}`, otherTotal},
	}
	for _, pa := range paths {
		t.Run(pa.name, func(t *testing.T) {
			sum := func(ss []garnertest.Series) float64 {
				var s float64
				for _, x := range ss {
					s += x.Sum()
				}
				return s
			}
			got := vm.WaitExport(t, pa.selector, func(ss []garnertest.Series) bool { return sum(ss) >= pa.want })
			if s := sum(got); s != pa.want {
				t.Errorf("Σ %s = %v, want %v (series %+v)", pa.selector, s, pa.want, got)
			}
			for _, x := range got {
				if x.Metric["host"] != "127.0.0.1" {
					t.Errorf("%s: host label %q, want the sender 127.0.0.1", pa.selector, x.Metric["host"])
				}
			}
		})
	}
}
