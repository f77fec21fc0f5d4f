package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

func TestParseRun(t *testing.T) {
	def := []string{"c"}
	tests := []struct {
		in      string
		want    benchRun
		wantErr bool
	}{
		{"200k", benchRun{Rate: 200000, Types: def, Series: 10}, false},
		{"2M", benchRun{Rate: 2e6, Types: def, Series: 10}, false},
		{"1.5M", benchRun{Rate: 1.5e6, Types: def, Series: 10}, false},
		{"max", benchRun{Rate: 0, Types: def, Series: 10}, false},
		{"12345", benchRun{Rate: 12345, Types: def, Series: 10}, false},
		{"200k:c,g,ms,s:100000", benchRun{Rate: 200000, Types: []string{"c", "g", "ms", "s"}, Series: 100000}, false},
		{"200k::5", benchRun{Rate: 200000, Types: def, Series: 5}, false},
		{"fast", benchRun{}, true},
		{"0", benchRun{}, true},
		{"200k:x", benchRun{}, true},
		{"200k:c:0", benchRun{}, true},
		{"1:2:3:4", benchRun{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseRun(tc.in, def, 10)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got.Rate != tc.want.Rate || got.Series != tc.want.Series || strings.Join(got.Types, ",") != strings.Join(tc.want.Types, ",") {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHumanRateAndThousands(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"200k", humanRate(200000), "200k"},
		{"2M", humanRate(2e6), "2M"},
		{"1.5M", humanRate(1.5e6), "1.5M"},
		{"odd", humanRate(12345), "12345"},
		{"thousands", thousands(1234567.4), "1,234,567"},
		{"small", thousands(999), "999"},
		{"zero", thousands(0), "0"},
		{"negative", thousands(-1234), "-1,234"},
		{"unknown", optThousands(-1), "n/a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestCarbonSums(t *testing.T) {
	cb, err := newCarbon("stats.counters.", "stats.timers.")
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Join([]string{
		"stats.counters.gl.c.s01.count;host=127.0.0.1 5 1700000000",
		"stats.counters.gl.c.s01.rate;host=127.0.0.1 0.5 1700000000",
		"stats.counters.gl.c.s02.count;t0=v1;host=127.0.0.1 7 1700000000",
		"stats.counters.other.x.count 2.5 1700000000",
		"stats.timers.gl.ms.s01.count;host=127.0.0.1 3 1700000000",
		"stats.timers.gl.ms.s01.count_90;host=127.0.0.1 2 1700000000",
		"stats.timers.gl.ms.s01.count_ps;host=127.0.0.1 0.3 1700000000",
		"stats.gauges.gl.g.s01;host=127.0.0.1 42.000000 1700000000",
		"stats.counters.gl.c.s03.count notanumber 1700000000",
		"garbage",
	}, "\n") + "\n"
	for i := 0; i < 2; i++ { // two connections, as two flushes after a reconnect
		c, err := net.Dial("tcp", cb.addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	if !cb.close(5 * time.Second) {
		t.Fatal("connections did not end")
	}
	counters, timers, lines, bad := cb.totals()
	if counters["gl.c"] != 24 || counters["other"] != 5 || timers["gl.ms"] != 6 || len(timers) != 1 {
		t.Fatalf("counters %v timers %v; want gl.c=24 other=5, gl.ms=6", counters, timers)
	}
	if lines != 20 || bad != 4 {
		t.Fatalf("lines %d malformed %d; want 20 and 4", lines, bad)
	}
}

func TestParseExposition(t *testing.T) {
	in := `# HELP garner_receiver_bad_lines_total Lines skipped.
# TYPE garner_receiver_bad_lines_total counter
garner_receiver_bad_lines_total{reason="no_type",receiver="udp"} 3
garner_receiver_bad_lines_total{reason="bad_value",receiver="udp"} 4
garner_receiver_kernel_drops_total{receiver="udp"} 1.5e+06
garner_aggregator_queue_dropped_lines_total 0
weird{label="has } brace"} 2
`
	m, err := parseExposition(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"garner_receiver_bad_lines_total": 7, "garner_receiver_kernel_drops_total": 1.5e6, "garner_aggregator_queue_dropped_lines_total": 0, "weird": 2}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if _, err := parseExposition(strings.NewReader("name{a=\"b\" 1\n")); err == nil {
		t.Error("unterminated labels: want an error")
	}
}

func TestProcParsers(t *testing.T) {
	stat := []byte("1234 (gar ner) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000000 500 18446744073709551615")
	if cpu, err := parseStatCPU(stat); err != nil || cpu != 3.25 {
		t.Fatalf("parseStatCPU = %v, %v; want 3.25 (325 ticks)", cpu, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Fatal("short stat: want an error")
	}
	status := []byte("Name:\tgarner\nVmPeak:\t  200000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n")
	if n, err := parseStatusKB(status, "VmHWM"); err != nil || n != 51200*1024 {
		t.Fatalf("VmHWM = %d, %v; want %d", n, err, 51200*1024)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Fatal("missing field: want an error")
	}
	// Our own process: the numbers are there and plausible.
	if n, err := procStatusKB(os.Getpid(), "VmHWM"); err != nil || n <= 0 {
		t.Fatalf("own VmHWM = %d, %v", n, err)
	}
	if _, err := procCPUSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inodes, err := socketInodes(os.Getpid())
	if err != nil || len(inodes) == 0 {
		t.Fatalf("own socket inodes = %v, %v; want at least the one just opened", inodes, err)
	}
}

func TestUpdateMarkdown(t *testing.T) {
	tests := []struct {
		name    string
		before  string // "" = no file
		want    string
		wantErr bool
	}{
		{"no file", "", "\n## End-to-end benchmark\n\n" + markStart + "\nNEW\n" + markEnd + "\n", false},
		{"markers", "# B\n\nintro\n" + markStart + "\nOLD\n" + markEnd + "\n\n## Go benchmarks\n<!-- go benchmarks -->\n",
			"# B\n\nintro\n" + markStart + "\nNEW\n" + markEnd + "\n\n## Go benchmarks\n<!-- go benchmarks -->\n", false},
		{"no markers", "# B", "# B\n\n## End-to-end benchmark\n\n" + markStart + "\nNEW\n" + markEnd + "\n", false},
		{"one marker", "# B\n" + markStart + "\n", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			if tc.before != "" {
				if err := os.WriteFile(p, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := updateMarkdown(p, "NEW\n")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			b, _ := os.ReadFile(p)
			if string(b) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", b, tc.want)
			}
		})
	}
}

// TestAccount checks the reconciliation arithmetic.
func TestAccount(t *testing.T) {
	tests := []struct {
		name            string
		sent            Result
		counters        map[string]float64
		timers          map[string]float64
		received        float64 // garner_receiver_lines_total; <0 unknown
		kernelDrops     uint64
		queue, bad      float64
		wantLoss        float64
		wantUnexplained float64
		wantNote        string
	}{
		{
			name:     "no loss",
			sent:     Result{Lines: 1000, Datagrams: 10, LinesPerDgram: 100, MinLinesPerDgm: 100, MaxLinesPerDgm: 100, CounterIncrements: map[string]int64{"p.c": 1000}},
			counters: map[string]float64{"p.c": 1000}, received: 1000,
		},
		{
			name:     "kernel drops explain the loss, from garner's line count",
			sent:     Result{Lines: 1000, Datagrams: 10, LinesPerDgram: 100, MinLinesPerDgm: 100, MaxLinesPerDgm: 100, CounterIncrements: map[string]int64{"p.c": 1000}},
			counters: map[string]float64{"p.c": 700}, received: 700, kernelDrops: 3,
			wantLoss: 30,
		},
		{
			name:     "kernel drops explain the loss, estimated per datagram",
			sent:     Result{Lines: 1000, Datagrams: 10, LinesPerDgram: 100, MinLinesPerDgm: 100, MaxLinesPerDgm: 100, CounterIncrements: map[string]int64{"p.c": 1000}},
			counters: map[string]float64{"p.c": 800}, received: -1, kernelDrops: 2, queue: -1, bad: -1,
			wantLoss: 20,
		},
		{
			name:     "queue drops and bad lines, half the lines are gauges",
			sent:     Result{Lines: 2000, Datagrams: 20, LinesPerDgram: 100, MinLinesPerDgm: 100, MaxLinesPerDgm: 100, CounterIncrements: map[string]int64{"p.c": 500}, TimerSamples: map[string]int64{"p.ms": 500}},
			counters: map[string]float64{"p.c": 450}, timers: map[string]float64{"p.ms": 450}, received: 2000, queue: 150, bad: 50,
			wantLoss: 10,
		},
		{
			name:     "unexplained loss",
			sent:     Result{Lines: 1000, Datagrams: 10, LinesPerDgram: 100, MinLinesPerDgm: 100, MaxLinesPerDgm: 100, CounterIncrements: map[string]int64{"p.c": 1000}},
			counters: map[string]float64{"p.c": 990}, received: 1000,
			wantLoss: 1, wantUnexplained: 10,
		},
		{
			name:     "over-count",
			sent:     Result{Lines: 10, Datagrams: 1, LinesPerDgram: 10, MinLinesPerDgm: 10, MaxLinesPerDgm: 10, CounterIncrements: map[string]int64{"p.c": 10}},
			counters: map[string]float64{"p.c": 11}, received: 10,
			wantLoss: -10, wantUnexplained: -1, wantNote: "over-count",
		},
		{
			name:     "nothing countable",
			sent:     Result{Lines: 10, Datagrams: 1, LinesPerDgram: 10, LinesByType: map[string]int64{"g": 10}},
			received: 10, wantNote: "nothing to measure",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.sent
			s.Seconds = 1
			rep := &runReport{Sent: &s, GarnerCPU: 0.5, KernelDrops: tc.kernelDrops, QueueDrops: tc.queue, BadLines: tc.bad, Received: tc.received, MetricKernelDrops: -1}
			rep.account(tc.counters, tc.timers)
			if rep.LossPct != tc.wantLoss || rep.Unexplained != tc.wantUnexplained {
				t.Fatalf("loss %.3f%% unexplained %.0f; want %.3f%% and %.0f (report %+v)", rep.LossPct, rep.Unexplained, tc.wantLoss, tc.wantUnexplained, rep)
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(rep.Notes, "\n"), tc.wantNote) {
				t.Fatalf("notes %q do not mention %q", rep.Notes, tc.wantNote)
			}
		})
	}
}

// TestBenchAgainstGarner runs the real garner binary through the bench: at a
// rate it easily takes, every line is flushed; with a tiny socket buffer the
// kernel drops datagrams, and the drops account for every line not flushed.
// In forwarder mode every line goes through a second garner, the aggregator,
// and is flushed all the same.
func TestBenchAgainstGarner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts garner")
	}
	bin := garnertest.Binary(t)
	tests := []struct {
		name       string
		run        benchRun
		garnerArgs []string
		wantDrops  bool
		forwarder  string
	}{
		{"no loss at a low rate", benchRun{Rate: 50000, Types: []string{"c", "g", "ms", "s"}, Series: 200}, nil, false, ""},
		{"kernel drops explain the loss", benchRun{Rate: 0, Types: []string{"c"}, Series: 1000},
			[]string{"--socket-receive-buffer=4096", "--max-readers=1", "--receive-batch-size=1"}, true, ""},
		{"forwarder mode, v3", benchRun{Rate: 50000, Types: []string{"c", "g", "ms", "s"}, Series: 200}, nil, false, "v3"},
		{"forwarder mode, v2", benchRun{Rate: 50000, Types: []string{"c", "ms"}, Series: 200}, nil, false, "v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &benchOptions{
				Garner: bin, GarnerArgs: tc.garnerArgs, Forwarder: tc.forwarder, Duration: time.Second, FlushInterval: 500 * time.Millisecond,
				Drain: 500 * time.Millisecond, StopTimeout: 30 * time.Second, Senders: 1, Batch: 32, DatagramSize: 1400,
			}
			var logs bytes.Buffer
			rep, err := benchOne(context.Background(), o, tc.run, &logs)
			if err != nil {
				t.Fatalf("%v\n%s", err, logs.String())
			}
			t.Log(rep.summary())
			if rep.Sent.Lines == 0 || rep.GarnerCPU <= 0 || rep.PeakRSS <= 0 {
				t.Fatalf("implausible run: %s", rep.summary())
			}
			for _, n := range rep.Notes {
				if !strings.Contains(n, "/metrics") && !(tc.forwarder != "" && strings.HasPrefix(n, "the aggregator: CPU")) {
					t.Errorf("note: %s", n)
				}
			}
			if tc.wantDrops {
				if rep.KernelDrops == 0 || rep.LossPct <= 0 {
					t.Fatalf("a 4 KiB socket buffer under flat-out load dropped nothing: %s", rep.summary())
				}
			} else if rep.KernelDrops == 0 && rep.QueueDrops <= 0 && rep.AcceptedCountable != rep.SentCountable {
				t.Fatalf("lines lost with no drop to explain them: %s", rep.summary())
			} else if rep.KernelDrops > 0 {
				t.Logf("the host is so busy that the kernel dropped %d datagrams at 50k lines/s", rep.KernelDrops)
			}
			// Every line sent and not flushed is explained: exactly when
			// garner counts the lines it read and only counters are sent;
			// otherwise the kernel's share is estimated per datagram.
			slack := 0.0
			if rep.Received < 0 || len(tc.run.Types) > 1 {
				slack = float64(rep.Sent.MaxLinesPerDgm) * float64(rep.KernelDrops)
			}
			if rep.Unexplained < -slack || rep.Unexplained > slack {
				t.Fatalf("%.0f lines unexplained (slack %.0f): %s", rep.Unexplained, slack, rep.summary())
			}
			section := renderSection(o, []*runReport{rep}, time.Now())
			if !strings.Contains(section, fmt.Sprintf("| %s |", tc.run.label())) {
				t.Fatalf("table has no row for the run:\n%s", section)
			}
		})
	}
}
