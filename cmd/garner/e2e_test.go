package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// startWithGraphite runs garner with the graphite backend pointing at a
// fresh listener, UDP and TCP receivers on free loopback ports, plus args.
func startWithGraphite(t *testing.T, args ...string) (*garnertest.Process, *garnertest.Graphite, string, string) {
	t.Helper()
	g := garnertest.NewGraphite(t)
	p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\n", g.Addr()),
		append([]string{"--metrics-addr", "127.0.0.1:0", "--tcp-metrics-addr", "127.0.0.1:0", "--flush-interval", "1h", "--shutdown-grace", "0s"}, args...)...)
	return p, g, p.UDPAddr(t), p.TCPAddr(t)
}

// startIngestAggregator runs an aggregator that writes to g and takes
// ingestion on its admin server, no statsd listener, flushing at shutdown
// only, plus args.
func startIngestAggregator(t *testing.T, g *garnertest.Graphite, args ...string) *garnertest.Process {
	t.Helper()
	return garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\n", g.Addr()),
		append([]string{"--metrics-addr", "", "--enable-ingestion", "--flush-interval", "1h", "--shutdown-grace", "0s"}, args...)...)
}

// startForwarder runs a forwarder to endpoint with transport (TOML lines:
// flush-interval, tokens, tls-*) added to its [http-transport] section,
// its statsd receiver on a free UDP port, plus args.
func startForwarder(t *testing.T, endpoint, transport string, args ...string) *garnertest.Process {
	t.Helper()
	return garnertest.StartConfig(t, fmt.Sprintf("server-mode = \"forwarder\"\n[http-transport]\napi-endpoint = %q\n%s", endpoint, transport),
		append([]string{"--metrics-addr", "127.0.0.1:0", "--shutdown-grace", "0s"}, args...)...)
}

// finalValues sends each payload as a datagram to udp, waits until garner
// has read every line, stops it (the final flush) and returns values(g).
func finalValues(t *testing.T, p *garnertest.Process, g *garnertest.Graphite, udp string, payloads ...string) map[string]string {
	t.Helper()
	garnertest.SendUDP(t, udp, payloads...)
	p.WaitRead(t, garnertest.CountLines(payloads...))
	p.StopOK(t)
	if !g.WaitSent(10 * time.Second) {
		t.Fatalf("the graphite listener did not get the final flush: %d lines", len(g.Lines()))
	}
	return values(g)
}

// values maps "name;tags" to its value, for the last flush that has it.
func values(g *garnertest.Graphite) map[string]string {
	out := map[string]string{}
	for _, p := range g.Points() {
		out[p.Name] = p.Value
	}
	return out
}

// checkValues fails the test for every series of want whose value in got
// is not the one wanted, and then lists got in full.
func checkValues(t *testing.T, got, want map[string]string) {
	t.Helper()
	bad := false
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
			bad = true
		}
	}
	if bad {
		t.Logf("all series: %v", got)
	}
}

// writeToken writes token and a newline to the file name in dir, as
// replaceFile does, and returns its path.
func writeToken(t *testing.T, dir, name, token string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	replaceFile(t, path, []byte(token+"\n"))
	return path
}

// replaceFile writes data to path the way a deploy tool does: to a
// temporary file renamed over path, so that a reader finds the old content
// or the new one, never a part.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestProtocolAndAggregates sends one line of every kind the protocol has
// and checks garner's Graphite output name by name, value by value, against
// what gostatsd writes (with garner's documented bug fixes).
func TestProtocolAndAggregates(t *testing.T) {
	p, g, udp, _ := startWithGraphite(t, "--percent-threshold", "90 99.9 -50", "--default-tags", "dc:x")
	payloads := []string{
		// counters: floats add up, sample rate scales, packed values each count
		"cnt:0.4|c\ncnt:0.4|c\nsampled:1|c|@0.1\npacked:1:2:3|c\ntagged:1|c|#b:2,a:1,a:1",
		// gauges: last in arrival order within one datagram, deltas, negative
		"gau:1|g\ngau:7|g\ngau:3|g\ndelta:10|g\ndelta:+5|g\ndelta:-2|g",
		// timers (ms, h, d), sets, histogram, sanitising, sections in any order
		"tim:1:2:3:4|ms\nhis:5|h\ndist:7|d|@0.5\nset:a|s\nset:b|s\nset:a|s",
		"lat:3|ms|#gsd_histogram:5_10\nlat:7|ms|#gsd_histogram:5_10\nlat:70|ms|#gsd_histogram:5_10",
		"we ird/na*me:1|c\nsections:1|c|T1700000000|#k:v|c:cid|x:y|@0.5\r\n",
		// bad lines in the middle lose nothing around them
		"good:1|c\nthis is bad\nbad:1|zz\nbad:x|c\ngood:1|c",
		"_e{5,4}:title|text\n_sc|check|0",
	}
	got := finalValues(t, p, g, udp, payloads...)
	const h = ";dc=x;host=127.0.0.1"
	want := map[string]string{
		"stats.counters.cnt.count" + h:            "0.8",
		"stats.counters.sampled.count" + h:        "10",
		"stats.counters.packed.count" + h:         "6",
		"stats.counters.tagged.count;a=1;b=2" + h: "1",
		"stats.gauges.gau" + h:                    "3.000000",
		"stats.gauges.delta" + h:                  "13.000000",
		"stats.timers.tim.count" + h:              "4",
		"stats.timers.tim.lower" + h:              "1.000000",
		"stats.timers.tim.upper" + h:              "4.000000",
		"stats.timers.tim.mean" + h:               "2.500000",
		"stats.timers.tim.median" + h:             "2.500000",
		"stats.timers.tim.sum" + h:                "10.000000",
		"stats.timers.tim.sum_squares" + h:        "30.000000",
		"stats.timers.tim.std" + h:                "1.118034",
		"stats.timers.tim.count_90" + h:           "4.000000",
		"stats.timers.tim.upper_90" + h:           "4.000000",
		"stats.timers.tim.count_99_9" + h:         "4.000000",
		"stats.timers.tim.count_-50" + h:          "2.000000",
		"stats.timers.tim.lower_-50" + h:          "3.000000",
		"stats.timers.tim.sum_-50" + h:            "7.000000",
		"stats.timers.his.count" + h:              "1",
		"stats.timers.dist.count" + h:             "2",
		"stats.sets.set" + h:                      "2",
		"stats.counters.lat.histogram;dc=x;gsd_histogram=5_10;le=5;host=127.0.0.1":    "1",
		"stats.counters.lat.histogram;dc=x;gsd_histogram=5_10;le=10;host=127.0.0.1":   "2",
		"stats.counters.lat.histogram;dc=x;gsd_histogram=5_10;le=+Inf;host=127.0.0.1": "3",
		"stats.counters.we_ird-name.count" + h:                                        "1",
		"stats.counters.sections.count;dc=x;k=v;host=127.0.0.1":                       "2",
		"stats.counters.good.count" + h:                                               "2",
	}
	checkValues(t, got, want)
	for name := range got {
		if strings.Contains(name, ".bad") || strings.Contains(name, "this") {
			t.Errorf("bad line produced output: %s", name)
		}
	}
	// Rates use the measured interval: positive and consistent with counts.
	rate, err := strconv.ParseFloat(got["stats.counters.sampled.rate"+h], 64)
	if err != nil || rate <= 0 {
		t.Errorf("sampled.rate = %q", got["stats.counters.sampled.rate"+h])
	}
}

// TestTotalsAcrossFlushesUDPAndTCP checks that counter totals summed over
// many flushes equal what was sent, over UDP and TCP, and that the final
// flush on SIGTERM delivers the tail.
func TestTotalsAcrossFlushesUDPAndTCP(t *testing.T) {
	p, g, udp, tcp := startWithGraphite(t, "--flush-interval", "200ms")
	const rounds, perRound = 20, 50
	for r := 0; r < rounds; r++ {
		var b strings.Builder
		for i := 0; i < perRound; i++ {
			fmt.Fprintf(&b, "u.total:1|c\nu.timer:%d|ms\n", i)
		}
		garnertest.SendUDP(t, udp, b.String())
		garnertest.SendTCP(t, tcp, strings.ReplaceAll(b.String(), "u.", "t."))
		time.Sleep(30 * time.Millisecond) // spread over several flushes
	}
	p.WaitRead(t, rounds*perRound*2*2) // two lines per round and sender, UDP and TCP
	p.StopOK(t)
	sums := map[string]float64{}
	for _, pt := range g.Points() {
		base := pt.Name[:strings.IndexByte(pt.Name+";", ';')]
		if strings.HasSuffix(base, ".count") {
			v, _ := strconv.ParseFloat(pt.Value, 64)
			sums[base] += v
		}
	}
	for _, name := range []string{"stats.counters.u.total.count", "stats.counters.t.total.count", "stats.timers.u.timer.count", "stats.timers.t.timer.count"} {
		if sums[name] != rounds*perRound {
			t.Errorf("%s summed over flushes = %v, want %d", name, sums[name], rounds*perRound)
		}
	}
}

// TestSigtermFinalFlush: with an hour-long interval only the final flush on
// SIGTERM can deliver anything.
func TestSigtermFinalFlush(t *testing.T) {
	p, g, udp, _ := startWithGraphite(t)
	var dgs []string
	for i := 0; i < 200; i++ {
		dgs = append(dgs, strings.Repeat("final:1|c\n", 10))
	}
	garnertest.SendUDP(t, udp, dgs...)
	p.StopOK(t)
	if v := values(g)["stats.counters.final.count;host=127.0.0.1"]; v != "2000" {
		t.Fatalf("final flush delivered %q, want 2000\n%s", v, p.Stderr())
	}
}

func TestAlignedFlush(t *testing.T) {
	p, g, udp, _ := startWithGraphite(t, "--flush-interval", "2s", "--flush-aligned", "--flush-offset", "1s")
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) && len(g.Points()) < 6 {
		garnertest.SendUDP(t, udp, "aligned:1|c")
		time.Sleep(200 * time.Millisecond)
	}
	g.Close()
	pts := g.Points()
	if len(pts) < 4 {
		t.Fatalf("only %d points", len(pts))
	}
	for _, pt := range pts {
		if pt.Time%2 != 1 {
			t.Errorf("flush at %d: not on an odd second (interval 2s, offset 1s)", pt.Time)
		}
	}
	_ = p
}

func TestExpiryAndIdleSeries(t *testing.T) {
	p, g, udp, _ := startWithGraphite(t, "--flush-interval", "300ms", "--expiry-interval", "1s", "--expiry-interval-gauge", "0")
	garnertest.SendUDP(t, udp, "idle.c:5|c\nidle.g:42|g\nidle.t:1|ms")
	// 8 flushes: the counter's 1s expiry has passed by the 5th.
	if !g.WaitFor(20*time.Second, func(lines []string) bool {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "stats.gauges.idle.g") {
				n++
			}
		}
		return n >= 8
	}) {
		t.Errorf("fewer than 8 flushes of the gauge in 20s")
	}
	p.StopOK(t)
	var counts, gaugesSeen []string
	for _, pt := range g.Points() {
		switch {
		case strings.HasPrefix(pt.Name, "stats.counters.idle.c.count"):
			counts = append(counts, pt.Value)
		case strings.HasPrefix(pt.Name, "stats.gauges.idle.g"):
			gaugesSeen = append(gaugesSeen, pt.Value)
		}
	}
	// 5 once, zeros while idle, then gone after ~1s; 8 flushes (2.4s) or more.
	if len(counts) < 3 || counts[0] != "5" || counts[1] != "0" || len(counts) > 6 {
		t.Errorf("counter over flushes: %v (want 5, then 0s, then expired)", counts)
	}
	// expiry-interval-gauge=0: never expires, repeats its value every flush.
	if len(gaugesSeen) < 7 {
		t.Errorf("gauge seen %d times, want every flush: %v", len(gaugesSeen), gaugesSeen)
	}
	for _, v := range gaugesSeen {
		if v != "42.000000" {
			t.Fatalf("gauge value %s", v)
		}
	}
}

func TestGraphiteModes(t *testing.T) {
	for mode, want := range map[string][]string{
		"basic":  {"pre.c.x.count.suf", "pre.c.x.rate.suf", "pre.g.y.suf"},
		"legacy": {"stats_counts.x.suf", "stats.x.suf", "stats.gauges.y.suf"}, // gostatsd ignores the prefixes in legacy mode, not the suffix
	} {
		t.Run(mode, func(t *testing.T) {
			g := garnertest.NewGraphite(t)
			p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\nmode = %q\nglobal_prefix = \"pre\"\nprefix_counter = \"c\"\nprefix_gauge = \"g\"\nglobal_suffix = \"suf\"\n", g.Addr(), mode),
				"--metrics-addr", "127.0.0.1:0", "--flush-interval", "1h")
			finalValues(t, p, g, p.UDPAddr(t), "x:1|c|#k:v\ny:2|g")
			var names []string
			for _, pt := range g.Points() {
				names = append(names, pt.Name)
			}
			sort.Strings(names)
			sort.Strings(want)
			if strings.Join(names, " ") != strings.Join(want, " ") {
				t.Fatalf("names %v, want %v", names, want)
			}
		})
	}
}

func TestUnixgramAndIPv6(t *testing.T) {
	g := garnertest.NewGraphite(t)
	sock := filepath.Join(t.TempDir(), "statsd.sock")
	cfg := garnertest.WriteConfig(t, fmt.Sprintf("backends = \"graphite\"\n[graphite]\naddress = %q\n", g.Addr()))
	p := garnertest.StartReady(t, "--config-path", cfg, "--metrics-addr", sock, "--flush-interval", "1h")
	c, err := net.Dial("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("unix.c:3|c"))
	_ = c.Close()

	p.WaitRead(t, 1)
	p6 := garnertest.Start(t, "--config-path", cfg, "--metrics-addr", "[::1]:0", "--flush-interval", "1h")
	if !p6.WaitStderr("garner started", 10*time.Second) {
		t.Skipf("no IPv6 loopback here: %s", p6.Stderr())
	}
	garnertest.SendUDP(t, p6.UDPAddr(t), "v6.c:4|c")
	p6.WaitRead(t, 1)
	p.StopOK(t)
	p6.StopOK(t)
	got := values(g)
	if got["stats.counters.unix.c.count"] != "3" {
		t.Errorf("unixgram: %v", got)
	}
	if got["stats.counters.v6.c.count;host=::1"] != "4" {
		t.Errorf("ipv6: %v", got)
	}
}

// TestUnixSocketMode: the unix datagram socket gets metrics-socket-mode
// (default 0622), takes datagrams, and is removed at shutdown only while it
// is still garner's.
func TestUnixSocketMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	p := garnertest.StartConfig(t, "backends = \"null\"\n", "--metrics-addr", path)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o622 {
		t.Errorf("socket mode %o, want 0622", fi.Mode().Perm())
	}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("sock.count:1|c")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.WaitRead(t, 1)
	p.StopOK(t)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}

	// Another process takes the path while garner runs: garner leaves it.
	path2 := filepath.Join(dir, "t.sock")
	p = garnertest.StartConfig(t, "backends = \"null\"\n", "--metrics-addr", path2, "--metrics-socket-mode", "0620")
	if fi, err := os.Lstat(path2); err != nil || fi.Mode().Perm() != 0o620 {
		t.Fatalf("socket mode: %v %v, want 0620", fi, err)
	}
	if err := os.Remove(path2); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path2, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p.StopOK(t)
	if _, err := os.Lstat(path2); err != nil {
		t.Errorf("garner removed a socket another process had bound: %v", err)
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"--flush-interval=soon", `"flush-interval"`},
		{"--backends=graphite nosuch", `"backends"`},
		{"--no-such-flag", "no-such-flag"},
	} {
		p := garnertest.Start(t, tc.name)
		if code := p.Wait(10 * time.Second); code != 2 {
			t.Errorf("%s: exit %d, want 2", tc.name, code)
		}
		if !strings.Contains(p.Stderr(), tc.want) {
			t.Errorf("%s: message does not name %s: %s", tc.name, tc.want, p.Stderr())
		}
	}
}

func TestVersion(t *testing.T) {
	p := garnertest.Start(t, "--version")
	if code := p.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out := p.Stdout(); !strings.HasPrefix(out, "garner ") || !strings.Contains(out, "commit ") || !strings.Contains(out, "built ") {
		t.Fatalf("--version printed %q", out)
	}
}

// TestStdoutDefault runs the embedded default config's backend.
func TestStdoutDefault(t *testing.T) {
	p := garnertest.StartReady(t, "--metrics-addr", "127.0.0.1:0", "--flush-interval", "1h")
	garnertest.SendUDP(t, p.UDPAddr(t), "hello.world:1|c|#k:v\n_e{2,3}:hi|you")
	p.WaitRead(t, 2)
	p.StopOK(t)
	out := p.Stdout()
	if !strings.Contains(out, "counter hello.world;k=v;host=127.0.0.1 value=1 ") || !strings.Contains(out, `event title="hi" text="you"`) {
		t.Fatalf("stdout backend printed:\n%s", out)
	}
}

// TestInternalStatser: with statser-type internal, garner's own metrics come
// out of the backends like any metric, under internal-namespace, with
// internal-tags and the hostname as source.
func TestInternalStatser(t *testing.T) {
	g := garnertest.NewGraphite(t)
	p, udp := startWithConfig(t, fmt.Sprintf("backends = 'graphite'\n[graphite]\naddress = '%s'\n", g.Addr()),
		"--flush-interval", "200ms", "--statser-type", "internal", "--internal-tags", "role:test", "--hostname", "testhost")
	garnertest.SendUDP(t, udp, "a:1|c\nb:1|c\nc:1|c")
	const name = "stats.counters.statsd.garner_receiver_lines_total.count;receiver=udp;role=test;host=testhost"
	ok := g.WaitFor(10*time.Second, func(lines []string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, name+" ") && !strings.HasPrefix(l, name+" 0 ") {
				return true
			}
		}
		return false
	})
	p.StopOK(t)
	if !ok {
		t.Fatalf("no %s with a positive value in:\n%s", name, strings.Join(g.Lines(), "\n"))
	}
	total := 0.0
	for _, pt := range g.Points() {
		if pt.Name == name {
			v, _ := strconv.ParseFloat(pt.Value, 64)
			total += v
		}
	}
	if total != 3 {
		t.Errorf("lines counted by the internal statser over all flushes = %v, want 3", total)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// cardinality is what /debug/cardinality answers.
type cardinality struct {
	Series int `json:"series"`
	Top    []struct {
		Name   string `json:"name"`
		Series int    `json:"series"`
	} `json:"top"`
}

// waitCardinality asks /debug/cardinality?limit=limit until it holds
// series series (the shards may not have applied the last lines read yet).
func waitCardinality(t *testing.T, admin string, limit, series int) cardinality {
	t.Helper()
	var card cardinality
	garnertest.WaitFor(t, fmt.Sprintf("/debug/cardinality to count %d series", series), 10*time.Second, func() bool {
		getJSON(t, fmt.Sprintf("http://%s/debug/cardinality?limit=%d", admin, limit), &card)
		return card.Series == series
	})
	return card
}

// TestCardinalityEndpointAsksTheShards: without max-series-per-metric the
// shards count the names when asked; the answer is the same kind.
func TestCardinalityEndpointAsksTheShards(t *testing.T) {
	p, _, udp, _ := startWithGraphite(t)
	var b strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "req:1|c|#user:%d\nlat:%d|ms|#user:%d\n", i, i, i%4)
	}
	b.WriteString("other:1|g\n")
	garnertest.SendUDP(t, udp, b.String())
	card := waitCardinality(t, p.AdminAddr(t), 2, 15)
	if got := fmt.Sprint(card.Top); got != "[{req 10} {lat 4}]" {
		t.Errorf("/debug/cardinality top 2: %s, want [{req 10} {lat 4}]", got)
	}
	p.StopOK(t)
}

// TestCardinalityAndBadLinesEndpoints: limits fold refused series into
// <name>.__overflow__ on the wire, and the debug endpoints show the top names
// and the last bad lines with reason and source.
func TestCardinalityAndBadLinesEndpoints(t *testing.T) {
	p, g, udp, _ := startWithGraphite(t, "--max-series-per-metric", "3", "--cardinality-overflow")
	admin := p.AdminAddr(t)
	var b strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "req:1|c|#user:%d\n", i)
	}
	b.WriteString("other:1|c\nnot a line\nx:1|qq\nbin\x00\xff:1|zz\n")
	garnertest.SendUDP(t, udp, b.String())
	p.WaitRead(t, garnertest.CountLines(b.String()))

	card := waitCardinality(t, admin, 1, 5)
	if len(card.Top) != 1 || card.Top[0].Name != "req" || card.Top[0].Series != 3 {
		t.Errorf("/debug/cardinality: %+v", card)
	}
	var bad struct {
		Lines []struct{ Reason, Source, Line, Receiver string } `json:"lines"`
	}
	getJSON(t, "http://"+admin+"/debug/bad-lines", &bad)
	if len(bad.Lines) != 3 || bad.Lines[0].Reason != "invalid_utf8" || bad.Lines[0].Line != "bin\x00\xff:1|zz" && !strings.HasPrefix(bad.Lines[0].Line, "bin") ||
		bad.Lines[2].Reason != "missing_value" || bad.Lines[2].Source != "127.0.0.1" || bad.Lines[2].Receiver != "udp" {
		t.Errorf("/debug/bad-lines: %+v", bad.Lines)
	}
	p.StopOK(t)
	got := values(g)
	if got["stats.counters.req.__overflow__.count"] != "7" || got["stats.counters.other.count;host=127.0.0.1"] != "1" {
		t.Errorf("overflow on the wire: %v", got)
	}
}
