//go:build linux

package receiver

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
)

// FuzzTCPStream sends arbitrary bytes, cut into two writes at an arbitrary
// point, over a real TCP connection: whatever a client sends (garbage,
// overlong lines, half lines), the receiver survives, and the next client's
// good line is counted exactly once.
func FuzzTCPStream(f *testing.F) {
	for _, s := range []string{"a:1|c\nb:2|g\n", "a:1|c", "x\x00\xff\n\n\r\n", "long:" + string(make([]byte, 600)) + "|c\n", "_e{1,1}:a|b\nc:1|ms|@0.1\n"} {
		f.Add([]byte(s), uint16(3))
	}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	reg := prometheus.NewRegistry()
	agg := aggregator.New(aggregator.Options{Shards: 1, MaxQueuedSamples: 1 << 16, HistogramLimit: 8,
		Expiry: aggregator.Expiry{Counter: -1, Gauge: -1, Set: -1, Timer: -1}}, log, reg)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	go func() { _ = agg.Run(ctx) }()
	tcp, err := ListenTCP(TCPOptions{Addr: "127.0.0.1:0", MaxLineLength: 512, MaxConnections: 8, IdleTimeout: time.Second}, NewLines(Options{}, agg, nil, log, reg), log, reg)
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = tcp.Run(ctx) }()
	addr := tcp.Addr().String()

	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		data = bytes.ReplaceAll(data, []byte("good:yes"), nil)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		at := int(cut) % (len(data) + 1)
		_, _ = c.Write(data[:at])
		_, _ = c.Write(data[at:])
		_ = c.Close()

		good, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("the receiver stopped accepting after %q: %v", data, err)
		}
		_, _ = good.Write([]byte("fz.good:1|c|#good:yes\n"))
		_ = good.Close()
		var got float64
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && got == 0; {
			time.Sleep(time.Millisecond)
			s, err := agg.Snapshot(context.Background(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range s.Counters {
				if x.Name == "fz.good" && len(x.Tags) == 1 && x.Tags[0] == "good:yes" {
					got += x.Value
				}
			}
		}
		if got != 1 {
			t.Fatalf("the next client's good line was counted %v times (want 1) after %q", got, data)
		}
	})
}
