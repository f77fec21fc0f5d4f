//go:build linux

package receiver

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSeriesIdentity(t *testing.T) {
	h := newHarness(t, Options{Namespace: "ns", DefaultTags: []string{"dc:1", "env:prod"}})
	h.send("c:1|c|#z:1,a:2,z:1,env:prod", "c:1|c|#a:2,z:1")
	cs := counters(h.flush())
	if len(cs) != 1 {
		t.Fatalf("tag order and duplicates must not split a series: %v", cs)
	}
	c, ok := cs["ns.c|a:2,dc:1,env:prod,z:1|10.0.0.7"]
	if !ok || c.Value != 2 {
		t.Fatalf("got %v", cs)
	}
}

func TestIgnoreHost(t *testing.T) {
	h := newHarness(t, Options{IgnoreHost: true})
	h.send("c:1|c|#host:web1,env:prod", "c:1|c|#env:prod", "c:1|c|#host:web2,host:web3")
	cs := counters(h.flush())
	for _, k := range []string{"c|env:prod|web1", "c|env:prod|", "c|host:web3|web2"} {
		if cs[k].Value != 1 {
			t.Errorf("missing %q in %v", k, cs)
		}
	}
}

func TestBadLinesCounted(t *testing.T) {
	h := newHarness(t, Options{})
	h.send("good:1|c", "bad", "x:1|q", "", "good:1|c")
	if got := counters(h.flush())["good||10.0.0.7"].Value; got != 2 {
		t.Fatalf("good lines around bad ones lost: %v", got)
	}
	if n := testutil.ToFloat64(h.r.cBad["missing_value"]); n != 1 {
		t.Errorf("missing_value = %v", n)
	}
	if n := testutil.ToFloat64(h.r.cBad["bad_type"]); n != 1 {
		t.Errorf("bad_type = %v", n)
	}
	if n := testutil.ToFloat64(h.r.cLines); n != 4 {
		t.Errorf("lines = %v, want 4 (empty lines are not lines)", n)
	}
}

func TestTruncatedDatagram(t *testing.T) {
	h := newHarness(t, Options{})
	h.r.HandleDatagram([]byte("a:1|c\nb:2|c\nc:3|"), src, true)
	h.r.Handoff()
	cs := counters(h.flush())
	if len(cs) != 2 {
		t.Fatalf("the complete lines of a truncated datagram must be kept: %v", cs)
	}
	if testutil.ToFloat64(h.r.cTruncated) != 1 || testutil.ToFloat64(h.r.cBad["line_too_long"]) != 1 {
		t.Fatal("truncation not counted")
	}
}

func TestLineHandlerAllocations(t *testing.T) {
	l := newLines(t, 2, Options{}, nil)
	h := &harness{t: t, l: l, r: l.NewHandler("test")}
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, fmt.Sprintf("api.req.%d:1|c|#env:prod,region:us", i%10), fmt.Sprintf("lat.%d:%d|ms", i%10, i), "g:+1|g", fmt.Sprintf("s:%d|s", i%5))
	}
	// Timer values grow their slices between flushes (amortised appends);
	// everything else must not allocate.
	if perLine := h.allocsPerLine(lines); perLine > 0.05 {
		t.Fatalf("%.3f allocations per line; want ~0", perLine)
	}
}

func TestGaugeDeltasOff(t *testing.T) {
	abs := newHarness(t, Options{GaugeDeltas: false})
	abs.send("d:10|g", "d:+5|g", "e:10|g", "e:-2|g")
	gs := gauges(abs.flush())
	if gs["d||10.0.0.7"].Value != 5 || gs["e||10.0.0.7"].Value != -2 {
		t.Errorf("gauge-deltas=false must be absolute: %v", gs)
	}
	h := newHarness(t, Options{GaugeDeltas: true})
	h.send("d:10|g", "d:+5|g", "d:-2|g")
	if got := gauges(h.flush())["d||10.0.0.7"].Value; got != 13 {
		t.Errorf("gauge-deltas=true: %v, want 13", got)
	}
}

// BenchmarkRoute measures parse + route + apply per line, per type, through
// one reader and two shards, with 1000 distinct series.
func BenchmarkRoute(b *testing.B) {
	for _, bc := range []struct{ name, format string }{
		{"counter", "api.request.%d:1|c|#env:prod,region:us"},
		{"gauge", "queue.depth.%d:+1|g"},
		{"timer", "api.latency.%d:12.5|ms|#env:prod"},
		{"set", "users.%d:user123|s"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newLines(b, 2, Options{}, nil)
			benchLines(b, l, bc.format)
			waitDrained(l)
		})
	}
}
