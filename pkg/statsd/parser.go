// Package statsd parses the statsd / DogStatsD line protocol.
//
// Parsing a metric line allocates nothing in steady state: a Metric is reused
// from line to line, and its byte slices alias the line. Events and service
// checks (rare) are parsed into freshly allocated values.
package statsd

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/garner-metrics/garner/pkg/model"
)

// Type is a metric type.
type Type uint8

// Metric types. Timer covers ms, h and d.
const (
	Counter Type = iota + 1
	Gauge
	Timer
	Set
)

func (t Type) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Timer:
		return "timer"
	case Set:
		return "set"
	}
	return "unknown"
}

// Kind says what a line held.
type Kind uint8

// Line kinds.
const (
	KindMetric Kind = iota + 1
	KindEvent
	KindServiceCheck
)

// Error is a parse error; Reason is a short stable label for metrics.
type Error struct {
	Reason string
	msg    string
}

func (e *Error) Error() string { return e.msg }

// Parse errors. Each is a reason a line is counted as bad.
var (
	ErrEmptyName    = &Error{"empty_name", "metric name is empty"}
	ErrNoValue      = &Error{"missing_value", "missing ':' between name and value"}
	ErrNoType       = &Error{"missing_type", "missing '|' before the type"}
	ErrBadType      = &Error{"bad_type", "unknown metric type (want c, g, ms, h, d or s)"}
	ErrBadValue     = &Error{"bad_value", "value is not a finite number"}
	ErrBadRate      = &Error{"bad_sample_rate", "sample rate is not a number greater than 0"}
	ErrTooManyTags  = &Error{"too_many_tags", "too many tags"}
	ErrTagTooLong   = &Error{"tag_too_long", "tag longer than the limit"}
	ErrBadEvent     = &Error{"bad_event", "malformed event (_e{title_len,text_len}:title|text|...)"}
	ErrBadCheck     = &Error{"bad_service_check", "malformed service check (_sc|name|status|...)"}
	ErrLineTooLong  = &Error{"line_too_long", "line longer than the limit"}
	ErrTooManyValue = &Error{"too_many_values", "too many packed values"}
	ErrMixedTags    = &Error{"mixed_tag_styles", "tags both in the name (name,k=v / name#k=v / name[k=v] / name;k=v) and in a |# section"}
	ErrInvalidUTF8  = &Error{"invalid_utf8", "name, tag or event field is not valid UTF-8"}
)

// Reasons lists every Error.Reason, so metrics can be created up front.
var Reasons = []string{
	ErrEmptyName.Reason, ErrNoValue.Reason, ErrNoType.Reason, ErrBadType.Reason,
	ErrBadValue.Reason, ErrBadRate.Reason, ErrTooManyTags.Reason, ErrBadEvent.Reason,
	ErrBadCheck.Reason, ErrLineTooLong.Reason, ErrTooManyValue.Reason, ErrTagTooLong.Reason,
	ErrMixedTags.Reason, ErrInvalidUTF8.Reason,
}

// Default bounds of one line, used where a Limits field is zero.
const (
	MaxTags      = 256  // tags on one line
	MaxTagLength = 4096 // bytes of one tag
	MaxValues    = 4096 // packed values (name:1:2:3|ms) on one line
)

// Limits bounds what one line may carry; a line over a bound is refused with
// ErrTooManyTags, ErrTagTooLong or ErrTooManyValue. A zero field means the
// default (MaxTags, MaxTagLength, MaxValues).
type Limits struct {
	Tags      int // most tags on a line (metric, event or service check)
	TagLength int // longest tag, bytes
	Values    int // most packed values on a metric line
}

func (l *Limits) tags() (n, length int) {
	n, length = l.Tags, l.TagLength
	if n <= 0 {
		n = MaxTags
	}
	if length <= 0 {
		length = MaxTagLength
	}
	return n, length
}

func (l *Limits) values() int {
	if l.Values <= 0 {
		return MaxValues
	}
	return l.Values
}

// Metric is one parsed line. Byte slices alias the parsed line (whose name
// part Parse sanitises in place) and are valid until that buffer is reused.
// A Metric is not safe for concurrent use.
type Metric struct {
	Kind Kind
	Name []byte
	Type Type
	// Values holds the numeric values (several when packed); for gauges,
	// Delta[i] says Values[i] had a leading sign (+3, -2).
	Values []float64
	Delta  []bool
	// Member is the raw value of a set.
	Member      []byte
	Rate        float64 // 1 when absent
	Tags        [][]byte
	ContainerID []byte
	// Timestamp is the DogStatsD 1.3 |T<unix seconds> section: positive, 0
	// when absent or malformed (a malformed one counts in Unknown).
	Timestamp int64
	// Unknown counts the sections skipped because garner does not know
	// them or carries them nowhere (|e:, |card:), and the optional event or
	// service check fields skipped for a bad value (d:abc, p:urgent).
	Unknown int
	// Unscaled is set for a timer sent as h or d rather than ms: values
	// that are not milliseconds (statsd_exporter observes them as they
	// are, and only ms ÷ 1000).
	Unscaled bool

	Event *model.Event        // set when Kind == KindEvent
	Check *model.ServiceCheck // set when Kind == KindServiceCheck

	// Limits bounds the lines Parse accepts. Set it once (a Router does at
	// construction); Parse only reads it.
	Limits Limits
	// DisabledTagFormats are the tag styles Parse does not read: their
	// characters are sanitised out of the name (a disabled DogStatsD |#
	// section is skipped as unknown). Zero, the default, reads every style.
	// Set it once, as Limits.
	DisabledTagFormats TagFormats
}

func (m *Metric) reset() {
	m.Kind = 0
	m.Name = nil
	m.Type = 0
	m.Values = m.Values[:0]
	m.Delta = m.Delta[:0]
	m.Member = nil
	m.Rate = 1
	m.Unscaled = false
	m.Tags = m.Tags[:0]
	m.ContainerID = nil
	m.Timestamp = 0
	m.Unknown = 0
	m.Event = nil
	m.Check = nil
}

// Parse parses one line, without its '\n' (a trailing '\r' is ignored). It
// rewrites the line in place: the name to its sanitised form ('/' becomes
// '-', space and tab become '_', other bytes outside [A-Za-z0-9._-] are
// dropped) after taking out the tags of a name tag style (see TagFormats and
// nameTags); and a \x00 in a tag to '_'. A name, tag or event field that is
// not valid UTF-8 refuses the line (ErrInvalidUTF8). On error m's content is
// undefined.
func (m *Metric) Parse(line []byte) error {
	m.reset()
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	event := len(line) > 2 && line[0] == '_' && line[1] == 'e' && line[2] == '{'
	check := len(line) > 3 && line[0] == '_' && line[1] == 's' && line[2] == 'c' && line[3] == '|'
	if event || check {
		m.Kind = KindEvent
		if check {
			m.Kind = KindServiceCheck
		}
		if !utf8.Valid(line) {
			return ErrInvalidUTF8
		}
		var err error
		if event {
			m.Event, err = m.parseEvent(line)
		} else {
			m.Check, err = m.parseServiceCheck(line)
		}
		return err
	}
	m.Kind = KindMetric

	// One forward scan; lines are short, so plain loops beat IndexByte's
	// call overhead. The name's bytes are checked on the way to ':'.
	i, clean := 0, true
	for ; i < len(line); i++ {
		c := line[i]
		if c == ':' {
			break
		}
		if !validName[c] {
			clean = false
		}
	}
	if i == len(line) {
		return ErrNoValue
	}
	m.Name = line[:i]
	styled := false
	if !clean {
		var err error
		if m.Name, styled, err = m.nameTags(m.Name); err != nil {
			return err
		}
	}
	if len(m.Name) == 0 {
		return ErrEmptyName
	}
	i++
	vstart := i
	for i < len(line) && line[i] != '|' {
		i++
	}
	if i == len(line) {
		return ErrNoType
	}
	value := line[vstart:i]
	i++
	tstart := i
	for i < len(line) && line[i] != '|' {
		i++
	}
	switch typ := line[tstart:i]; len(typ) {
	case 1:
		switch typ[0] {
		case 'c':
			m.Type = Counter
		case 'g':
			m.Type = Gauge
		case 'h', 'd':
			m.Type, m.Unscaled = Timer, true
		case 's':
			m.Type = Set
		default:
			return ErrBadType
		}
	case 2:
		if typ[0] != 'm' || typ[1] != 's' {
			return ErrBadType
		}
		m.Type = Timer
	default:
		return ErrBadType
	}

	// Sections, in any order: i is at a '|' or at the end.
	for i < len(line) {
		i++
		sstart := i
		if i < len(line) && line[i] == '#' && m.DisabledTagFormats&TagDogStatsD == 0 {
			if styled {
				return ErrMixedTags
			}
			i++
			var err error
			if i, err = m.scanTags(line, i); err != nil {
				return err
			}
			continue
		}
		for i < len(line) && line[i] != '|' {
			i++
		}
		sec := line[sstart:i]
		if len(sec) == 0 {
			m.Unknown++
			continue
		}
		switch sec[0] {
		case '@':
			r, ok := parseFloat(sec[1:])
			if !ok || !(r > 0) {
				return ErrBadRate
			}
			m.Rate = r
		case 'c':
			// |c:<container id> (DogStatsD 1.2) is kept in ContainerID but
			// carried by no backend: counted as unknown, as |e: and |card:.
			if len(sec) > 1 && sec[1] == ':' {
				m.ContainerID = sec[2:]
			}
			m.Unknown++
		case 'T':
			// DogStatsD 1.3: |T<unix seconds>. Anything else (Tsoon, T-5,
			// T0) is an unknown section, the line is still good.
			if ts, ok := parseUnix(sec[1:]); ok {
				m.Timestamp = ts
			} else {
				m.Unknown++
			}
		default:
			m.Unknown++
		}
	}

	if m.Type == Set {
		if len(value) == 0 {
			return ErrBadValue
		}
		m.Member = value
		return nil
	}
	// Packed values: an empty one (a:1::2|g, a:1:2:|ms) is skipped, as
	// gostatsd and the Datadog agent do; a line left with none is bad.
	for {
		var v []byte
		c := 0
		for c < len(value) && value[c] != ':' {
			c++
		}
		if c == len(value) {
			v, c = value, -1
		} else {
			v, value = value[:c], value[c+1:]
		}
		if len(v) > 0 {
			if len(m.Values) >= m.Limits.values() {
				return ErrTooManyValue
			}
			f, ok := parseFloat(v)
			if !ok {
				return ErrBadValue
			}
			m.Values = append(m.Values, f)
			m.Delta = append(m.Delta, v[0] == '+' || v[0] == '-')
		}
		if c < 0 {
			if len(m.Values) == 0 {
				return ErrBadValue
			}
			return nil
		}
	}
}

// scanTags reads the tags of a |#a,b:c section starting at line[i] and
// returns the index of the '|' that ends the section (or len(line)).
func (m *Metric) scanTags(line []byte, i int) (int, error) {
	maxTags, maxLen := m.Limits.tags()
	start, high := i, false
	for ; ; i++ {
		if i < len(line) && !tagEnd[line[i]] {
			continue
		}
		if i < len(line) && line[i] == 0 {
			line[i] = '_' // a series key separator (aggregator.SeriesKey)
			continue
		}
		if i < len(line) && line[i] >= utf8.RuneSelf {
			high = true
			continue
		}
		if high {
			if !utf8.Valid(line[start:i]) {
				return i, ErrInvalidUTF8
			}
			high = false
		}
		if t := line[start:i]; len(t) > 0 {
			if len(m.Tags) == maxTags {
				return i, ErrTooManyTags
			}
			if len(t) > maxLen {
				return i, ErrTagTooLong
			}
			m.Tags = append(m.Tags, t)
		}
		if i == len(line) || line[i] == '|' {
			return i, nil
		}
		start = i + 1
	}
}

// tagEnd holds the bytes that end a tag; and \x00, which a tag may not hold,
// and the bytes of non-ASCII characters, which must be valid UTF-8: both are
// looked at more closely.
var tagEnd = func() (t [256]bool) {
	t[','], t['|'], t[0] = true, true, true
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	return t
}()

var validName = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['.'], t['_'], t['-'] = true, true, true
	return t
}()

// sanitizeName rewrites b in place as gostatsd does and returns the result.
func sanitizeName(b []byte) []byte {
	i := 0
	for ; i < len(b); i++ {
		if !validName[b[i]] {
			break
		}
	}
	if i == len(b) {
		return b
	}
	out := b[:i]
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case validName[c]:
			out = append(out, c)
		case c == '/':
			out = append(out, '-')
		case c == ' ' || c == '\t':
			out = append(out, '_')
		}
	}
	return out
}

// SanitizeNameInPlace rewrites b in place as Parse rewrites a line's name
// and returns the result (b's prefix).
func SanitizeNameInPlace(b []byte) []byte { return sanitizeName(b) }

// SanitizeName returns s sanitised as metric names are: '/' → '-', space and
// tab → '_', other bytes outside [A-Za-z0-9._-] dropped.
func SanitizeName(s string) string {
	for i := 0; i < len(s); i++ {
		if !validName[s[i]] {
			return string(sanitizeName([]byte(s)))
		}
	}
	return s
}

// parseUnix parses a positive decimal number of seconds of at most 18
// digits, without a sign.
func parseUnix(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n > 0
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses a finite decimal number. Plain decimals of up to 15
// significant digits take an exact fast path (one correctly rounded division);
// anything else goes to strconv. NaN and ±Inf are refused.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	i := 0
	neg := false
	if b[0] == '+' || b[0] == '-' {
		neg = b[0] == '-'
		i = 1
	}
	var mant uint64
	digits, frac := 0, -1 // significant digits; digits after '.' (-1: no '.')
	sawDigit := false
	for ; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			sawDigit = true
			if mant == 0 && c == '0' && frac < 0 {
				continue // leading zero of the integer part
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
			continue
		}
		if c == '.' && frac < 0 {
			frac = 0
			continue
		}
		break
	}
	if i == len(b) && sawDigit && digits <= 15 && frac <= 22 {
		f := float64(mant)
		if frac > 0 {
			f /= pow10[frac]
		}
		if neg {
			f = -f
		}
		return f, true
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
