package forwarder_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// setTier runs 4 forwarders → 1 aggregator → Graphite, every garner with
// set-aggregation = mode (the real binary). Forwarder k gets, over TCP
// (no loss), members user-[k·perFwd/2, k·perFwd/2+perFwd) of one set: the
// union is 2.5·perFwd. It returns the set's flushed count and the bytes
// the aggregator received (request bodies, compressed).
func setTier(t *testing.T, mode string, perFwd int) (count, bodyBytes float64) {
	t.Setenv("GARNER_SET_AGGREGATION", mode)
	carb := garnertest.NewGraphite(t)
	a := startAggregator(t, carb, "", "")
	t.Setenv("GARNER_TCP_METRICS_ADDR", "127.0.0.1:0")
	var fwds []*node
	for k := 0; k < 4; k++ {
		fwds = append(fwds, startForwarder(t, "1s", "", a))
	}
	for k, f := range fwds {
		var b strings.Builder
		for i := k * perFwd / 2; i < k*perFwd/2+perFwd; i++ {
			b.WriteString("e2e.users:user-")
			b.WriteString(strconv.Itoa(i))
			b.WriteString("|s\n")
		}
		garnertest.SendTCP(t, f.p.TCPAddr(t), b.String())
	}
	for _, f := range fwds {
		f.p.WaitRead(t, perFwd)
		f.stop(t) // the final flush delivers what is left
	}
	bodyBytes = a.metric(t, "garner_ingest_body_bytes_total", "")
	invalid := a.metric(t, "garner_ingest_invalid_series_total", "")
	a.stop(t)
	if invalid != 0 {
		t.Errorf("the aggregator counted %g invalid series", invalid)
	}
	return points(carb)["stats.sets.e2e.users;host=127.0.0.1"], bodyBytes
}

// TestTierHLLSets: forwarders and an aggregator with set-aggregation = hll
// ship and merge HyperLogLog sketches (v3 Set field 5): the count of the
// union of overlapping sets is within 3 standard errors (3 × 1.04/√16384 =
// 2.4%), for far fewer bytes than the members exact mode ships.
func TestTierHLLSets(t *testing.T) {
	const perFwd = 40_000
	union := 2.5 * perFwd
	var exactCount, exactBytes float64
	t.Run("exact", func(t *testing.T) { exactCount, exactBytes = setTier(t, "exact", perFwd) })
	var hllCount, hllBytes float64
	t.Run("hll", func(t *testing.T) { hllCount, hllBytes = setTier(t, "hll", perFwd) })
	if exactCount != union {
		t.Errorf("exact mode: count %g, want %g", exactCount, union)
	}
	if rel := math.Abs(hllCount-union) / union; rel > 3*1.04/128 {
		t.Errorf("hll mode: count %g of %g distinct, relative error %.4f over 3 sigma", hllCount, union, rel)
	}
	t.Logf("%g distinct members from 4 forwarders: exact %g (%.0f bytes received), hll %g (%.0f bytes)",
		union, exactCount, exactBytes, hllCount, hllBytes)
	if hllBytes <= 0 || hllBytes > exactBytes/10 {
		t.Errorf("hll mode: %.0f bytes received, want ≤ 1/10 of exact mode's %.0f", hllBytes, exactBytes)
	}
}

// members returns set lines for members user-[from, to) of name.
func members(name string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(name + ":user-" + strconv.Itoa(i) + "|s\n")
	}
	return b.String()
}

// TestHLLSetsToV2Upstream: forwarders with set-aggregation = hll in front
// of a v2-only upstream (as gostatsd is): small sets go as their member
// hashes, so the upstream's union over forwarders is exact; a large set
// goes as made-up members as many as its estimate (counted: unit-tested in
// TestSketchSetEncoding). The forwarders flush once, at SIGTERM, so that no
// set is split over two flushes; that batch is re-encoded for v2 after the
// upstream's 404 to /v3.
func TestHLLSetsToV2Upstream(t *testing.T) {
	carb := garnertest.NewGraphite(t)
	agg := startAggregator(t, carb, "", "[ingestion]\nv3 = false\n")
	t.Setenv("GARNER_SET_AGGREGATION", "hll")
	t.Setenv("GARNER_TCP_METRICS_ADDR", "127.0.0.1:0")
	f1 := startForwarder(t, "1h", "", agg)
	f2 := startForwarder(t, "1h", "", agg)
	garnertest.SendTCP(t, f1.p.TCPAddr(t), members("v2.small", 0, 500)+members("v2.big", 0, 5000))
	garnertest.SendTCP(t, f2.p.TCPAddr(t), members("v2.small", 300, 600))
	f1.p.WaitRead(t, 5500)
	f2.p.WaitRead(t, 300)
	f1.stop(t)
	f2.stop(t)
	if n := agg.metric(t, "garner_ingest_requests_total", `endpoint="/v2/raw",result="accepted"`); n < 2 {
		t.Fatalf("the upstream accepted %g v2 requests, want 2", n)
	}
	agg.stop(t)
	pts := points(carb)
	if got := pts["stats.sets.v2.small;host=127.0.0.1"]; got != 600 {
		t.Errorf("small set through v2: %g, want exactly 600", got)
	}
	if got := pts["stats.sets.v2.big;host=127.0.0.1"]; math.Abs(got-5000)/5000 > 3*1.04/128 {
		t.Errorf("large set through v2: %g, want 5000 within 2.4%%", got)
	}
}
