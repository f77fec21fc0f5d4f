package otlp

import (
	"fmt"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2E runs the real garner binary with the otlp backend posting to the
// test receiver (official protos), sends statsd datagrams and an event over
// UDP, and checks what the receiver decoded: every counter increment in the
// <name>.count delta sums, the timer as an OTLP histogram, the resource
// split, and the event as a log record.
func TestE2E(t *testing.T) {
	r := newReceiver(t)
	p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "otlp"
metrics-addr = "127.0.0.1:0"
flush-interval = "300ms"
[otlp]
metrics_endpoint = "%s/v1/metrics"
logs_endpoint = "%s/v1/logs"
metrics_per_batch = 3
resource_keys = "service"
conversion = "AsHistogram"
max_request_elapsed_time = 5
`, r.srv.URL, r.srv.URL))
	udp := p.UDPAddr(t)
	const n = 50
	var hits float64
	for i := range n {
		garnertest.SendUDP(t, udp, "e2e.hits:1|c|#service:api,env:test\ne2e.hits:2|c|@0.5|#service:api,env:test\ne2e.rt:"+fmt.Sprint(i)+"|ms")
		hits += 1 + 4
		if i%10 == 9 {
			time.Sleep(120 * time.Millisecond)
		}
	}
	garnertest.SendUDP(t, udp, "_e{6,4}:deploy|done|t:warning|#service:api")
	p.WaitRead(t, 3*n+1)
	if code := p.Stop(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.Stderr())
	}

	var sum, rtCount float64
	var rtSum float64
	for _, pt := range r.points() {
		switch {
		case pt.metric == "e2e.hits.count":
			if pt.resource != "service=api" || pt.attrs != "env=test,host=127.0.0.1" || pt.kind != "sum" {
				t.Errorf("e2e.hits.count resource %q attrs %q kind %s", pt.resource, pt.attrs, pt.kind)
			}
			sum += pt.value
		case pt.metric == "e2e.rt" && pt.hist != nil:
			rtCount += float64(pt.hist.Count)
			rtSum += pt.hist.GetSum()
		}
	}
	if sum != hits {
		t.Errorf("Σ e2e.hits.count = %v, want %v", sum, hits)
	}
	if rtCount != n || rtSum != n*(n-1)/2 {
		t.Errorf("e2e.rt histograms: Σcount %v Σsum %v, want %d and %d", rtCount, rtSum, n, n*(n-1)/2)
	}
	recs, res := r.logRecords()
	if len(recs) != 1 {
		t.Fatalf("got %d log records, want the event", len(recs))
	}
	if got := formatAttrs(recs[0].Attributes); res[0] != "service=api" ||
		got != "aggregation_key=,alert_type=warning,priority=normal,source=127.0.0.1,source_type_name=,tags={},text=done,title=deploy" {
		t.Errorf("event log record: resource %q attributes %s", res[0], got)
	}
}
