package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestDialectsEndToEnd sends every tag style, the DogStatsD extensions and
// the lines each rule refuses as real datagrams (and one TCP stream) to the
// real binary, and checks the series at the Graphite backend, the events at
// stdout, and the skip reasons on /metrics.
func TestDialectsEndToEnd(t *testing.T) {
	g := garnertest.NewGraphite(t)
	p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite stdout\"\n[graphite]\naddress = %q\n", g.Addr()),
		"--metrics-addr", "127.0.0.1:0", "--tcp-metrics-addr", "127.0.0.1:0", "--flush-interval", "1h", "--shutdown-grace", "0s")
	udp, tcp, admin := p.UDPAddr(t), p.TCPAddr(t), p.AdminAddr(t)
	payloads := []string{
		"dd:1|c|#env:prod,az:a",
		"influx,env=prod,az=a:2|c",
		"librato#env=prod,az=a:3|c",
		"signal[env=prod,az=a]fx:4|c\n[env=prod,az=a]signal.start:5|c",
		"graphite;env=prod;az=a:6|c",
		"packed:1::2:|c\ngap:5:|g",
		"ext:1|c|c:ci-1|e:it-false|card:low",
		// refused, the good line after them kept
		"mixed,env=prod:1|c|#az:a\nutf8.na\xffme:1|c\nutf8.tag:1|c|#k:\xc3\nempty::|c\ngood:1|c",
		"_e{5,5}:title|te\\nt|d:abc|p:urgent|t:test|card:low|#k:v\n_sc|db.up|0|d:soon|m:fine\n_e{4,1}:\xffbad|x",
	}
	garnertest.SendUDP(t, udp, payloads...)
	garnertest.SendTCP(t, tcp, "tcp,env=prod:7|c\n")
	p.WaitRead(t, garnertest.CountLines(payloads...)+1)
	garnertest.WaitFor(t, "the event and service check at stdout", 20*time.Second, func() bool {
		return strings.Contains(p.Stdout(), "event title=") && strings.Contains(p.Stdout(), "service_check name=")
	})
	m := garnertest.MustScrape(t, admin)
	for reason, want := range map[string]float64{"mixed_tag_styles": 1, "invalid_utf8": 3, "bad_value": 1} {
		if got := m.Sum("garner_receiver_bad_lines_total", `reason="`+reason+`"`); got != want {
			t.Errorf("bad lines {reason=%q} = %v, want %v", reason, got, want)
		}
	}
	// c:, e:, card: of the metric; d:, p:, t:, card: of the event; d: of the check
	if got := m.Sum("garner_receiver_unknown_sections_total"); got != 8 {
		t.Errorf("unknown sections = %v, want 8", got)
	}
	out := p.Stdout()
	for _, want := range []string{`event title="title" text="te\nt"`, `priority=normal alert_type=info`, `tags="k:v"`,
		`service_check name="db.up" status=ok`, `message="fine"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bad") {
		t.Errorf("the event with invalid UTF-8 reached a backend:\n%s", out)
	}
	p.StopOK(t)

	got := values(g)
	const tags = ";az=a;env=prod;host=127.0.0.1"
	want := map[string]string{
		"stats.counters.dd.count" + tags:                   "1",
		"stats.counters.influx.count" + tags:               "2",
		"stats.counters.librato.count" + tags:              "3",
		"stats.counters.signalfx.count" + tags:             "4",
		"stats.counters.signal.start.count" + tags:         "5",
		"stats.counters.graphite.count" + tags:             "6",
		"stats.counters.tcp.count;env=prod;host=127.0.0.1": "7",
		"stats.counters.packed.count;host=127.0.0.1":       "3",
		"stats.gauges.gap;host=127.0.0.1":                  "5.000000",
		"stats.counters.ext.count;host=127.0.0.1":          "1",
		"stats.counters.good.count;host=127.0.0.1":         "1",
	}
	checkValues(t, got, want)
	for name := range got {
		if strings.Contains(name, "mixed") || strings.Contains(name, "utf8") || strings.Contains(name, "empty") {
			t.Errorf("a refused line produced output: %s", name)
		}
	}
}

// TestTagFormatsOff: with tag-formats = "dogstatsd" the other styles' characters are
// sanitised out of the name as before, and a |# section next to them is no
// mix.
func TestTagFormatsOff(t *testing.T) {
	g := garnertest.NewGraphite(t)
	p := garnertest.StartConfig(t, fmt.Sprintf("backends = \"graphite\"\ntag-formats = \"dogstatsd\"\n[graphite]\naddress = %q\n", g.Addr()),
		"--metrics-addr", "127.0.0.1:0", "--flush-interval", "1h", "--shutdown-grace", "0s")
	got := finalValues(t, p, g, p.UDPAddr(t), "foo,tag1=bar:1|c\nfoo#k=v:2|c\nfoo;k=v:3|c|#x:y\nfoo[k=v]:4|c")
	want := map[string]string{
		"stats.counters.footag1bar.count;host=127.0.0.1": "1",
		"stats.counters.fookv.count;host=127.0.0.1":      "6",
		"stats.counters.fookv.count;x=y;host=127.0.0.1":  "3",
	}
	checkValues(t, got, want)
}
