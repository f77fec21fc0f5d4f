package filter

import (
	"bytes"
	"unicode/utf8"

	"github.com/garner-metrics/garner/pkg/statsd"
)

// Metric is the part of one metric that shaping reads and changes. Shaping
// never writes into the bytes Name, Tags and Source point to: it reslices
// them, or points them at the Shaper's own buffers.
type Metric struct {
	Name   []byte   // the name as sent, without the namespace
	Tags   [][]byte // the metric's own tags; Apply appends to this slice
	Source []byte   // the host or sender address; nil after drop-host
}

// Shaper applies Rules for one goroutine: it holds scratch buffers and
// counts that Publish adds to the metrics. It is not safe for concurrent
// use. A nil *Shaper must not be used: NewShaper returns nil when there is
// nothing to do, so that callers keep their fast path.
type Shaper struct {
	r       *Rules
	ns      []byte
	defTags [][]byte

	name   []byte   // mapped name
	tagBuf []byte   // mapped tags' bytes
	tagOff []int    // [start, end) pairs in tagBuf
	drop   [][]byte // tags marked by drop-tags

	// for ApplyStrings
	arena   []byte
	views   [][]byte
	src     []byte
	keyBuf  []byte
	outTags []string

	nDropped              []uint64 // per filter
	nMapped               []uint64 // per mapping
	nKeyTags, nFilterTags uint64
	nTruncated            uint64
	pending               bool
}

// NewShaper returns a Shaper that prefixes names with ns (e.g. "app.", or
// nil) and adds defTags, or nil when r is nil or has nothing to do (the
// caller then prefixes and adds them itself). r, ns and defTags must not
// change afterwards.
func (r *Rules) NewShaper(ns []byte, defTags [][]byte) *Shaper {
	if r == nil || (len(r.filters) == 0 && len(r.dropKeys) == 0 && r.maxLen <= 0 && len(r.mappings) == 0) {
		return nil
	}
	return &Shaper{
		r: r, ns: ns, defTags: defTags,
		nDropped: make([]uint64, len(r.filters)),
		nMapped:  make([]uint64, len(r.mappings)),
	}
}

// Apply shapes m (see the package documentation for the steps) and appends
// its namespaced, possibly renamed, name to dst. It reports false when a
// filter dropped the metric; dst is then returned unchanged. On true,
// m.Tags holds the tags to keep followed by the default tags (unsorted,
// possibly with duplicates) and m.Source the source. The returned name and
// tags may point into the Shaper's buffers: they are valid until the next
// call.
func (s *Shaper) Apply(dst []byte, m *Metric) ([]byte, bool) {
	return s.apply(dst, s.ns, m)
}

func (s *Shaper) apply(dst, ns []byte, m *Metric) ([]byte, bool) {
	r := s.r
	name := m.Name
	if len(r.mappings) > 0 {
		name = s.mapName(m)
	}
	start := len(dst)
	dst = append(dst, ns...)
	dst = append(dst, name...)
	full := dst[start:]

	tags := m.Tags
	if len(r.dropKeys) > 0 || r.maxLen > 0 {
		tags = s.tagRules(tags)
	}
	s.drop = s.drop[:0]
	for i := range r.filters {
		f := &r.filters[i]
		if len(f.matchMetrics) > 0 && !f.matchMetrics.MatchAny(full) {
			continue
		}
		if f.excludeMetrics.MatchAny(full) {
			continue
		}
		if len(f.matchTags) > 0 && !f.matchTags.matchAnyOf(tags) {
			continue
		}
		if f.dropMetric {
			s.nDropped[i]++
			s.pending = true
			m.Tags = tags
			return dst[:start], false
		}
		for j := range f.dropTags {
			for _, t := range tags {
				if f.dropTags[j].Match(t) {
					s.drop = append(s.drop, t)
				}
			}
		}
		if f.dropHost {
			m.Source = nil
		}
	}
	if len(s.drop) > 0 {
		out := tags[:0]
		for _, t := range tags {
			if in(s.drop, t) {
				s.nFilterTags++
				s.pending = true
				continue
			}
			out = append(out, t)
		}
		tags = out
	}
	for _, d := range s.defTags {
		if len(s.drop) == 0 || !in(s.drop, d) {
			tags = append(tags, d)
		}
	}
	m.Tags = tags
	return dst, true
}

// in reports whether t equals one of set.
func in(set [][]byte, t []byte) bool {
	for _, d := range set {
		if bytes.Equal(d, t) {
			return true
		}
	}
	return false
}

// tagRules applies drop-tag-keys and max-tag-value-length in place.
func (s *Shaper) tagRules(tags [][]byte) [][]byte {
	r := s.r
	out := tags[:0]
	for _, t := range tags {
		colon := bytes.IndexByte(t, ':')
		if r.dropKeys != nil {
			k := t
			if colon >= 0 {
				k = t[:colon]
			}
			if _, ok := r.dropKeys[string(k)]; ok {
				s.nKeyTags++
				s.pending = true
				continue
			}
		}
		if r.maxLen > 0 {
			v := colon + 1 // a bare tag is all value
			if len(t)-v > r.maxLen {
				n := r.maxLen
				for n > 0 && !utf8.RuneStart(t[v+n]) {
					n-- // do not cut a character in two
				}
				t = t[:v+n]
				s.nTruncated++
				s.pending = true
			}
		}
		out = append(out, t)
	}
	return out
}

// mapName returns the name of the first mapping that matches m.Name, with
// its tags appended to m.Tags, or m.Name when none matches.
func (s *Shaper) mapName(m *Metric) []byte {
	for i := range s.r.mappings {
		mp := &s.r.mappings[i]
		if !mp.re.mayMatch(m.Name) {
			continue
		}
		idx := mp.re.FindSubmatchIndex(m.Name) // allocates only on a match
		if idx == nil {
			continue
		}
		// The template may bring bytes a name may not hold: sanitised as
		// the parser sanitises a line's name.
		name := statsd.SanitizeNameInPlace(mp.re.Expand(s.name[:0], mp.as, m.Name, idx))
		if len(name) == 0 {
			continue // "$1" with an empty group: not a name
		}
		s.name = name
		s.tagBuf, s.tagOff = s.tagBuf[:0], s.tagOff[:0]
		for _, tt := range mp.tags {
			st := len(s.tagBuf)
			s.tagBuf = mp.re.Expand(s.tagBuf, tt, m.Name, idx)
			if t := s.tagBuf[st:]; len(t) == 0 || t[len(t)-1] == ':' {
				s.tagBuf = s.tagBuf[:st] // empty value: leave the tag out
				continue
			}
			s.tagOff = append(s.tagOff, st, len(s.tagBuf))
		}
		for j := 0; j < len(s.tagOff); j += 2 {
			m.Tags = append(m.Tags, s.tagBuf[s.tagOff[j]:s.tagOff[j+1]])
		}
		s.nMapped[i]++
		s.pending = true
		return s.name
	}
	return m.Name
}

// ApplyStrings shapes a series that arrives with string fields (forwarded
// series, garner's own metrics): as Apply, without a namespace. It returns
// the new name, the tags to keep followed by the default tags, and the
// source, or false when a filter dropped the series. The returned tags slice
// is the Shaper's: valid until the next call.
func (s *Shaper) ApplyStrings(name string, tags []string, source string) (string, []string, string, bool) {
	s.arena = append(s.arena[:0], name...)
	for _, t := range tags {
		s.arena = append(s.arena, t...)
	}
	s.views = s.views[:0]
	off := len(name)
	for _, t := range tags {
		s.views = append(s.views, s.arena[off:off+len(t)])
		off += len(t)
	}
	s.src = append(s.src[:0], source...)
	m := Metric{Name: s.arena[:len(name)], Tags: s.views, Source: s.src}
	key, ok := s.apply(s.keyBuf[:0], nil, &m)
	s.keyBuf = key
	s.views = m.Tags[:0]
	if !ok {
		return "", nil, "", false
	}
	if string(key) != name {
		name = string(key)
	}
	s.outTags = s.outTags[:0]
	for _, t := range m.Tags {
		s.outTags = append(s.outTags, string(t))
	}
	if len(m.Source) == 0 {
		source = ""
	}
	return name, s.outTags, source, true
}

// Publish adds the counts since the last Publish to the metrics. Call it
// from the Shaper's goroutine now and then (a Router does on each Flush).
func (s *Shaper) Publish() {
	if !s.pending {
		return
	}
	s.pending = false
	r := s.r
	for i, n := range s.nDropped {
		if n > 0 {
			r.filters[i].dropped.Add(float64(n))
			s.nDropped[i] = 0
		}
	}
	for i, n := range s.nMapped {
		if n > 0 {
			r.mappings[i].matched.Add(float64(n))
			s.nMapped[i] = 0
		}
	}
	add := func(c interface{ Add(float64) }, n *uint64) {
		if *n > 0 {
			c.Add(float64(*n))
			*n = 0
		}
	}
	add(r.m.droppedTagsByKey, &s.nKeyTags)
	add(r.m.droppedTagsByFilter, &s.nFilterTags)
	add(r.m.truncated, &s.nTruncated)
}
