package exporter

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/garner-metrics/garner/pkg/mapping"
)

// gatherFunc makes a function a prometheus.Gatherer.
type gatherFunc func() ([]*dto.MetricFamily, error)

func (f gatherFunc) Gather() ([]*dto.MetricFamily, error) { return f() }

// gather builds the exposition as client_golang messages, for the formats
// serveMetrics leaves to client_golang's encoder (protobuf text, compact
// text) and for the tests that compare the direct writers with it:
// families sorted by name, series in the order writeText writes them.
func (e *Exporter) gather() ([]*dto.MetricFamily, error) {
	sb := e.getBuf()
	defer e.putBuf(sb)
	e.snapshot(sb)
	out := make([]*dto.MetricFamily, 0, len(sb.fams))
	for f, items := range sb.families() {
		mf := &dto.MetricFamily{Name: &f.name, Help: &f.help, Type: f.typ.Enum()}
		for _, it := range items {
			m := &dto.Metric{}
			switch {
			case it.s.hist != nil:
				m.Histogram = sb.classic(it).dto()
			case it.s.obs != nil:
				if err := it.s.obs.Write(m); err != nil {
					continue
				}
			case f.typ == dto.MetricType_COUNTER:
				m.Counter = &dto.Counter{Value: &it.v}
			default:
				m.Gauge = &dto.Gauge{Value: &it.v}
			}
			m.Label = labelPairs(it.s.labels)
			mf.Metric = append(mf.Metric, m)
		}
		if len(mf.Metric) > 0 {
			out = append(out, mf)
		}
	}
	return out, nil
}

func labelPairs(ls []mapping.Label) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(ls))
	for i := range ls {
		out[i] = &dto.LabelPair{Name: &ls[i].Name, Value: &ls[i].Value}
	}
	return out
}
