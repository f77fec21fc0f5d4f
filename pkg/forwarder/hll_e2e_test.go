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
	const perFwd = 100_000
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
