package exporter

import (
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// gatherFunc makes a function a prometheus.Gatherer.
type gatherFunc func() ([]*dto.MetricFamily, error)

func (f gatherFunc) Gather() ([]*dto.MetricFamily, error) { return f() }

// gather builds the exposition: families sorted by name, each series
// written from its state. Counters and gauges are copied under the lock;
// summaries and histograms write themselves (client_golang, with its own
// locking). Allocation is in proportion to the series: one dto.Metric and
// one value each, allocated in one slice per family.
func (e *Exporter) gather() ([]*dto.MetricFamily, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*dto.MetricFamily, 0, len(e.st.families))
	for _, f := range e.st.families {
		mf := &dto.MetricFamily{Name: &f.name, Help: &f.help, Type: f.typ.Enum()}
		ms := make([]dto.Metric, len(f.series))
		mf.Metric = make([]*dto.Metric, 0, len(f.series))
		var vals []float64
		var counters []dto.Counter
		var gauges []dto.Gauge
		switch f.typ {
		case dto.MetricType_COUNTER:
			vals, counters = make([]float64, len(f.series)), make([]dto.Counter, len(f.series))
		case dto.MetricType_GAUGE:
			vals, gauges = make([]float64, len(f.series)), make([]dto.Gauge, len(f.series))
		}
		i := 0
		for _, s := range f.series {
			m := &ms[i]
			switch {
			case s.obs != nil:
				if err := s.obs.Write(m); err != nil {
					continue
				}
			case counters != nil:
				vals[i] = s.value
				counters[i].Value = &vals[i]
				m.Counter = &counters[i]
			default:
				vals[i] = s.value
				gauges[i].Value = &vals[i]
				m.Gauge = &gauges[i]
			}
			m.Label = s.labels
			mf.Metric = append(mf.Metric, m)
			i++
		}
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}
