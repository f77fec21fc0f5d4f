package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/receiver"
)

// selfMetrics is a registry with one metric of each kind the statser maps.
func selfMetrics() (*prometheus.Registry, prometheus.Counter, prometheus.Gauge, prometheus.Observer) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "garner_test_lines_total", Help: "x"}, []string{"receiver"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "garner_test_series", Help: "x"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "garner_test_seconds", Help: "x"})
	reg.MustRegister(c, g, h)
	return reg, c.WithLabelValues("udp"), g, h
}

func TestStatserInternal(t *testing.T) {
	reg, c, g, h := selfMetrics()
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	areg := prometheus.NewRegistry()
	agg := aggregator.New(aggregator.Options{Shards: 1, MaxQueuedSamples: 1 << 12, HistogramLimit: 8}, log, areg)
	lines := receiver.NewLines(receiver.Options{DefaultTags: []string{"dc:x"}}, agg, nil, log, areg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = agg.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	cfg := config.Default()
	cfg.Namespace = "app"
	cfg.Hostname = "h1"
	cfg.Filters.StatserType = config.StatserInternal
	cfg.Filters.InternalNamespace = "gsd"
	cfg.Filters.InternalTags = []string{"role:agg"}
	s := newStatser(cfg, reg, lines, log)

	flush := func() map[string]float64 {
		t.Helper()
		snap, err := agg.Snapshot(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		k := func(se model.Series) string {
			return se.Name + "|" + strings.Join(se.Tags, ",") + "|" + se.Source
		}
		for _, x := range snap.Counters {
			out["c "+k(x.Series)] = x.Value
		}
		for _, x := range snap.Gauges {
			out["g "+k(x.Series)] = x.Value
		}
		return out
	}

	c.Add(5)
	g.Set(7)
	h.Observe(0.5)
	h.Observe(1.5)
	s.send(context.Background())
	want := map[string]float64{
		"c app.gsd.garner_test_lines_total|dc:x,receiver:udp,role:agg|h1": 5,
		"g app.gsd.garner_test_series|dc:x,role:agg|h1":                   7,
		"c app.gsd.garner_test_seconds_count|dc:x,role:agg|h1":            2,
		"c app.gsd.garner_test_seconds_sum|dc:x,role:agg|h1":              2,
	}
	check := func(got map[string]float64) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v (got %v)", k, got[k], v, got)
			}
		}
	}
	check(flush())

	// The second time, counters send their increase only.
	c.Add(3)
	s.send(context.Background())
	want["c app.gsd.garner_test_lines_total|dc:x,receiver:udp,role:agg|h1"] = 3
	want["c app.gsd.garner_test_seconds_count|dc:x,role:agg|h1"] = 0
	want["c app.gsd.garner_test_seconds_sum|dc:x,role:agg|h1"] = 0
	check(flush())
}

func TestStatserLoggingAndNull(t *testing.T) {
	reg, c, _, _ := selfMetrics()
	log, hook := test.NewNullLogger()
	cfg := config.Default()
	cfg.Filters.StatserType = config.StatserNull
	if newStatser(cfg, reg, nil, log) != nil {
		t.Fatal("statser-type null runs a statser")
	}
	cfg.Filters.StatserType = config.StatserLogging
	cfg.Hostname = "h1"
	s := newStatser(cfg, reg, nil, log)
	c.Add(2)
	s.send(context.Background())
	var got []string
	for _, e := range hook.AllEntries() {
		v, _ := e.Data["value"].(float64)
		got = append(got, fmt.Sprintf("%s=%s:%s@%s", e.Data["metric"], e.Data["type"], strconv.FormatFloat(v, 'f', -1, 64), e.Data["host"]))
	}
	sort.Strings(got)
	want := "statsd.garner_test_lines_total=counter:2@h1,statsd.garner_test_seconds_count=counter:0@h1,statsd.garner_test_seconds_sum=counter:0@h1,statsd.garner_test_series=gauge:0@h1"
	if strings.Join(got, ",") != want {
		t.Fatalf("logged %v\nwant %s", got, want)
	}
}
