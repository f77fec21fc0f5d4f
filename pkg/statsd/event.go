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
	rest := line[3:] // after "_e{"
	comma := bytes.IndexByte(rest, ',')
	if comma < 0 {
		return nil, ErrBadEvent
	}
	titleLen, err := strconv.ParseUint(string(rest[:comma]), 10, 31)
	if err != nil {
		return nil, ErrBadEvent
	}
	rest = rest[comma+1:]
	brace := bytes.IndexByte(rest, '}')
	if brace < 0 {
		return nil, ErrBadEvent
	}
	textLen, err := strconv.ParseUint(string(rest[:brace]), 10, 31)
	if err != nil {
		return nil, ErrBadEvent
	}
	rest = rest[brace+1:]
	if len(rest) == 0 || rest[0] != ':' {
		return nil, ErrBadEvent
	}
	rest = rest[1:]
	if titleLen == 0 || uint64(len(rest)) < titleLen+1+textLen || rest[titleLen] != '|' {
		return nil, ErrBadEvent
	}
	e := &model.Event{
		Title: string(rest[:titleLen]),
		Text:  strings.ReplaceAll(string(rest[titleLen+1:titleLen+1+textLen]), `\n`, "\n"),
	}
	rest = rest[titleLen+1+textLen:]
	if len(rest) > 0 && rest[0] != '|' {
		return nil, ErrBadEvent
	}
	for len(rest) > 0 {
		rest = rest[1:] // the '|'
		var attr []byte
		if p := bytes.IndexByte(rest, '|'); p < 0 {
			attr, rest = rest, nil
		} else {
			attr, rest = rest[:p], rest[p:]
		}
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
			switch string(val) {
			case "normal":
				e.Priority = model.PriorityNormal
			case "low":
				e.Priority = model.PriorityLow
			default:
				m.Unknown++
			}
		case 't':
			switch string(val) {
			case "info":
				e.AlertType = model.AlertInfo
			case "warning":
				e.AlertType = model.AlertWarning
			case "error":
				e.AlertType = model.AlertError
			case "success":
				e.AlertType = model.AlertSuccess
			default:
				m.Unknown++
			}
		default: // c:, e: and unknown fields
			m.Unknown++
		}
	}
	return e, nil
}

// parseServiceCheck parses _sc|<name>|<status>|d:<ts>|h:<host>|#tags|m:<message>.
// m: is the last field: the message runs to the end of the line. A bad
// timestamp, an unknown field and c:, e:, card: are skipped and counted in
// m.Unknown, as in parseEvent.
func (m *Metric) parseServiceCheck(line []byte) (*model.ServiceCheck, error) {
	lim := &m.Limits
	fields := line[4:]
	p := bytes.IndexByte(fields, '|')
	if p <= 0 {
		return nil, ErrBadCheck
	}
	sc := &model.ServiceCheck{Name: string(fields[:p])}
	fields = fields[p+1:]
	var status []byte
	if p = bytes.IndexByte(fields, '|'); p < 0 {
		status, fields = fields, nil
	} else {
		status, fields = fields[:p], fields[p+1:]
	}
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
		if p = bytes.IndexByte(fields, '|'); p < 0 {
			f, fields = fields, nil
		} else {
			f, fields = fields[:p], fields[p+1:]
		}
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
		if c := bytes.IndexByte(b, ','); c < 0 {
			t, b = b, nil
		} else {
			t, b = b[:c], b[c+1:]
		}
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
