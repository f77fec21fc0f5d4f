package otlp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	collogsv1 "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricsv1 "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	logsv1 "go.opentelemetry.io/proto/otlp/logs/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// receiver is the OTLP/HTTP test receiver: no OTLP server is packaged, so
// this loopback server decodes requests with the official collector protos
// (ExportMetricsServiceRequest, ExportLogsServiceRequest) and keeps them for
// the tests to assert on. It answers as the OTLP/HTTP spec says: 200 with an
// empty Export*ServiceResponse, or the status the test asks for.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	metrics  []*colmetricsv1.ExportMetricsServiceRequest
	logs     []*collogsv1.ExportLogsServiceRequest
	requests int
	headers  http.Header
	fail     []int // statuses to answer, in order, before answering 200
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := garnertest.DecodedBody(req)
	if err != nil {
		r.t.Error(err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.t.Errorf("Content-Type = %q", ct)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.headers = req.Header.Clone()
	if len(r.fail) > 0 {
		code := r.fail[0]
		r.fail = r.fail[1:]
		w.WriteHeader(code)
		return
	}
	var resp proto.Message
	switch req.URL.Path {
	case "/v1/metrics":
		resp, err = &colmetricsv1.ExportMetricsServiceResponse{}, keep(&r.metrics, body)
	case "/v1/logs":
		resp, err = &collogsv1.ExportLogsServiceResponse{}, keep(&r.logs, body)
	default:
		http.NotFound(w, req)
		return
	}
	if err != nil {
		r.t.Error(err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// keep decodes body as a request of the type *list holds and appends it.
func keep[T any, M interface {
	*T
	proto.Message
}](list *[]M, body []byte) error {
	m := M(new(T))
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("not an %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	*list = append(*list, m)
	return nil
}

// point is one decoded data point, flattened.
type point struct {
	metric   string
	kind     string // gauge, sum, histogram
	resource string // k=v,... sorted
	scope    string
	attrs    string // k=v,... sorted
	value    float64
	isInt    bool
	start    uint64
	time     uint64
	sum      *metricsv1.Sum
	hist     *metricsv1.HistogramDataPoint
	exp      *metricsv1.ExponentialHistogramDataPoint
}

// key is metric{attrs}.
func (p point) key() string { return p.metric + "{" + p.attrs + "}" }

// points flattens every metrics request received so far.
func (r *receiver) points() []point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []point
	for _, req := range r.metrics {
		for _, rm := range req.ResourceMetrics {
			res := formatAttrs(rm.GetResource().GetAttributes())
			for _, sm := range rm.ScopeMetrics {
				scope := sm.GetScope().GetName() + "@" + sm.GetScope().GetVersion()
				for _, m := range sm.Metrics {
					base := point{metric: m.Name, resource: res, scope: scope}
					switch d := m.Data.(type) {
					case *metricsv1.Metric_Gauge:
						for _, dp := range d.Gauge.DataPoints {
							out = append(out, numberPoint(base, "gauge", dp))
						}
					case *metricsv1.Metric_Sum:
						for _, dp := range d.Sum.DataPoints {
							p := numberPoint(base, "sum", dp)
							p.sum = d.Sum
							out = append(out, p)
						}
					case *metricsv1.Metric_Histogram:
						for _, dp := range d.Histogram.DataPoints {
							p := r.histogramPoint(base, "histogram", d.Histogram.AggregationTemporality, dp.Attributes, dp.StartTimeUnixNano, dp.TimeUnixNano)
							p.hist = dp
							out = append(out, p)
						}
					case *metricsv1.Metric_ExponentialHistogram:
						for _, dp := range d.ExponentialHistogram.DataPoints {
							p := r.histogramPoint(base, "exponential_histogram", d.ExponentialHistogram.AggregationTemporality, dp.Attributes, dp.StartTimeUnixNano, dp.TimeUnixNano)
							p.exp = dp
							out = append(out, p)
						}
					default:
						r.t.Errorf("unexpected metric type %T", d)
					}
				}
			}
		}
	}
	return out
}

// histogramPoint is base as a point of a histogram kind, which must be delta.
func (r *receiver) histogramPoint(base point, kind string, temp metricsv1.AggregationTemporality, attrs []*commonv1.KeyValue, start, end uint64) point {
	if temp != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		r.t.Errorf("%s %s is not delta", kind, base.metric)
	}
	base.kind, base.attrs, base.start, base.time = kind, formatAttrs(attrs), start, end
	return base
}

func numberPoint(p point, kind string, dp *metricsv1.NumberDataPoint) point {
	p.kind, p.attrs = kind, formatAttrs(dp.Attributes)
	p.start, p.time = dp.StartTimeUnixNano, dp.TimeUnixNano
	switch v := dp.Value.(type) {
	case *metricsv1.NumberDataPoint_AsDouble:
		p.value = v.AsDouble
	case *metricsv1.NumberDataPoint_AsInt:
		p.value, p.isInt = float64(v.AsInt), true
	}
	return p
}

// logRecords flattens every logs request received so far.
func (r *receiver) logRecords() (out []*logsv1.LogRecord, resources []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.logs {
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					out = append(out, lr)
					resources = append(resources, formatAttrs(rl.GetResource().GetAttributes()))
				}
			}
		}
	}
	return out, resources
}

func (r *receiver) requestCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// formatAttrs writes attributes as k=v,... sorted; arrays as k=[a b],
// key/value lists as k={...}.
func formatAttrs(kvs []*commonv1.KeyValue) string {
	parts := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		parts = append(parts, kv.Key+"="+formatValue(kv.Value))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func formatValue(v *commonv1.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonv1.AnyValue_ArrayValue:
		var s []string
		for _, e := range x.ArrayValue.Values {
			s = append(s, formatValue(e))
		}
		return "[" + strings.Join(s, " ") + "]"
	case *commonv1.AnyValue_KvlistValue:
		return "{" + formatAttrs(x.KvlistValue.Values) + "}"
	}
	return fmt.Sprintf("%v", v)
}
