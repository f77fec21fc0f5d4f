package web

import (
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReadTotals: each family readTotals knows lands in its field, summed
// over its labels or split by the label it reads; drop counters are listed
// by name and only lines, series and kernel drops count in DropsTotal.
func TestReadTotals(t *testing.T) {
	var samples fixedSamples
	// add adds one sample of name (a counter, or a gauge when gauge is set)
	// with the label label=value.
	add := func(name string, gauge bool, v float64, label, value string) {
		typ := prometheus.CounterValue
		if gauge {
			typ = prometheus.GaugeValue
		}
		desc := prometheus.NewDesc(name, name, []string{label}, nil)
		samples = append(samples, prometheus.MustNewConstMetric(desc, typ, v, value))
	}
	add("garner_receiver_lines_total", false, 10, "receiver", "udp")
	add("garner_receiver_lines_total", false, 5, "receiver", "tcp")
	add("garner_receiver_datagrams_total", false, 4, "receiver", "udp")
	add("garner_receiver_bytes_total", false, 400, "receiver", "udp")
	add("garner_receiver_bad_lines_total", false, 2, "reason", "bad_value")
	add("garner_receiver_bad_lines_total", false, 1, "reason", "")
	add("garner_aggregator_series", true, 7, "type", "counter")
	add("garner_flush_total", false, 3, "result", "ok")
	add("garner_ingest_requests_total", false, 9, "result", "accepted")
	add("garner_ingest_requests_total", false, 1, "result", "duplicate")
	add("garner_ingest_requests_total", false, 2, "result", "too_large")
	add("garner_ingest_series_total", false, 30, "format", "v2")
	add("garner_ingest_body_bytes_total", false, 3000, "format", "v2")
	add("garner_forwarder_sent_series_total", false, 20, "kind", "raw")
	add("garner_forwarder_sent_series_total", false, 6, "kind", "event")
	add("garner_forwarder_buffered_bytes", true, 512, "upstream", "a")
	add("garner_forwarder_retries_total", false, 8, "upstream", "a")
	add("garner_forwarder_upstreams", true, 2, "state", "up")
	add("garner_forwarder_upstreams", true, 1, "state", "down")
	add("garner_aggregator_queue_dropped_lines_total", false, 11, "shard", "0")
	add("garner_forwarder_dropped_series_total", false, 12, "reason", "full")
	add("garner_receiver_kernel_drops_total", false, 13, "receiver", "udp")
	add("garner_flush_dropped_flushes_total", false, 14, "backend", "x")
	reg := prometheus.NewRegistry()
	reg.MustRegister(samples)

	got := readTotals(reg)
	want := Totals{
		ReceivedLines: 15, ReceivedDatagrams: 4, ReceivedBytes: 400,
		BadLines: 3, BadLinesByReason: map[string]float64{"bad_value": 2},
		Drops: map[string]float64{
			"garner_aggregator_queue_dropped_lines_total": 11,
			"garner_forwarder_dropped_series_total":       12,
			"garner_receiver_kernel_drops_total":          13,
			"garner_flush_dropped_flushes_total":          14,
		},
		DropsTotal: 11 + 12 + 13,
		Series:     map[string]float64{"counter": 7},
		Flushes:    3,
		Ingestion:  Ingestion{Requests: 12, Rejects: 2, Series: 30, Bytes: 3000},
		Forwarder:  Forwarder{SeriesSent: 20, BufferedBytes: 512, Retries: 8, UpstreamsUp: 2, UpstreamsDown: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readTotals =\n%+v\nwant\n%+v", got, want)
	}
	if empty := readTotals(prometheus.NewRegistry()); !reflect.DeepEqual(empty, Totals{BadLinesByReason: map[string]float64{}, Drops: map[string]float64{}, Series: map[string]float64{}}) {
		t.Errorf("readTotals of an empty registry = %+v, want zeros", empty)
	}
}

// fixedSamples is a Collector of fixed samples.
type fixedSamples []prometheus.Metric

func (f fixedSamples) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }

func (f fixedSamples) Collect(ch chan<- prometheus.Metric) {
	for _, m := range f {
		ch <- m
	}
}
