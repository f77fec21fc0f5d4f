// Package promwire holds the protobuf pieces Prometheus' formats share:
// the label message, which is {string name = 1; string value = 2;} in
// remote write (prompb.Label) and in the scrape exposition
// (io.prometheus.client.LabelPair) alike.
package promwire

import "google.golang.org/protobuf/encoding/protowire"

const (
	fieldName  protowire.Number = 1
	fieldValue protowire.Number = 2
)

// LabelSize is the size of a label message's body.
func LabelSize(name, value string) int {
	return protowire.SizeTag(fieldName) + protowire.SizeBytes(len(name)) +
		protowire.SizeTag(fieldValue) + protowire.SizeBytes(len(value))
}

// FieldSize is the size of a label as field number f of its parent
// message: tag, length and body.
func FieldSize(f protowire.Number, name, value string) int {
	return protowire.SizeTag(f) + protowire.SizeBytes(LabelSize(name, value))
}

// AppendLabel appends a label as field number f (length-delimited) of its
// parent message.
func AppendLabel(dst []byte, f protowire.Number, name, value string) []byte {
	dst = protowire.AppendTag(dst, f, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(LabelSize(name, value)))
	dst = protowire.AppendTag(dst, fieldName, protowire.BytesType)
	dst = protowire.AppendString(dst, name)
	dst = protowire.AppendTag(dst, fieldValue, protowire.BytesType)
	return protowire.AppendString(dst, value)
}
