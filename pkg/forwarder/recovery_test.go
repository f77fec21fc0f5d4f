package forwarder

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestV3Reprobe (issue 15): a transient 404 to /v3/raw (an ingress during a
// deploy) makes the forwarder speak v2, but only until v3-reprobe-interval
// has passed: then v3 is tried again and kept once it is accepted.
func TestV3Reprobe(t *testing.T) {
	a := newAggServer(t, true, nil)
	var notFound atomic.Bool
	notFound.Store(true)
	a.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		if notFound.Load() && strings.HasPrefix(r.URL.Path, "/v3/") {
			http.NotFound(w, r)
			return true
		}
		return false
	})
	fx := startForwarder(t, Options{APIEndpoints: []string{a.srv.URL}, V3Reprobe: 300 * time.Millisecond})
	send := func() {
		if err := fx.f.SendMetrics(context.Background(), counterSnapshot(20)); err != nil {
			t.Fatal(err)
		}
	}
	send()
	waitFor(t, "delivery in v2", 5*time.Second, func() bool { return a.pathCount("/v2/raw") > 0 && fx.sent() == 23 })
	if n := testutil.ToFloat64(fx.f.m.fallbacks); n != 1 {
		t.Fatalf("fallbacks = %v, want 1", n)
	}
	notFound.Store(false) // the ingress is fixed
	v3 := a.pathCount("/v3/raw")
	waitFor(t, "v3 tried again", 5*time.Second, func() bool {
		send()
		time.Sleep(50 * time.Millisecond)
		return a.pathCount("/v3/raw") > v3
	})
	// From now on v3: the v2 requests stop growing.
	waitFor(t, "queued v2 batches delivered", 5*time.Second, func() bool { _, in, _ := fx.f.upstreams()[0].pending(); return in == 0 })
	v2 := a.pathCount("/v2/raw")
	send()
	waitFor(t, "v3 delivery", 5*time.Second, func() bool { return a.pathCount("/v3/raw") > v3+1 })
	if n := a.pathCount("/v2/raw"); n != v2 {
		t.Fatalf("%d more v2 requests after v3 was accepted again", n-v2)
	}
	if n := testutil.ToFloat64(fx.f.m.fallbacks); n != 1 {
		t.Fatalf("fallbacks = %v, want still 1", n)
	}
}

// TestDNSAddressBackKeepsBuffer (issue 15): an aggregator that fails, drops
// out of the DNS answer (not ready while it restarts) and comes back on the
// same address gets what the forwarder held for it: nothing is dropped.
func TestDNSAddressBackKeepsBuffer(t *testing.T) {
	a, b, port := twoAggServersOnOnePort(t)
	failing := a.failWhile(http.StatusServiceUnavailable)
	res := &fakeResolver{}
	res.set("127.0.0.1", "127.0.0.2")
	fx := startForwarder(t, Options{APIEndpoints: []string{fmt.Sprintf("http://aggregators.test:%d", port)},
		DNSRefresh: 50 * time.Millisecond, Resolver: res, ProbeInterval: 50 * time.Millisecond})
	_ = fx.f.SendMetrics(context.Background(), counterSnapshot(100))
	waitFor(t, "127.0.0.1 out of the choice", 10*time.Second, func() bool { return testutil.ToFloat64(fx.f.m.down) >= 1 })
	res.set("127.0.0.2")
	waitFor(t, "127.0.0.1 gone from DNS", 5*time.Second, func() bool { return len(fx.f.upstreams()) == 1 })
	res.set("127.0.0.1", "127.0.0.2")
	waitFor(t, "127.0.0.1 back in DNS", 5*time.Second, func() bool { return len(fx.f.upstreams()) == 2 })
	failing.Store(false)
	waitFor(t, "everything delivered", 10*time.Second, func() bool { return fx.sent() == 103 })
	if d := fx.droppedSeries(); d != 0 {
		t.Fatalf("%v series dropped", d)
	}
	if sa, sb := a.flush(), b.flush(); sa.Len() == 0 || sa.Len()+sb.Len() != 103 {
		t.Fatalf("series %d + %d, want 103 with a share on the aggregator that came back", sa.Len(), sb.Len())
	}
}
