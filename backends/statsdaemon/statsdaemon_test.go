package statsdaemon

import (
	"context"
	"fmt"
	"math"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

func newClient(t *testing.T, cfg Options) (*Client, prometheus.Counter) {
	t.Helper()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 2 * time.Second
	}
	deps, _, dropped := garnertest.BackendDeps()
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, dropped
}

// udpSink reads datagrams on a loopback socket.
type udpSink struct {
	conn net.PacketConn
	mu   sync.Mutex
	got  [][]byte
}

func newUDPSink(t *testing.T) *udpSink {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	s := &udpSink{conn: pc}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, append([]byte(nil), buf[:n]...))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = pc.Close() })
	return s
}

func (s *udpSink) wait(t *testing.T, lines int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := 0
		for _, d := range s.got {
			n += strings.Count(string(d), "\n") + 1
		}
		got := append([][]byte(nil), s.got...)
		s.mu.Unlock()
		if n >= lines || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bigSnapshot has every kind of series, enough to need many datagrams.
func bigSnapshot() *model.Snapshot {
	s := &model.Snapshot{Time: time.Now(), Interval: time.Second}
	for i := range 200 {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{Name: fmt.Sprintf("app.requests.%03d", i), Tags: []string{"env:prod", "region:eu-west-1"}, Source: "10.0.0.1"}, Value: float64(i) + 0.5})
	}
	s.Timers = []model.Timer{
		{Series: model.Series{Name: "app.lat", Tags: []string{"ep:/x"}}, Values: []float64{1, 2.5, 300}, SampledCount: 30},
		{Series: model.Series{Name: "app.unsampled"}, Values: []float64{7, 8}, SampledCount: 2},
		{Series: model.Series{Name: "app.idle"}}, // no values: nothing to send
	}
	s.Gauges = []model.Gauge{
		{Series: model.Series{Name: "app.temp"}, Value: -12.25},
		{Series: model.Series{Name: "app.up"}, Value: 1},
		{Series: model.Series{Name: "app.nan"}, Value: math.NaN()},
		{Series: model.Series{Name: "app.inf"}, Value: math.Inf(1)},
	}
	s.Sets = []model.Set{{Series: model.Series{Name: "app.users", Tags: []string{"k:v"}}, Members: map[string]struct{}{"alice": {}, "bob": {}, "c-3": {}}}}
	return s
}

func wantLines(tags bool) []string {
	var out []string
	tg := func(s string) string {
		if !tags || s == "" {
			return ""
		}
		return "|#" + s
	}
	for i := range 200 {
		out = append(out, fmt.Sprintf("app.requests.%03d:%v|c%s", i, float64(i)+0.5, tg("env:prod,region:eu-west-1")))
	}
	out = append(out,
		"app.lat:1|ms|@0.1"+tg("ep:/x"), "app.lat:2.5|ms|@0.1"+tg("ep:/x"), "app.lat:300|ms|@0.1"+tg("ep:/x"),
		"app.unsampled:7|ms", "app.unsampled:8|ms",
		"app.temp:0|g", "app.temp:-12.25|g", "app.up:1|g", "app.inf:1.7976931348623157e+308|g",
		"app.users:alice|s"+tg("k:v"), "app.users:bob|s"+tg("k:v"), "app.users:c-3|s"+tg("k:v"),
	)
	sort.Strings(out)
	return out
}

func TestUDPDatagrams(t *testing.T) {
	for _, disableTags := range []bool{false, true} {
		t.Run(fmt.Sprintf("disable_tags=%v", disableTags), func(t *testing.T) {
			sink := newUDPSink(t)
			c, dropped := newClient(t, Options{Address: sink.conn.LocalAddr().String(), DisableTags: disableTags})
			if err := c.SendMetrics(context.Background(), bigSnapshot()); err != nil {
				t.Fatal(err)
			}
			want := wantLines(!disableTags)
			dgrams := sink.wait(t, len(want))
			var got []string
			for _, d := range dgrams {
				if len(d) > MaxUDPPacketSize {
					t.Errorf("datagram of %d bytes > %d", len(d), MaxUDPPacketSize)
				}
				if strings.HasSuffix(string(d), "\n") {
					t.Errorf("datagram ends with a newline")
				}
				if strings.Contains(string(d), "app.temp:-12.25|g") && !strings.Contains(string(d), "app.temp:0|g\napp.temp:-12.25|g") {
					t.Errorf("negative gauge not preceded by :0|g in the same datagram: %q", d)
				}
				got = append(got, strings.Split(string(d), "\n")...)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("lines differ:\n got %d %v\nwant %d %v", len(got), got, len(want), want)
			}
			total := len(strings.Join(want, "\n"))
			if min := (total + MaxUDPPacketSize - 1) / MaxUDPPacketSize; len(dgrams) < min || len(dgrams) > 2*min {
				t.Errorf("%d datagrams for %d bytes of lines, want between %d and %d", len(dgrams), total, min, 2*min)
			}
			// Every line parses with garner's own statsd parser.
			var m statsd.Metric
			for _, l := range got {
				if err := m.Parse([]byte(l)); err != nil {
					t.Errorf("line %q does not parse: %v", l, err)
				}
			}
			if v := testutil.ToFloat64(dropped); v != 0 {
				t.Errorf("dropped = %v", v)
			}
			if v := testutil.ToFloat64(c.m.nonFinite); v != 2 {
				t.Errorf("non-finite = %v, want 2 (NaN skipped, +Inf clamped)", v)
			}
		})
	}
}

func TestTCPLines(t *testing.T) {
	g := garnertest.NewGraphite(t)
	c, _ := newClient(t, Options{Address: g.Addr(), TCPTransport: true})
	for range 2 { // the second flush reuses the connection
		if err := c.SendMetrics(context.Background(), bigSnapshot()); err != nil {
			t.Fatal(err)
		}
	}
	want := wantLines(true)
	if !g.WaitFor(5*time.Second, func(lines []string) bool { return len(lines) >= 2*len(want) }) {
		t.Fatalf("got %d lines, want %d", len(g.Lines()), 2*len(want))
	}
	got := g.Lines()
	sort.Strings(got)
	var want2 []string
	for _, w := range want {
		want2 = append(want2, w, w)
	}
	if !reflect.DeepEqual(got, want2) {
		t.Errorf("lines differ:\n got %v\nwant %v", got, want2)
	}
	if v := testutil.ToFloat64(c.m.connects); v != 1 {
		t.Errorf("connects = %v, want 1 (persistent connection)", v)
	}
}

func TestTCPDownDropsAndCounts(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t)) // nobody listens
	c, dropped := newClient(t, Options{Address: addr, TCPTransport: true})
	if err := c.CheckHealth(context.Background()); err == nil {
		t.Error("health check of a closed port succeeded")
	}
	snap := bigSnapshot()
	start := time.Now()
	for range 2 {
		if err := c.SendMetrics(context.Background(), snap); err == nil {
			t.Fatal("want an error")
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("two flushes to a closed port took %s", d)
	}
	// The idle timer and the NaN gauge have no line, so they are not dropped.
	if got, want := testutil.ToFloat64(dropped), float64(2*(snap.Len()-2)); got != want {
		t.Errorf("dropped = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(c.m.writeErrors); got != 2 {
		t.Errorf("write errors = %v, want one failed dial per flush", got)
	}
}

func TestEventAndServiceCheckRoundTrip(t *testing.T) {
	ev := &model.Event{Title: "deploy | v2", Text: "line1\nline2", DateHappened: 1700000000, Hostname: "web1",
		AggregationKey: "agg", SourceTypeName: "ci", Tags: []string{"env:prod", "bare"}, Priority: model.PriorityLow, AlertType: model.AlertSuccess}
	var m statsd.Metric
	line := appendEvent(nil, ev, true)
	if err := m.Parse(line); err != nil || m.Kind != statsd.KindEvent {
		t.Fatalf("event line %q: %v", line, err)
	}
	if !reflect.DeepEqual(m.Event, ev) {
		t.Errorf("event round trip:\n got %+v\nwant %+v", m.Event, ev)
	}

	sc := &model.ServiceCheck{Name: "db.up", Status: model.CheckWarning, Timestamp: 1700000000, Hostname: "db1", Tags: []string{"role:primary"}, Message: "slow\nreplica"}
	line = appendServiceCheck(nil, sc, true)
	if err := m.Parse(line); err != nil || m.Kind != statsd.KindServiceCheck {
		t.Fatalf("service check line %q: %v", line, err)
	}
	if !reflect.DeepEqual(m.Check, sc) {
		t.Errorf("service check round trip:\n got %+v\nwant %+v", m.Check, sc)
	}
}
