package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

func TestParseIngestFlags(t *testing.T) {
	for _, bad := range [][]string{
		{"--proto", "v4"}, {"--forwarders", "0"}, {"--bodies", "0"}, {"--counters", "0", "--timers", "0"}, {"--duration", "0"},
	} {
		if _, err := parseIngestFlags(append(bad, "--garner", "/bin/true"), io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	o, err := parseIngestFlags([]string{"--garner", "/bin/true", "--proto", "v2,v3"}, io.Discard)
	if err != nil || len(o.Protos) != 2 {
		t.Fatalf("%v %+v", err, o)
	}
}

// TestBenchIngestAgainstGarner runs both protocols for a second against the
// real binary: every accepted body must be flushed exactly.
func TestBenchIngestAgainstGarner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts garner")
	}
	bin := garnertest.Binary(t)
	o, err := parseIngestFlags([]string{"--garner", bin, "--proto", "v2,v3", "--duration", "1s", "--bodies", "20",
		"--forwarders", "2", "--counters", "50", "--timers", "5", "--timer-values", "3", "--drain", "200ms", "--stop-timeout", "20s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var reps []*ingestReport
	for _, p := range o.Protos {
		o.Proto = p
		rep, err := o.run(context.Background(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Accepted == 0 || rep.Refused != 0 || rep.CounterGot != rep.CounterWant || rep.TimerGot != rep.TimerWant {
			t.Errorf("/%s/raw: %s", p, o.summary(rep))
		}
		reps = append(reps, rep)
	}
	if md := o.render(reps, "?", time.Now()); !strings.Contains(md, "| /v3/raw |") {
		t.Errorf("table:\n%s", md)
	}
}
