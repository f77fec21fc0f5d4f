package statsd

import (
	"fmt"
	"unicode/utf8"
)

// TagFormats is a set of tag styles: where on a line tags may stand.
type TagFormats uint8

// Tag styles. Every style but DogStatsD carries its tags in the name, as
// key=value pairs; Parse turns each into the key:value tag a |# section
// would have given.
const (
	// TagDogStatsD: name:1|c|#k1:v1,k2:v2.
	TagDogStatsD TagFormats = 1 << iota
	// TagInfluxDB (InfluxDB, Telegraf): name,k1=v1,k2=v2:1|c.
	TagInfluxDB
	// TagLibrato: name#k1=v1,k2=v2:1|c.
	TagLibrato
	// TagSignalFx: name[k1=v1,k2=v2]rest:1|c; the bracket may stand
	// anywhere in the name, which is what is left around it (namerest).
	TagSignalFx
	// TagGraphite (Graphite, etsy statsd 0.9): name;k1=v1;k2=v2:1|c.
	TagGraphite

	// AllTagFormats is every style.
	AllTagFormats = TagDogStatsD | TagInfluxDB | TagLibrato | TagSignalFx | TagGraphite
)

// TagFormatNames names the styles, in bit order, as the tag-formats key
// writes them.
var TagFormatNames = []string{"dogstatsd", "influxdb", "librato", "signalfx", "graphite"}

// ParseTagFormats returns the set of the named styles.
func ParseTagFormats(names []string) (TagFormats, error) {
	var f TagFormats
next:
	for _, n := range names {
		for i, known := range TagFormatNames {
			if n == known {
				f |= 1 << i
				continue next
			}
		}
		return 0, fmt.Errorf("unknown tag format %q (known: %v)", n, TagFormatNames)
	}
	return f, nil
}

// Names returns the names of the styles in f, in TagFormatNames order.
func (f TagFormats) Names() []string {
	var out []string
	for i, n := range TagFormatNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// nameTags handles a name that holds bytes outside [A-Za-z0-9._-]: it
// refuses invalid UTF-8, takes out the tags of an enabled name style
// (appending them to m.Tags) and returns the sanitised name. name aliases
// the line, which it rewrites in place. styled says the name held at least
// one tag (an empty a,:1|c or a[]b:1|c does not count, as in statsd_exporter,
// so it may stand next to a |# section).
//
// One style per line: a SignalFx [...] pair wins, else the first of ',',
// '#' and ';' that is on starts the tags, which run to the end of the name.
// Tags are taken only if one of them at least is a key=value pair: a name
// like smp,gge$ or a[0] is sanitised as gostatsd does (smpgge, a0). A tag is
// split at its first '=' into key:value (a tag without '=' is a bare tag,
// an empty one is skipped); \x00 and '|' in a tag become '_', as
// does ',' in a Graphite tag, since ',' and \x00 separate tags in the
// series key.
func (m *Metric) nameTags(name []byte) (out []byte, styled bool, err error) {
	if !utf8.Valid(name) {
		return nil, false, ErrInvalidUTF8
	}
	on := AllTagFormats &^ m.DisabledTagFormats
	if on&(TagInfluxDB|TagLibrato|TagSignalFx|TagGraphite) == 0 {
		return sanitizeName(name), false, nil
	}
	open, end := -1, -1
	if on&TagSignalFx != 0 {
		for i, c := range name {
			if c == '[' && open < 0 {
				open = i
			} else if c == ']' && open >= 0 {
				end = i
				break
			}
		}
	}
	var tags []byte
	sep := byte(',')
	if end > 0 && hasPair(name[open+1:end], ',') {
		// Rotate "[tags]rest" to "rest[tags]" so the name is one slice.
		rotate(name[open:], end+1-open)
		rest := len(name) - end - 1
		tags = name[open+rest+1 : len(name)-1]
		name = name[:open+rest]
	} else {
		for i, c := range name {
			if (c == ',' && on&TagInfluxDB != 0) || (c == '#' && on&TagLibrato != 0) || (c == ';' && on&TagGraphite != 0) {
				if c == ';' {
					sep = ';'
				}
				if hasPair(name[i+1:], sep) {
					tags, name = name[i+1:], name[:i]
				}
				break
			}
		}
		if tags == nil {
			return sanitizeName(name), false, nil
		}
	}
	n := len(m.Tags)
	if err := m.splitNameTags(tags, sep); err != nil {
		return nil, true, err
	}
	return sanitizeName(name), len(m.Tags) > n, nil
}

func (m *Metric) splitNameTags(b []byte, sep byte) error {
	maxTags, maxLen := m.Limits.tags()
	start, eq := 0, false
	for i := 0; ; i++ {
		if i < len(b) && b[i] != sep {
			switch b[i] {
			case '=':
				if !eq {
					b[i], eq = ':', true
				}
			case 0, '|', ',':
				b[i] = '_' // a ',' here is a Graphite tag's (other styles' sep)
			}
			continue
		}
		if t := b[start:i]; len(t) > 0 {
			if len(m.Tags) == maxTags {
				return ErrTooManyTags
			}
			if len(t) > maxLen {
				return ErrTagTooLong
			}
			m.Tags = append(m.Tags, t)
		}
		if i == len(b) {
			return nil
		}
		start, eq = i+1, false
	}
}

// hasPair says whether one of the sep-separated tags of b is key=value
// with a non-empty key.
func hasPair(b []byte, sep byte) bool {
	start := 0
	for i, c := range b {
		switch c {
		case sep:
			start = i + 1
		case '=':
			if i > start {
				return true
			}
		}
	}
	return false
}

// rotate rotates b left by k bytes in place.
func rotate(b []byte, k int) {
	reverse(b[:k])
	reverse(b[k:])
	reverse(b)
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}
