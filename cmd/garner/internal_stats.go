package main

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/receiver"
)

// statser sends garner's own metrics (its Prometheus registry) every
// interval into the pipeline as statsd metrics (statser-type internal, as
// gostatsd's internal statser) or to the log (logging). Counters are sent as
// statsd counters of their increase since the previous gather, gauges and
// untyped metrics as gauges, summaries and histograms as the counters
// <name>_count and <name>_sum. Names are <prefix><metric name>, tags the
// metric's labels (label:value) plus the internal tags, the source the
// hostname; the filters, name mappings and default tags apply as to
// forwarded series.
type statser struct {
	typ      string
	gatherer prometheus.Gatherer
	w        *receiver.SeriesWriter // internal only
	prefix   string
	tags     []string
	source   string
	interval time.Duration
	log      logrus.FieldLogger
	last     map[string]float64 // cumulative values of the previous gather
}

// newStatser returns nil for statser-type null.
func newStatser(cfg *config.Config, g prometheus.Gatherer, lines *receiver.Lines, log logrus.FieldLogger) *statser {
	f := cfg.Filters
	if f.StatserType == config.StatserNull {
		return nil
	}
	prefix := cfg.Namespace
	if f.InternalNamespace != "" {
		if prefix != "" {
			prefix += "."
		}
		prefix += f.InternalNamespace
	}
	if prefix != "" {
		prefix += "."
	}
	s := &statser{
		typ: f.StatserType, gatherer: g, prefix: prefix, tags: f.InternalTags, source: cfg.Hostname,
		interval: cfg.FlushInterval, log: log.WithField("component", "statser"), last: map[string]float64{},
	}
	if s.typ == config.StatserInternal {
		s.w = lines.NewSeriesWriter()
	}
	return s
}

// Run sends the metrics every interval until ctx ends, then returns nil.
func (s *statser) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.send(ctx)
		}
	}
}

// send gathers once and sends or logs every metric. A full shard queue is
// waited for up to one interval; what is left then is dropped and counted.
func (s *statser) send(ctx context.Context) {
	mfs, err := s.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		s.log.WithError(err).Warn("cannot gather garner's own metrics")
		return
	}
	for _, mf := range mfs {
		name := s.prefix + mf.GetName()
		for _, m := range mf.GetMetric() {
			tags := s.tagsOf(m)
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.counter(name, tags, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				s.gauge(name, tags, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				s.gauge(name, tags, m.GetUntyped().GetValue())
			case dto.MetricType_SUMMARY:
				s.counter(name+"_count", tags, float64(m.GetSummary().GetSampleCount()))
				s.counter(name+"_sum", tags, m.GetSummary().GetSampleSum())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				s.counter(name+"_count", tags, float64(m.GetHistogram().GetSampleCount()))
				s.counter(name+"_sum", tags, m.GetHistogram().GetSampleSum())
			}
		}
	}
	if s.w != nil {
		wctx, cancel := context.WithTimeout(ctx, s.interval)
		s.w.Send(wctx)
		cancel()
	}
}

func (s *statser) tagsOf(m *dto.Metric) []string {
	tags := make([]string, 0, len(m.GetLabel())+len(s.tags))
	for _, lp := range m.GetLabel() {
		tags = append(tags, lp.GetName()+":"+lp.GetValue())
	}
	return append(tags, s.tags...)
}

// counter sends the increase of a cumulative value since the previous
// gather (all of it the first time, or after a reset).
func (s *statser) counter(name string, tags []string, total float64) {
	key := name + "|" + strings.Join(tags, ",")
	d := total - s.last[key]
	if d < 0 {
		d = total
	}
	s.last[key] = total
	if s.w != nil {
		s.w.Counter(name, tags, s.source, d, 0)
		return
	}
	s.logMetric(name, "counter", tags, d)
}

func (s *statser) gauge(name string, tags []string, v float64) {
	if s.w != nil {
		s.w.Gauge(name, tags, s.source, v, 0)
		return
	}
	s.logMetric(name, "gauge", tags, v)
}

func (s *statser) logMetric(name, typ string, tags []string, v float64) {
	tags = append([]string(nil), tags...)
	sort.Strings(tags)
	s.log.WithFields(logrus.Fields{"metric": name, "type": typ, "value": v, "tags": strings.Join(tags, ","), "host": s.source}).Info("internal metric")
}
