//go:build linux

package receiver

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/aggregator"
)

// FuzzDatagram feeds whole datagrams through a LineHandler into running
// shards:
// whatever arrives, nothing panics, and every good counter line of the
// datagram is counted.
func FuzzDatagram(f *testing.F) {
	for _, s := range []string{
		"a:1|c\nb:2|g\nc:3|ms|#x:y\nd:e|s",
		"a:1|c\r\nbad\n\n_e{1,1}:a|b\n_sc|x|0\nz:1|c|#host:h",
		"t:1|ms|#gsd_histogram:1_2_x_\nt:2|ms|#gsd_histogram:",
		"\x00\xff:1|c\n:\n|\n@\n#",
		"a,k=v,b:1|c\nb[x=y]c:2|g\nd;e=f;g=h,i:1|ms\ng#h=i:u|s\nm,k=v:1|c|#x\nn:1::2:|c\no\xc3:1|c",
		"_e{1,1}:a|b|d:x|p:urgent|t:test|c:1|e:2|card:3\n_sc|x|0|d:y|card:z|m:m\nq:1|c|c:1|e:2|card:3",
		fmt.Sprintf("p:1|c|T%d\np:2|g|T%d\np:3|ms|T%d\np:x|s|T1\np:+1|g|T%d\nn:1|c|T99999999999", time.Now().Unix()-3600, time.Now().Unix()-30, time.Now().Unix(), time.Now().Unix()-30),
	} {
		f.Add([]byte(s), false)
	}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	reg := prometheus.NewRegistry()
	a := aggregator.New(aggregator.Options{Shards: 2, MaxQueuedSamples: 1 << 16, PercentThresholds: []float64{90, -50}, HistogramLimit: 8,
		Expiry: aggregator.Expiry{Counter: -1, Gauge: -1, Set: -1, Timer: -1}, MaxSeries: 1000, MaxSeriesPerMetric: 10, CardinalityOverflow: true}, log, reg)
	// Timestamps honored as far back as a century: the fuzzer's |T values reach the slots.
	l := NewLines(Options{IgnoreHost: true, DefaultTags: []string{"d:1"}, Timestamps: TimestampsHonor, TimestampMaxAge: 100 * 365 * 24 * time.Hour}, a, nil, log, reg)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	go func() { _ = a.Run(ctx) }()
	r := l.NewHandler("fuzz")
	f.Fuzz(func(t *testing.T, dg []byte, truncated bool) {
		dg = append([]byte("fz:1|c|#good:yes\n"), bytes.ReplaceAll(dg, []byte("good:yes"), nil)...)
		r.HandleDatagram(dg, src, truncated)
		r.Handoff()
		s, err := a.Snapshot(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		for _, c := range s.Counters {
			if c.Name == "fz" && len(c.Tags) == 2 && c.Tags[1] == "good:yes" {
				got += c.Value
			}
		}
		if got != 1 {
			t.Fatalf("the good line before the fuzzed bytes was not counted once: %v", got)
		}
	})
}
