package promwire

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestAppendLabel: a Metric holding labels written by AppendLabel decodes
// to them, and FieldSize is what AppendLabel writes.
func TestAppendLabel(t *testing.T) {
	var b []byte
	size := 0
	for _, l := range [][2]string{{"a", "x"}, {"route", ""}, {"long", string(make([]byte, 300))}} {
		before := len(b)
		b = AppendLabel(b, 1, l[0], l[1]) // Metric.label = 1
		if got, want := len(b)-before, FieldSize(1, l[0], l[1]); got != want {
			t.Errorf("%q: wrote %d bytes, FieldSize %d", l[0], got, want)
		}
		size += FieldSize(protowire.Number(1), l[0], l[1])
	}
	var m dto.Metric
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Label) != 3 || m.Label[0].GetName() != "a" || m.Label[0].GetValue() != "x" || m.Label[1].GetName() != "route" || len(m.Label[2].GetValue()) != 300 || size != len(b) {
		t.Errorf("decoded %v (size %d of %d)", m.Label, size, len(b))
	}
}
