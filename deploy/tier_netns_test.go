package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

const (
	tierName      = "aggregators.garner.test"
	tierSeries    = 300 // distinct names each forwarder sends per round
	linesPerDgram = 25
)

// tier is three aggregator hosts, three forwarder hosts and a DNS server
// on one LAN of network namespaces. The forwarders find the aggregators
// through dnsmasq (one A record per member, changed with SIGHUP), as agents
// find a StatefulSet through its headless Service.
type tier struct {
	lan       *lan
	hostsFile string
	dns       *garnertest.Process
	aggs      []host
	aggProcs  []*garnertest.Process
	graphite  []*garnertest.Graphite // one per aggregator, in the test's namespace
	fwds      []host
	fwdConns  []interface{ Write([]byte) (int, error) }
}

// aggregatorTOML is the config of a tier member that ingests, flushes to
// Graphite at graphiteAddr every 300ms only what arrived in the interval
// (so every increment shows once), and stops at once.
func aggregatorTOML(graphiteAddr string) string {
	return fmt.Sprintf(`
enable-ingestion = true
metrics-addr = ""
flush-interval = "300ms"
expiry-interval = "-1s"
shutdown-grace = "0s"
backends = "graphite"
[graphite]
address = %q
`, graphiteAddr)
}

// seriesKey is one series as the aggregators see it: name and source.
type seriesKey struct{ name, host string }

func TestTierOnNetworkNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven processes in network namespaces")
	}
	dnsmasq := requireTool(t, "dnsmasq")
	l := newLAN(t)
	bin := garnertest.Binary(t)
	tr := &tier{lan: l, hostsFile: filepath.Join(t.TempDir(), "tier.hosts")}
	dnsHost := l.addHost("dns", 10, "")
	for i, name := range []string{"agga", "aggb", "aggc"} {
		tr.aggs = append(tr.aggs, l.addHost(name, 1+i, ""))
	}
	tr.setMembers(t, 0, 1, 2)
	tr.dns = garnertest.StartBinary(t, "ip", dnsHost.command(dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--addn-hosts="+tr.hostsFile, "--local-ttl=0", "--listen-address="+dnsHost.ip,
		"--bind-interfaces", "--user=root", "--group=root", "--pid-file="+filepath.Join(t.TempDir(), "dnsmasq.pid"), "--log-facility=-")...)
	if !tr.dns.WaitStderr("read "+tr.hostsFile, 10*time.Second) {
		t.Fatalf("dnsmasq did not start:\n%s", tr.dns.Stderr())
	}

	dir := t.TempDir()
	for i, h := range tr.aggs {
		g, err := garnertest.ListenGraphite(l.ip + ":0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		tr.graphite = append(tr.graphite, g)
		cfg := writeFile(t, dir, fmt.Sprintf("agg%d.toml", i), aggregatorTOML(g.Addr()))
		tr.aggProcs = append(tr.aggProcs, garnertest.StartBinary(t, "ip", h.command(bin, "--config-path", cfg, "--admin-addr=0.0.0.0:8126")...))
	}
	fcfg := writeFile(t, dir, "forwarder.toml", fmt.Sprintf(`
server-mode = "forwarder"
metrics-addr = "0.0.0.0:8125"
shutdown-grace = "0s"
[http-transport]
api-endpoint = "http://%s:8126"
dns-refresh = "200ms"
flush-interval = "200ms"
max-request-elapsed-time = "3s"
# What is held for a member that is gone is kept this long (default 10m):
# short, so the round after the SIGKILL sees it dropped and counted.
max-buffer-age = "3s"
upstream-failures = 2
probe-interval = "500ms"
`, tierName))
	for i := 0; i < 3; i++ {
		h := l.addHost(fmt.Sprintf("fwd%d", i), 21+i, dnsHost.ip)
		tr.fwds = append(tr.fwds, h)
		garnertest.StartBinary(t, "ip", h.command(bin, "--config-path", fcfg, "--admin-addr=0.0.0.0:8126")...)
	}
	for _, h := range tr.aggs {
		waitHTTP(t, h.ip+":8126")
	}
	for _, h := range tr.fwds {
		waitHTTP(t, h.ip+":8126")
		// The sender runs on the forwarder's host: the source garner
		// records is that host's real address.
		tr.fwdConns = append(tr.fwdConns, h.dialUDP(t, h.ip+":8125"))
	}
	tr.waitUpstreams(t, 3, 0)

	all, _ := tr.round(t, "three members", 0)
	shares := map[int]int{}
	for _, a := range all {
		shares[a]++
	}
	total := len(tr.fwds) * tierSeries
	for i := range tr.aggs {
		if f := float64(shares[i]) / float64(total); f < 0.2 || f > 0.47 {
			t.Errorf("aggregator %d holds %.0f%% of the series, want about a third", i, 100*f)
		}
	}

	// Member c leaves DNS: only its series move, each to one of the others.
	tr.setMembers(t, 0, 1)
	tr.waitUpstreams(t, 2, 0)
	without, _ := tr.round(t, "c removed from DNS", 0)
	moved := 0
	for k, a := range all {
		switch {
		case a != 2 && without[k] != a:
			t.Errorf("%v moved from %d to %d though its aggregator stayed", k, a, without[k])
		case a == 2 && without[k] == 2:
			t.Errorf("%v is still on c after c left DNS", k)
		case a == 2:
			moved++
		}
	}
	t.Logf("removing 1 of 3 members moved %d of %d series (%.1f%%)", moved, total, 100*float64(moved)/float64(total))

	// It comes back: it takes exactly its share again.
	tr.setMembers(t, 0, 1, 2)
	tr.waitUpstreams(t, 3, 0)
	back, _ := tr.round(t, "c back in DNS", 0)
	for k, a := range all {
		if back[k] != a {
			t.Errorf("%v is on %d after c came back, was on %d with three members", k, back[k], a)
		}
	}

	// Member b is SIGKILLed (it stays in DNS): the forwarders' requests to
	// it fail, what they held for it is dropped after max-buffer-age and
	// counted, and they route around it from then on.
	tr.aggProcs[1].Signal(syscall.SIGKILL)
	tr.aggProcs[1].Wait(5 * time.Second)
	killed, dropped := tr.round(t, "b killed", -1)
	if dropped == 0 || dropped > shares[1] {
		t.Errorf("b killed: %d series dropped, want some and at most b's share %d (the first batches for b fail; then b is out)", dropped, shares[1])
	}
	for k, a := range killed {
		if a == 1 {
			t.Errorf("%v reached the killed aggregator", k)
		}
	}
	tr.waitUpstreams(t, 2, 1)
	rerouted0 := tr.forwarderSum(t, "garner_forwarder_rerouted_series_total")
	after, _ := tr.round(t, "b out of the choice", 0)
	for k, a := range all {
		if a != 1 && after[k] != a {
			t.Errorf("%v moved from %d to %d though its aggregator is alive", k, a, after[k])
		}
	}
	if got, want := tr.forwarderSum(t, "garner_forwarder_rerouted_series_total")-rerouted0, float64(shares[1]); got != want {
		t.Errorf("rerouted series: %v, want b's share %v", got, want)
	}
}

// setMembers writes the DNS records of the given aggregators and makes
// dnsmasq re-read them.
func (tr *tier) setMembers(t *testing.T, members ...int) {
	t.Helper()
	var b strings.Builder
	for _, m := range members {
		fmt.Fprintf(&b, "%s %s\n", tr.aggs[m].ip, tierName)
	}
	if err := os.WriteFile(tr.hostsFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if tr.dns != nil {
		tr.dns.Signal(syscall.SIGHUP)
	}
}

// round sends every forwarder's series once (each a counter of 1) and
// waits until each series reached exactly one aggregator's backend with
// its exact value, or was counted as dropped by its forwarder. maxDropped
// is how many drops are allowed (-1: any). It returns where each series
// landed and how many were dropped.
func (tr *tier) round(t *testing.T, what string, maxDropped int) (map[seriesKey]int, int) {
	t.Helper()
	for _, g := range tr.graphite {
		g.Reset()
	}
	dropped0 := tr.forwarderSum(t, "garner_forwarder_dropped_series_total")
	for _, c := range tr.fwdConns {
		var d strings.Builder
		for j := 0; j < tierSeries; j++ {
			fmt.Fprintf(&d, "deploy.s%d:1|c\n", j)
			if (j+1)%linesPerDgram == 0 || j == tierSeries-1 {
				if _, err := c.Write([]byte(d.String())); err != nil {
					t.Fatal(err)
				}
				d.Reset()
			}
		}
	}
	want := len(tr.fwds) * tierSeries
	var where map[seriesKey]int
	var dropped int
	deadline := time.Now().Add(30 * time.Second)
	for {
		var delivered int
		where, delivered = tr.delivered(t, what)
		dropped = int(tr.forwarderSum(t, "garner_forwarder_dropped_series_total") - dropped0)
		if delivered+dropped >= want {
			if delivered+dropped > want {
				t.Fatalf("%s: %d series delivered + %d dropped > %d sent", what, delivered, dropped, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d series delivered + %d dropped of %d sent", what, delivered, dropped, want)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if maxDropped >= 0 && dropped > maxDropped {
		t.Errorf("%s: %d series dropped", what, dropped)
	}
	fwdIPs := map[string]bool{}
	for _, f := range tr.fwds {
		fwdIPs[f.ip] = true
	}
	for k := range where {
		if !fwdIPs[k.host] {
			t.Errorf("%s: %v has source %q, not a forwarder host's address", what, k, k.host)
		}
	}
	t.Logf("%s: %d delivered, %d dropped and counted", what, len(where), dropped)
	return where, dropped
}

// delivered reads every aggregator's backend: where each series landed
// and how many counter increments arrived in all. A series on two
// aggregators, or with a value other than 1, fails the test.
func (tr *tier) delivered(t *testing.T, what string) (map[seriesKey]int, int) {
	t.Helper()
	where := map[seriesKey]int{}
	n := 0
	for i, g := range tr.graphite {
		for _, p := range g.Points() {
			name, tags, _ := strings.Cut(p.Name, ";")
			name, ok := strings.CutPrefix(name, "stats.counters.")
			if !ok || !strings.HasSuffix(name, ".count") {
				continue
			}
			k := seriesKey{name: strings.TrimSuffix(name, ".count")}
			for _, tag := range strings.Split(tags, ";") {
				if v, ok := strings.CutPrefix(tag, "host="); ok {
					k.host = v
				}
			}
			if v, err := strconv.ParseFloat(p.Value, 64); err != nil || v != 1 {
				t.Fatalf("%s: %v = %q on aggregator %d, want exactly 1", what, k, p.Value, i)
			}
			if other, ok := where[k]; ok {
				t.Fatalf("%s: %v reached aggregators %d and %d", what, k, other, i)
			}
			where[k] = i
			n++
		}
	}
	return where, n
}

// waitUpstreams waits until every forwarder routes to up upstreams and
// holds down upstreams out of the choice.
func (tr *tier) waitUpstreams(t *testing.T, up, down int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, f := range tr.fwds {
		for {
			m := garnertest.MustScrape(t, f.ip+":8126")
			gotUp, gotDown := m.Sum("garner_forwarder_upstreams", `state="up"`), m.Sum("garner_forwarder_upstreams", `state="down"`)
			if gotUp == float64(up) && gotDown == float64(down) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("forwarder %s has %v upstreams up and %v down, want %d and %d", f.ip, gotUp, gotDown, up, down)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}
}

func (tr *tier) forwarderSum(t *testing.T, name string) float64 {
	t.Helper()
	var sum float64
	for _, f := range tr.fwds {
		sum += garnertest.MustScrape(t, f.ip+":8126").Sum(name)
	}
	return sum
}

// waitHTTP waits until addr answers /health/ready with 200.
func waitHTTP(t *testing.T, addr string) {
	t.Helper()
	garnertest.WaitFor(t, addr+" is ready", 30*time.Second, garnertest.HTTPReady("http://"+addr+"/health/ready"))
}
