package exporter

import (
	"math"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/mapping"
	"github.com/garner-metrics/garner/pkg/promwire"
)

// The delimited protobuf exposition (io.prometheus.client.MetricFamily,
// each message preceded by its varint length), written with protowire.
// Field numbers are those of client_model's metrics.proto.
const (
	fFamilyName   = 1
	fFamilyHelp   = 2
	fFamilyType   = 3
	fFamilyMetric = 4

	fMetricLabel     = 1
	fMetricGauge     = 2
	fMetricCounter   = 3
	fMetricSummary   = 4
	fMetricHistogram = 7

	fValue = 1 // Gauge.value, Counter.value
)

// valueMsgLen is the length of a Gauge or Counter message: one double.
const valueMsgLen = 1 + 8

func labelsLen(ls []mapping.Label) int {
	n := 0
	for _, l := range ls {
		n += promwire.FieldSize(fMetricLabel, l.Name, l.Value)
	}
	return n
}

func appendLabels(b []byte, ls []mapping.Label) []byte {
	for _, l := range ls {
		b = promwire.AppendLabel(b, fMetricLabel, l.Name, l.Value)
	}
	return b
}

// Histogram and Bucket fields of metrics.proto.
const (
	fHistCount  = 1
	fHistSum    = 2
	fHistBucket = 3

	fBucketCount = 1
	fBucketBound = 2
)

// appendClassic appends a classic histogram's Histogram message body.
func appendClassic(b []byte, c classicState) []byte {
	b = protowire.AppendTag(b, fHistCount, protowire.VarintType)
	b = protowire.AppendVarint(b, c.count)
	b = protowire.AppendTag(b, fHistSum, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(c.sum))
	c.cumulative(func(le float64, n uint64) {
		b = protowire.AppendTag(b, fHistBucket, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(fBucketCount)+protowire.SizeVarint(n)+protowire.SizeTag(fBucketBound)+8))
		b = protowire.AppendTag(b, fBucketCount, protowire.VarintType)
		b = protowire.AppendVarint(b, n)
		b = protowire.AppendTag(b, fBucketBound, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(le))
	})
	return b
}

// writeProto writes sb as delimited MetricFamily messages. A counter or
// gauge family is sized first and streamed; a summary or histogram family
// is encoded into sb.body first (its messages come from client_golang).
func (e *Exporter) writeProto(sb *scrapeBuf) error {
	w := sb.bw
	for f, fitems := range sb.families() {
		head := protowire.SizeTag(fFamilyName) + protowire.SizeBytes(len(f.name)) +
			protowire.SizeTag(fFamilyHelp) + protowire.SizeBytes(len(f.help)) +
			protowire.SizeTag(fFamilyType) + protowire.SizeVarint(uint64(f.typ))
		valueField := protowire.Number(fMetricCounter)
		if f.typ == dto.MetricType_GAUGE {
			valueField = fMetricGauge
		}
		var metrics int
		switch f.typ {
		case dto.MetricType_COUNTER, dto.MetricType_GAUGE:
			for _, it := range fitems {
				ml := labelsLen(it.s.labels) + 1 + protowire.SizeVarint(valueMsgLen) + valueMsgLen
				metrics += 1 + protowire.SizeVarint(uint64(ml)) + ml
			}
		default:
			sb.body = sb.body[:0]
			for _, it := range fitems {
				field := protowire.Number(fMetricSummary)
				if f.typ == dto.MetricType_HISTOGRAM {
					field = fMetricHistogram
				}
				if it.s.hist != nil {
					sb.enc = appendClassic(sb.enc[:0], sb.classic(it))
				} else {
					if !sb.observed(it.s) {
						continue
					}
					var msg proto.Message = sb.m.GetSummary()
					if f.typ == dto.MetricType_HISTOGRAM {
						msg = sb.m.GetHistogram()
					}
					var err error
					if sb.enc, err = (proto.MarshalOptions{}).MarshalAppend(sb.enc[:0], msg); err != nil {
						continue
					}
				}
				ml := labelsLen(it.s.labels) + protowire.SizeTag(field) + protowire.SizeBytes(len(sb.enc))
				sb.body = protowire.AppendTag(sb.body, fFamilyMetric, protowire.BytesType)
				sb.body = protowire.AppendVarint(sb.body, uint64(ml))
				sb.body = appendLabels(sb.body, it.s.labels)
				sb.body = protowire.AppendTag(sb.body, field, protowire.BytesType)
				sb.body = protowire.AppendBytes(sb.body, sb.enc)
			}
			if len(sb.body) == 0 {
				continue
			}
			metrics = len(sb.body)
		}
		b := sb.num[:0]
		b = protowire.AppendVarint(b, uint64(head+metrics))
		b = protowire.AppendTag(b, fFamilyName, protowire.BytesType)
		b = protowire.AppendString(b, f.name)
		b = protowire.AppendTag(b, fFamilyHelp, protowire.BytesType)
		b = protowire.AppendString(b, f.help)
		b = protowire.AppendTag(b, fFamilyType, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.typ))
		w.Write(b)
		if f.typ != dto.MetricType_COUNTER && f.typ != dto.MetricType_GAUGE {
			w.Write(sb.body)
			sb.num = b
			continue
		}
		for _, it := range fitems {
			b = b[:0]
			ml := labelsLen(it.s.labels) + 1 + protowire.SizeVarint(valueMsgLen) + valueMsgLen
			b = protowire.AppendTag(b, fFamilyMetric, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(ml))
			b = appendLabels(b, it.s.labels)
			b = protowire.AppendTag(b, valueField, protowire.BytesType)
			b = protowire.AppendVarint(b, valueMsgLen)
			b = protowire.AppendTag(b, fValue, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(it.v))
			w.Write(b)
		}
		sb.num = b
	}
	return nil
}
