package statsd

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/garner-metrics/garner/pkg/model"
)

// parseEvent parses _e{<title len>,<text len>}:<title>|<text>|d:..|h:..|k:..|p:..|s:..|t:..|#tags.
// Lengths are in bytes; "\n" written as the two bytes \ and n in the text is
// a newline. As the Datadog agent, it keeps the event when an optional field
// has a bad value (d:abc, p:urgent, t:test): the field is skipped and
// counted in m.Unknown, as are unknown fields and those garner carries
// nowhere (c:, e:, card:).
func (m *Metric) parseEvent(line []byte) (*model.Event, error) {
	lim := &m.Limits
	titleLen, rest, ok := cutLength(line[3:], ',') // after "_e{"
	if !ok {
		return nil, ErrBadEvent
	}
	textLen, rest, ok := cutLength(rest, '}')
	if !ok || len(rest) == 0 || rest[0] != ':' {
		return nil, ErrBadEvent
	}
	rest = rest[1:]
	var err error
	if titleLen == 0 || uint64(len(rest)) < titleLen+1+textLen || rest[titleLen] != '|' {
		return nil, ErrBadEvent
	}
	e := &model.Event{
		Title: string(rest[:titleLen]),
		Text:  strings.ReplaceAll(string(rest[titleLen+1:titleLen+1+textLen]), `\n`, "\n"),
	}
	rest = rest[titleLen+1+textLen:]
	if len(rest) > 0 {
		if rest[0] != '|' {
			return nil, ErrBadEvent
		}
		rest = rest[1:]
	}
	for len(rest) > 0 {
		var attr []byte
		attr, rest, _ = bytes.Cut(rest, sep)
		if len(attr) == 0 {
			continue
		}
		if attr[0] == '#' {
			if e.Tags, err = splitTags(attr[1:], lim); err != nil {
				return nil, err
			}
			continue
		}
		if len(attr) < 2 || attr[1] != ':' {
			m.Unknown++ // card:, or anything else
			continue
		}
		val := attr[2:]
		switch attr[0] {
		case 'd':
			ts, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				m.Unknown++
				continue
			}
			e.DateHappened = ts
		case 'h':
			e.Hostname = string(val)
		case 'k':
			e.AggregationKey = string(val)
		case 's':
			e.SourceTypeName = string(val)
		case 'p':
			setEnum(m, &e.Priority, model.ParsePriority, val)
		case 't':
			setEnum(m, &e.AlertType, model.ParseAlertType, val)
		default: // c:, e: and unknown fields
			m.Unknown++
		}
	}
	return e, nil
}

// setEnum sets *dst to the value parse reads in val; a value parse does not
// know leaves *dst as it was and is counted in m.Unknown.
func setEnum[T any](m *Metric, dst *T, parse func(string) (T, bool), val []byte) {
	if v, ok := parse(string(val)); ok {
		*dst = v
		return
	}
	m.Unknown++
}

// parseServiceCheck parses _sc|<name>|<status>|d:<ts>|h:<host>|#tags|m:<message>.
// m: is the last field: the message runs to the end of the line. A bad
// timestamp, an unknown field and c:, e:, card: are skipped and counted in
// m.Unknown, as in parseEvent.
func (m *Metric) parseServiceCheck(line []byte) (*model.ServiceCheck, error) {
	lim := &m.Limits
	name, fields, ok := bytes.Cut(line[4:], sep)
	if !ok || len(name) == 0 {
		return nil, ErrBadCheck
	}
	sc := &model.ServiceCheck{Name: string(name)}
	status, fields, _ := bytes.Cut(fields, sep)
	if len(status) != 1 || status[0] < '0' || status[0] > '3' {
		return nil, ErrBadCheck
	}
	sc.Status = model.CheckStatus(status[0] - '0')
	for len(fields) > 0 {
		if bytes.HasPrefix(fields, []byte("m:")) {
			sc.Message = strings.ReplaceAll(string(fields[2:]), `\n`, "\n")
			break
		}
		var f []byte
		f, fields, _ = bytes.Cut(fields, sep)
		switch {
		case len(f) == 0:
		case f[0] == '#':
			tags, err := splitTags(f[1:], lim)
			if err != nil {
				return nil, err
			}
			sc.Tags = tags
		case len(f) > 2 && f[0] == 'd' && f[1] == ':':
			ts, err := strconv.ParseInt(string(f[2:]), 10, 64)
			if err != nil {
				m.Unknown++
				continue
			}
			sc.Timestamp = ts
		case len(f) > 2 && f[0] == 'h' && f[1] == ':':
			sc.Hostname = string(f[2:])
		default:
			m.Unknown++
		}
	}
	return sc, nil
}

// splitTags splits a comma-separated tag list; empty tags are skipped and a
// list over lim is refused as a metric line's would be.
func splitTags(b []byte, lim *Limits) ([]string, error) {
	maxTags, maxLen := lim.tags()
	var tags []string
	for len(b) > 0 {
		var t []byte
		t, b, _ = bytes.Cut(b, comma)
		if len(t) == 0 {
			continue
		}
		if len(tags) == maxTags {
			return nil, ErrTooManyTags
		}
		if len(t) > maxLen {
			return nil, ErrTagTooLong
		}
		tags = append(tags, string(t))
	}
	return tags, nil
}

// The separators of fields and of tags.
var sep, comma = []byte("|"), []byte(",")

// cutLength reads the decimal length before end in b and returns what
// follows end.
func cutLength(b []byte, end byte) (n uint64, rest []byte, ok bool) {
	i := bytes.IndexByte(b, end)
	if i < 0 {
		return 0, nil, false
	}
	n, err := strconv.ParseUint(string(b[:i]), 10, 31)
	return n, b[i+1:], err == nil
}
