package prometheus

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/promwire"
)

// Remote write 1.0 messages (prometheus/prompb types.proto and remote.proto):
//
//	WriteRequest { repeated TimeSeries timeseries = 1; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	Label        { string name = 1; string value = 2; } (pkg/promwire)
//	Sample       { double value = 1; int64 timestamp = 2; } // timestamp in ms
const (
	fieldTimeseries  protowire.Number = 1
	fieldLabels      protowire.Number = 1
	fieldSamples     protowire.Number = 2
	fieldSampleValue protowire.Number = 1
	fieldSampleTime  protowire.Number = 2
)

// label is one Prometheus label.
type label struct{ name, value string }

// appendTimeSeries appends one WriteRequest.timeseries entry (field 1 of
// WriteRequest, length-delimited) holding labels and a single sample.
// Labels must already be sorted and unique.
func appendTimeSeries(dst []byte, labels []label, value float64, tsMillis int64) []byte {
	sampleSize := protowire.SizeTag(fieldSampleValue) + protowire.SizeFixed64() +
		protowire.SizeTag(fieldSampleTime) + protowire.SizeVarint(uint64(tsMillis))
	size := labelsSize(labels) + protowire.SizeTag(fieldSamples) + protowire.SizeBytes(sampleSize)

	dst = protowire.AppendTag(dst, fieldTimeseries, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	dst = appendLabels(dst, labels)
	dst = protowire.AppendTag(dst, fieldSamples, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(sampleSize))
	dst = protowire.AppendTag(dst, fieldSampleValue, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, math.Float64bits(value))
	dst = protowire.AppendTag(dst, fieldSampleTime, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(tsMillis))
}

// labelsSize is the encoded size of the labels fields of a TimeSeries.
func labelsSize(labels []label) int {
	size := 0
	for _, l := range labels {
		size += promwire.FieldSize(fieldLabels, l.name, l.value)
	}
	return size
}

// appendLabels appends the labels fields of a TimeSeries.
func appendLabels(dst []byte, labels []label) []byte {
	for _, l := range labels {
		dst = promwire.AppendLabel(dst, fieldLabels, l.name, l.value)
	}
	return dst
}

// sanitizeMetricName maps a statsd name to the Prometheus metric name rules
// ([a-zA-Z_:][a-zA-Z0-9_:]*): every other byte ('.', '-', ...) becomes '_',
// and a leading digit gets a '_' in front. It allocates only when the name
// changes.
func sanitizeMetricName(s string) string { return sanitize(s, true) }

// sanitizeLabelName does the same for label names ([a-zA-Z_][a-zA-Z0-9_]*).
func sanitizeLabelName(s string) string { return sanitize(s, false) }

func sanitize(s string, colon bool) string {
	valid := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || (colon && c == ':')
	}
	ok := s != "" && !(s[0] >= '0' && s[0] <= '9')
	for i := 0; ok && i < len(s); i++ {
		ok = valid(s[i])
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		b.WriteByte('_')
	}
	for i := 0; i < len(s); i++ {
		if valid(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// seriesLabels appends to dst the sorted, unique labels of one time series:
// __name__, one label per tag, host from the source and the extra label
// (quantile or le) when extraName is set.
//
// A tag k:v becomes label k=v (first ':' only), a bare tag x becomes
// unnamed=x, as the Graphite backend names them. Label names are sanitised;
// a tag whose name is reserved (starts with "__") or clashes with the extra
// label garner adds is renamed exported_<name>, as Prometheus renames
// clashing target labels. A tag with an empty value is left out (Prometheus
// treats an empty label as no label). Tags that end up with the same label
// name are merged into one label whose values are joined with ',' in tag
// order. host=<source> is added unless a tag already gives a host label.
// Invalid UTF-8 in values is replaced with U+FFFD.
func seriesLabels(dst []label, s *model.Series, name, extraName, extraValue string) []label {
	start := len(dst)
	dst = append(dst, label{"__name__", name})
	haveHost := false
	for _, t := range s.Tags {
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			k, v = "unnamed", t
		}
		if v == "" {
			continue
		}
		k = sanitizeLabelName(k)
		if strings.HasPrefix(k, "__") || (extraName != "" && k == extraName) {
			k = "exported_" + k
		}
		if k == "host" {
			haveHost = true
		}
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		dst = append(dst, label{k, v})
	}
	if !haveHost && s.Source != "" {
		src := s.Source
		if !utf8.ValidString(src) {
			src = strings.ToValidUTF8(src, "\uFFFD")
		}
		dst = append(dst, label{"host", src})
	}
	if extraName != "" {
		dst = append(dst, label{extraName, extraValue})
	}
	ls := dst[start:]
	slices.SortStableFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	// merge equal names
	out := ls[:0]
	for _, l := range ls {
		if n := len(out); n > 0 && out[n-1].name == l.name {
			out[n-1].value += "," + l.value
			continue
		}
		out = append(out, l)
	}
	return dst[:start+len(out)]
}
