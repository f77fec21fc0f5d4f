package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// reader converts viper's untyped values strictly: a value that does not parse
// records an *Error for its key instead of silently becoming a zero.
//
// Every accessor also notes the key's effective value in values, as a
// canonical string ("10s" and "10000ms" both note "10s"), so that two loads
// can be compared key by key (ChangedKeys). When an accessor calls another
// for the same key, the outer one notes last and wins.
type reader struct {
	v      *viper.Viper
	err    error
	values map[string]string
}

func (r *reader) note(key, value string) {
	if r.values == nil {
		r.values = map[string]string{}
	}
	r.values[key] = value
}

func (r *reader) fail(key string, err error) {
	if r.err == nil {
		r.err = &Error{Key: key, Err: err}
	}
}

func (r *reader) str(key string) (s string) {
	defer func() { r.note(key, s) }()
	switch x := r.v.Get(key).(type) {
	case nil:
		return ""
	case string:
		return x
	case []any, map[string]any:
		r.fail(key, fmt.Errorf("want a string, got %v", x))
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func (r *reader) oneOf(key string, allowed ...string) string {
	s := strings.ToLower(r.str(key))
	r.note(key, s)
	if !contains(allowed, s) {
		r.fail(key, fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", ")))
	}
	return s
}

func (r *reader) bool(key string) (b bool) {
	defer func() { r.note(key, strconv.FormatBool(b)) }()
	switch x := r.v.Get(key).(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return parseString(r, key, x, strconv.ParseBool, "a boolean (true or false)")
	default:
		r.fail(key, fmt.Errorf("%v is not a boolean (true or false)", x))
		return false
	}
}

// parseString parses x, a key's value given as a string, with parse (white
// space trimmed), failing key with "<x> is not <what>" when it does not parse.
func parseString[T any](r *reader, key, x string, parse func(string) (T, error), what string) T {
	v, err := parse(strings.TrimSpace(x))
	if err != nil {
		r.fail(key, fmt.Errorf("%q is not %s", x, what))
	}
	return v
}

// parseNumber is strconv.ParseFloat refusing NaN.
func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && f != f {
		err = errors.New("NaN")
	}
	return f, err
}

func (r *reader) int(key string) (n int) {
	defer func() { r.note(key, strconv.Itoa(n)) }()
	switch x := r.v.Get(key).(type) {
	case nil:
		return 0
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		if x != float64(int(x)) {
			r.fail(key, fmt.Errorf("%v is not a whole number", x))
		}
		return int(x)
	case string:
		return parseString(r, key, x, strconv.Atoi, "a whole number")
	default:
		r.fail(key, fmt.Errorf("%v is not a whole number", x))
		return 0
	}
}

// readInto reads plain key k into its field and checks its sign.
func (r *reader) readInto(c *Config, k key) {
	switch p := k.to.field(c).(type) {
	case *string:
		*p = r.str(k.name)
	case *bool:
		*p = r.bool(k.name)
	case *float64:
		*p = r.float(k.name)
	case *[]string:
		*p = r.list(k.name)
	case *[]float64:
		*p = r.floatList(k.name)
	case *time.Duration:
		*p = checkSign(r, k, r.duration(k.name), "must be a positive duration, got %s")
	case *int:
		*p = r.intOfKind(k)
	case *int64:
		*p = int64(r.intOfKind(k))
	default:
		panic(fmt.Sprintf("config: key %q has a field of type %T", k.name, p)) // a bug in this package
	}
}

// intOfKind reads a plain integer key, a count or a size.
func (r *reader) intOfKind(k key) int {
	if k.kind == kSize {
		return checkSign(r, k, r.size(k.name), "must be at least 1 byte, got %d")
	}
	return checkSign(r, k, r.int(k.name), "must be at least 1, got %d")
}

// checkSign checks plain key k's value v for its sign; positiveMsg is what
// a value that should be positive fails with.
func checkSign[T int | time.Duration](r *reader, k key, v T, positiveMsg string) T {
	switch k.to.sign {
	case positiveSign:
		return positive(r, k.name, v, positiveMsg)
	case nonNegativeSign:
		if v < 0 {
			r.fail(k.name, fmt.Errorf("must not be negative, got %v", v))
		}
	}
	return v
}

func (r *reader) positiveInt(key string) int {
	return positive(r, key, r.int(key), "must be at least 1, got %d")
}

// positive fails key with msg (formatted with v) unless v > 0.
func positive[T int | time.Duration](r *reader, key string, v T, msg string) T {
	if v <= 0 {
		r.fail(key, fmt.Errorf(msg, v))
	}
	return v
}

func (r *reader) float(key string) (f float64) {
	defer func() { r.note(key, strconv.FormatFloat(f, 'g', -1, 64)) }()
	switch x := r.v.Get(key).(type) {
	case nil:
		return 0
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case float64:
		return x
	case string:
		return parseString(r, key, x, parseNumber, "a number")
	default:
		r.fail(key, fmt.Errorf("%v is not a number", x))
		return 0
	}
}

// duration accepts Go durations ("10s", "1m30s"); "0" is zero. A bare number
// is refused: "10" could mean seconds or milliseconds.
func (r *reader) duration(key string) (d time.Duration) {
	defer func() { r.note(key, d.String()) }()
	switch x := r.v.Get(key).(type) {
	case nil:
		return 0
	case time.Duration:
		return x
	case string:
		s := strings.TrimSpace(x)
		if s == "0" || s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			r.fail(key, fmt.Errorf("%q is not a duration (write it with a unit, e.g. \"10s\", \"500ms\", \"5m\")", x))
		}
		return d
	case int, int64, float64:
		if fmt.Sprint(x) == "0" {
			return 0
		}
		r.fail(key, fmt.Errorf("%v has no unit: write a duration such as \"%vs\"", x, x))
		return 0
	default:
		r.fail(key, fmt.Errorf("%v is not a duration", x))
		return 0
	}
}

func (r *reader) durationOr(key string, def time.Duration) (d time.Duration) {
	defer func() { r.note(key, d.String()) }()
	if !r.v.IsSet(key) {
		return def
	}
	return r.duration(key)
}

// strOr is str for a key of a dynamic section, whose default viper does not
// know: def when the key is not set.
func (r *reader) strOr(key, def string) string {
	if !r.v.IsSet(key) {
		r.note(key, def)
		return def
	}
	return r.str(key)
}

// boolOr is bool for a key of a dynamic section: def when the key is not set.
func (r *reader) boolOr(key string, def bool) bool {
	if !r.v.IsSet(key) {
		r.note(key, strconv.FormatBool(def))
		return def
	}
	return r.bool(key)
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMG]i?B?|B)?$`)

// size accepts a byte count: 8388608, "8MiB", "512KiB", "1GB" (powers of 1024
// either way: socket buffers and limits are not sold by the kilo).
func (r *reader) size(key string) (n int) {
	defer func() { r.note(key, strconv.Itoa(n)) }()
	switch x := r.v.Get(key).(type) {
	case int, int64, float64:
		return r.int(key)
	case string:
		m := sizeRE.FindStringSubmatch(strings.TrimSpace(x))
		if m == nil {
			r.fail(key, fmt.Errorf("%q is not a size (e.g. 8388608, \"8MiB\", \"512KiB\")", x))
			return 0
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			r.fail(key, fmt.Errorf("%q is not a size: %w", x, err))
		}
		switch strings.ToUpper(m[2])[:min(1, len(m[2]))] {
		case "K":
			n <<= 10
		case "M":
			n <<= 20
		case "G":
			n <<= 30
		}
		return n
	case nil:
		return 0
	default:
		r.fail(key, fmt.Errorf("%v is not a size", x))
		return 0
	}
}

// list accepts a TOML/YAML/JSON array or a string of items separated by spaces
// or commas (gostatsd writes "graphite stdout").
func (r *reader) list(key string) (out []string) {
	defer func() { r.note(key, fmt.Sprintf("%q", out)) }()
	var items []string
	switch x := r.v.Get(key).(type) {
	case nil:
	case string:
		items = strings.FieldsFunc(x, func(c rune) bool { return c == ' ' || c == ',' || c == '\t' || c == '\n' })
	case []string:
		items = x
	case int, int64, float64: // percent-threshold = 90
		items = []string{fmt.Sprint(x)}
	case []any:
		for _, e := range x {
			items = append(items, strings.TrimSpace(fmt.Sprint(e)))
		}
	default:
		r.fail(key, fmt.Errorf("%v is not a list", x))
	}
	out = items[:0:0]
	for _, s := range items {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *reader) floatList(key string) []float64 {
	var out []float64
	for _, s := range r.list(key) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			r.fail(key, fmt.Errorf("%q is not a number", s))
			continue
		}
		out = append(out, f)
	}
	return out
}
