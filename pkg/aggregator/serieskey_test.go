package aggregator

import (
	"bytes"
	"strings"
	"testing"

	"github.com/garner-metrics/garner/pkg/statsd"
)

// cleanParts makes fuzzed parts what callers hand AppendSeriesKey: a
// sanitised name, escaped tags and source.
func cleanParts(name, tagList, source string) ([]byte, [][]byte, []byte) {
	var tags [][]byte
	for _, t := range strings.Split(tagList, "|") {
		tags = append(tags, AppendTag(nil, t))
	}
	return []byte(statsd.SanitizeName(name)), tags, AppendSource(nil, source)
}

func TestSeriesKey(t *testing.T) {
	for _, tc := range []struct {
		name, tags, source string
		want               string
	}{
		{"a.b", "z:1|a:2|z:1|", "10.0.0.7", "a.b\x00a:2,z:1\x0010.0.0.7"},
		{"n", "", "", "n\x00\x00"},
		{"n", "x,y|\x00", "h\x00st", "n\x00_,x_y\x00h_st"},
		{"sp ace/slash#", "t", "", "sp_ace-slash\x00t\x00"},
	} {
		name, tags, src := cleanParts(tc.name, tc.tags, tc.source)
		k := SeriesKey(AppendSeriesKey(nil, name, tags, src))
		if string(k) != tc.want {
			t.Errorf("key of %q %q %q = %q, want %q", tc.name, tc.tags, tc.source, k, tc.want)
		}
		n, tg, s := k.Parts()
		if !bytes.Equal(n, k.Name()) || string(n)+"\x00"+string(tg)+"\x00"+string(s) != string(k) {
			t.Errorf("%q splits into %q %q %q", k, n, tg, s)
		}
		se := seriesOf(string(k))
		if se.Name != string(n) || se.Source != string(s) || strings.Join(se.Tags, ",") != string(tg) {
			t.Errorf("%q decodes to %+v", k, se)
		}
	}
}

// TestAppendSeriesKeyAllocations: building a key into a buffer with room
// allocates nothing.
func TestAppendSeriesKeyAllocations(t *testing.T) {
	dst := make([]byte, 0, 256)
	name, src := []byte("api.request"), []byte("10.0.0.7")
	tags := [][]byte{[]byte("region:us"), []byte("env:prod"), []byte("env:prod")}
	if n := testing.AllocsPerRun(100, func() { dst = AppendSeriesKey(dst[:0], name, tags, src) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzSeriesKey: whatever the parts, once cleaned as callers clean them,
// the key decodes into exactly its parts (tags sorted, de-duplicated,
// without empty ones), and encoding the decoded parts gives the same key.
func FuzzSeriesKey(f *testing.F) {
	f.Add("a.b", "z:1|a:2|z:1", "10.0.0.7")
	f.Add("", "", "")
	f.Add("x", "a,b|\x00|", "h\x00")
	f.Fuzz(func(t *testing.T, name, tagList, source string) {
		n, tags, src := cleanParts(name, tagList, source)
		want := make(map[string]bool)
		for _, tg := range tags {
			if len(tg) > 0 {
				want[string(tg)] = true
			}
		}
		k := SeriesKey(AppendSeriesKey(nil, n, tags, src))
		dn, dt, ds := k.Parts()
		if !bytes.Equal(dn, n) || !bytes.Equal(ds, src) {
			t.Fatalf("%q: name %q source %q, want %q %q", k, dn, ds, n, src)
		}
		var split [][]byte
		if len(dt) > 0 {
			split = bytes.Split(dt, []byte(","))
		}
		if len(split) != len(want) {
			t.Fatalf("%q: tags %q, want the %d distinct non-empty ones of %q", k, split, len(want), tags)
		}
		for i, tg := range split {
			if !want[string(tg)] || (i > 0 && bytes.Compare(split[i-1], tg) >= 0) {
				t.Fatalf("%q: tags %q not the sorted distinct tags of %q", k, split, tags)
			}
		}
		if again := AppendSeriesKey(nil, dn, split, ds); !bytes.Equal(again, k) {
			t.Fatalf("re-encoded %q, want %q", again, k)
		}
		if se := seriesOf(string(k)); se.Name != string(dn) || se.Source != string(ds) || len(se.Tags) != len(split) {
			t.Fatalf("%q decodes to %+v", k, se)
		}
	})
}
