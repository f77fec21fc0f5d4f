package config

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// docDefaults are defaults that depend on the machine or on another key;
// the example file shows them in words.
var docDefaults = map[string]string{
	"max-readers":             `2 # min(8, number of CPUs)`,
	"max-workers":             `2 # number of CPUs`,
	"hostname":                `"" # os.Hostname()`,
	"expiry-interval-counter": `"5m" # expiry-interval`,
	"expiry-interval-gauge":   `"5m" # expiry-interval`,
	"expiry-interval-set":     `"5m" # expiry-interval`,
	"expiry-interval-timer":   `"5m" # expiry-interval`,
	// gostatsd's names: the garner key's default (set one of the two).
	"receive-buffer-size":               strconv.Quote(sizeDefault(udpDefaults.DatagramSize)) + ` # max-datagram-size`,
	"timer-histogram-limit":             strconv.Itoa(aggDefaults.HistogramLimit) + ` # histogram-limit`,
	"fast-fail-on-non-retryable-errors": `false # http-transport.fast-fail-on-non-retryable-errors`,
}

// WriteExample writes the example config file: every key, commented out,
// with its help and default, grouped by section. config/garner.example.toml
// is this output (TestExample keeps it so).
func WriteExample(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# garner example configuration: every key, with its default.
#
# Generated from the key tables in config/ (go test ./config -run TestExample -update);
# do not edit by hand. Uncomment what you change. Precedence: flag > environment
# (GARNER_ + key upper-cased, '-' and '.' as '_', e.g. GARNER_FLUSH_INTERVAL,
# GARNER_GRAPHITE_ADDRESS) > this file (--config-path; TOML, YAML or JSON) > default.
# Durations are Go durations ("10s", "5m"); sizes are bytes or "8MiB"; lists are
# space-separated strings ("graphite stdout") or arrays.
`)
	section := ""
	// Top-level keys first, whichever table declares them: in TOML a key
	// after a [section] header belongs to that section.
	// Then each section's keys together, in the order the sections first
	// appear, whichever table declares them (a TOML table is declared once).
	keys := allKeys()
	rank := map[string]int{}
	sectionOf := func(name string) string {
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			return name[:i]
		}
		return ""
	}
	for _, k := range keys {
		if _, ok := rank[sectionOf(k.name)]; !ok {
			rank[sectionOf(k.name)] = len(rank) + 1
		}
	}
	rank[""] = 0
	sort.SliceStable(keys, func(i, j int) bool {
		return rank[sectionOf(keys[i].name)] < rank[sectionOf(keys[j].name)]
	})
	for _, k := range keys {
		sec, name := "", k.name
		if i := strings.LastIndexByte(k.name, '.'); i >= 0 {
			sec, name = k.name[:i], k.name[i+1:]
		}
		if sec != section {
			section = sec
			fmt.Fprintf(&b, "\n#[%s]\n", strings.ReplaceAll(sec, "*", "<name>"))
		}
		b.WriteString("\n")
		for _, line := range strings.Split(k.usage, "\n") {
			fmt.Fprintf(&b, "# %s\n", line)
		}
		val, ok := docDefaults[k.name]
		if !ok {
			val = tomlValue(k)
		}
		if name == "*" {
			name = "<Header-Name>"
		}
		fmt.Fprintf(&b, "#%s = %s\n", name, val)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func tomlValue(k key) string {
	switch d := k.def.(type) {
	case nil:
		if k.kind == kBool {
			return "false"
		}
		return `""`
	case string:
		return strconv.Quote(d)
	case bool:
		return strconv.FormatBool(d)
	case int:
		return strconv.Itoa(d)
	case float64:
		return strconv.FormatFloat(d, 'f', -1, 64)
	case time.Duration:
		if d == 0 {
			return `"0s"`
		}
		return strconv.Quote(shortDuration(d))
	case []string:
		q := make([]string, len(d))
		for i, s := range d {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return strconv.Quote(fmt.Sprint(k.def))
}

// shortDuration writes 5m instead of 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
