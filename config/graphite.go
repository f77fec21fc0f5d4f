package config

import (
	"errors"
	"time"
)

// Graphite is the [graphite] section; keys, defaults and meaning as gostatsd.
type Graphite struct {
	Address       string        // host:port of carbon's plaintext listener
	Mode          string        // tags | basic | legacy
	GlobalPrefix  string        // default "stats"
	PrefixCounter string        // default "counters"
	PrefixTimer   string        // default "timers"
	PrefixGauge   string        // default "gauges"
	PrefixSet     string        // default "sets"
	GlobalSuffix  string        // default ""
	DialTimeout   time.Duration // default 5s
	WriteTimeout  time.Duration // default 30s
	MaxBufferSize int           // bytes of unsent lines kept while carbon is unreachable; the oldest queued data is dropped beyond it
}

var graphiteKeys = []key{
	{"graphite.address", kString, "localhost:2003", "Carbon plaintext listener, host:port (default localhost:2003)", false},
	{"graphite.mode", kString, "tags", "Naming: tags (;k=v tags), basic (no tags), legacy (stats_counts.<name>)", false},
	{"graphite.global_prefix", kString, "stats", "First name component", false},
	{"graphite.prefix_counter", kString, "counters", "Name component for counters", false},
	{"graphite.prefix_timer", kString, "timers", "Name component for timers", false},
	{"graphite.prefix_gauge", kString, "gauges", "Name component for gauges", false},
	{"graphite.prefix_set", kString, "sets", "Name component for sets", false},
	{"graphite.global_suffix", kString, "", "Last name component (before tags)", false},
	{"graphite.dial_timeout", kDuration, 5 * time.Second, "TCP connect timeout (default 5s); carbon is dialled at most once per flush", false},
	{"graphite.write_timeout", kDuration, 30 * time.Second, "Timeout of one flush's writes (default 30s; also bounded by backend-timeout); 0 = none", false},
	{"graphite.max_buffer_size", kSize, "64MiB", "Unsent data kept while carbon is unreachable or slow, in bytes (default 64MiB); beyond it the oldest queued data is dropped and counted in garner_graphite_dropped_bytes_total", false},
}

func (c *Config) loadGraphite(r *reader) {
	g := &c.Graphite
	g.Address = r.str("graphite.address")
	g.Mode = r.oneOf("graphite.mode", "tags", "basic", "legacy")
	g.GlobalPrefix = r.str("graphite.global_prefix")
	g.PrefixCounter = r.str("graphite.prefix_counter")
	g.PrefixTimer = r.str("graphite.prefix_timer")
	g.PrefixGauge = r.str("graphite.prefix_gauge")
	g.PrefixSet = r.str("graphite.prefix_set")
	g.GlobalSuffix = r.str("graphite.global_suffix")
	g.DialTimeout = r.positiveDuration("graphite.dial_timeout")
	g.WriteTimeout = r.duration("graphite.write_timeout")
	g.MaxBufferSize = r.size("graphite.max_buffer_size")
	if contains(c.Backends, "graphite") && g.Address == "" {
		r.fail("graphite.address", errors.New("required when the graphite backend is enabled"))
	}
}
