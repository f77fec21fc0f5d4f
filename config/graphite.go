package config

import (
	"errors"

	"github.com/garner-metrics/garner/backends/graphite"
)

// Graphite is the [graphite] section: the graphite backend's options, with
// their defaults from graphite.DefaultOptions().
type Graphite = graphite.Options

var graphiteDefaults = graphite.DefaultOptions()

var graphiteKeys = []key{
	{"graphite.address", kString, graphiteDefaults.Address, "Carbon plaintext listener, host:port", false},
	{"graphite.mode", kString, graphiteDefaults.Mode, "Naming: tags (;k=v tags), basic (no tags), legacy (stats_counts.<name>)", false},
	{"graphite.global_prefix", kString, graphiteDefaults.GlobalPrefix, "First name component", false},
	{"graphite.prefix_counter", kString, graphiteDefaults.PrefixCounter, "Name component for counters", false},
	{"graphite.prefix_timer", kString, graphiteDefaults.PrefixTimer, "Name component for timers", false},
	{"graphite.prefix_gauge", kString, graphiteDefaults.PrefixGauge, "Name component for gauges", false},
	{"graphite.prefix_set", kString, graphiteDefaults.PrefixSet, "Name component for sets", false},
	{"graphite.global_suffix", kString, graphiteDefaults.GlobalSuffix, "Last name component (before tags)", false},
	{"graphite.dial_timeout", kDuration, graphiteDefaults.DialTimeout, "TCP connect timeout; carbon is dialled at most once per flush", false},
	{"graphite.write_timeout", kDuration, graphiteDefaults.WriteTimeout, "Timeout of one flush's writes (also bounded by backend-timeout); 0 = none", false},
	{"graphite.max_buffer_size", kSize, sizeDefault(graphiteDefaults.MaxBufferSize), "Unsent data kept while carbon is unreachable or slow, in bytes; beyond it the oldest queued data is dropped and counted in garner_graphite_dropped_bytes_total", false},
	{"graphite.write_buffer", kSize, sizeDefault(graphiteDefaults.WriteBuffer), "Socket send buffer (SO_SNDBUF) of the connection to carbon, in bytes; 0 = the kernel's (autotuned)", false},
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
	g.WriteBuffer = r.size("graphite.write_buffer")
	if missing := c.requiredWith(graphite.Name); missing != "" && g.Address == "" {
		r.fail("graphite.address", errors.New(missing))
	}
}
