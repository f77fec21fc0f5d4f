package aggregator

import (
	"bytes"
	"strings"

	"github.com/garner-metrics/garner/pkg/model"
)

// SeriesKey is the identity of a series: the bytes the shards key their maps
// by and hash to choose the shard that owns it. Its layout is
//
//	name \x00 tag,tag,... \x00 source
//
// with the tags sorted, without duplicates and without empty ones, so that
// tag order and repeats never split a series. The parts decode without
// ambiguity because none holds the separators: a name holds no \x00 (names
// are sanitised: statsd.SanitizeName), a tag neither ',' nor \x00, a source
// no \x00. AppendSeriesKey takes parts that are already clean, as the statsd
// parser makes them; AppendTag and AppendSource clean outside strings.
//
// This file is the only place that knows the layout.
type SeriesKey []byte

// AppendSeriesKey appends the key of name, tags and source to dst and
// returns it. It sorts tags and removes duplicates in place (SortTags). The
// parts must be clean (see SeriesKey). It allocates only when dst grows.
func AppendSeriesKey(dst, name []byte, tags [][]byte, source []byte) []byte {
	return AppendKeyTail(append(dst, name...), tags, source)
}

// AppendKeyTail completes a key whose name dst already ends with: it appends
// the separator, tags (sorted and de-duplicated in place) and source.
func AppendKeyTail(dst []byte, tags [][]byte, source []byte) []byte {
	dst = append(dst, 0)
	tags = SortTags(tags)
	first := true
	for _, t := range tags {
		if len(t) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, t...)
	}
	dst = append(dst, 0)
	return append(dst, source...)
}

// SortTags sorts tags in place (insertion sort: series carry few tags) and
// removes duplicates; it returns the shortened slice.
func SortTags(tags [][]byte) [][]byte {
	for i := 1; i < len(tags); i++ {
		for j := i; j > 0 && bytes.Compare(tags[j], tags[j-1]) < 0; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
	out := tags[:0]
	for i, t := range tags {
		if i > 0 && bytes.Equal(t, tags[i-1]) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// AppendTag appends tag to dst with the bytes a tag may not hold in a key
// (',' and \x00) replaced by '_'.
func AppendTag(dst []byte, tag string) []byte {
	return appendReplacing(dst, tag, ",\x00")
}

// AppendSource appends source to dst with \x00 replaced by '_'.
func AppendSource(dst []byte, source string) []byte {
	return appendReplacing(dst, source, "\x00")
}

func appendReplacing(dst []byte, s, reserved string) []byte {
	start := len(dst)
	dst = append(dst, s...)
	if strings.ContainsAny(s, reserved) {
		for i := start; i < len(dst); i++ {
			if strings.IndexByte(reserved, dst[i]) >= 0 {
				dst[i] = '_'
			}
		}
	}
	return dst
}

// Name is the name part of k.
func (k SeriesKey) Name() []byte {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return k[:i]
	}
	return k
}

// Parts splits k into its name, its tags (comma-joined) and its source.
func (k SeriesKey) Parts() (name, tags, source []byte) {
	name, rest, _ := bytes.Cut(k, []byte{0})
	tags, source, _ = bytes.Cut(rest, []byte{0})
	return name, tags, source
}

// seriesOf decodes a key held as a string (a shard's map key) into a Series
// whose strings share the key's memory.
func seriesOf(key string) model.Series {
	name, rest, _ := strings.Cut(key, "\x00")
	tagStr, src, _ := strings.Cut(rest, "\x00")
	var tags []string
	if tagStr != "" {
		tags = strings.Split(tagStr, ",")
	}
	return model.Series{Name: name, Tags: tags, Source: src}
}

// keyName is the name part of a key held as a string.
func keyName(key string) string {
	name, _, _ := strings.Cut(key, "\x00")
	return name
}
