package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2ESharedStatsdPortWarns: a second garner that joins the first's
// SO_REUSEPORT group on the statsd port warns, naming the first process,
// unless it was started with --handover.
func TestE2ESharedStatsdPortWarns(t *testing.T) {
	common := []string{"--backends=null", "--admin-addr=127.0.0.1:0", "--max-readers=1", "--shutdown-grace=0s"}
	first := garnertest.StartReady(t, append(common, "--metrics-addr=127.0.0.1:0")...)
	udp := first.UDPAddr(t)
	if strings.Contains(first.Stderr(), "statsd port") {
		t.Fatalf("the first garner warned about a port nobody else holds:\n%s", first.Stderr())
	}
	owner := fmt.Sprintf("pid %d (garner)", first.Pid())

	second := garnertest.StartReady(t, append(common, "--metrics-addr="+udp)...)
	second.StopOK(t)
	if !strings.Contains(second.Stderr(), "another process already receives on the statsd port") ||
		!strings.Contains(second.Stderr(), owner) || !strings.Contains(second.Stderr(), "level=warning") {
		t.Fatalf("no warning naming %s:\n%s", owner, second.Stderr())
	}

	third := garnertest.StartReady(t, append(common, "--metrics-addr="+udp, "--handover")...)
	third.StopOK(t)
	if strings.Contains(third.Stderr(), "level=warning") || !strings.Contains(third.Stderr(), "handover: sharing the statsd port") ||
		!strings.Contains(third.Stderr(), owner) {
		t.Fatalf("--handover: want an info line naming %s and no warning:\n%s", owner, third.Stderr())
	}
	first.StopOK(t)
}
