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
	{"graphite.address", kString, graphiteDefaults.Address, "Carbon plaintext listener, host:port", false, to(func(c *Config) any { return &c.Graphite.Address })},
	{"graphite.mode", kString, graphiteDefaults.Mode, "Naming: tags (;k=v tags), basic (no tags), legacy (stats_counts.<name>)", false, nil},
	{"graphite.global_prefix", kString, graphiteDefaults.GlobalPrefix, "First name component", false, to(func(c *Config) any { return &c.Graphite.GlobalPrefix })},
	{"graphite.prefix_counter", kString, graphiteDefaults.PrefixCounter, "Name component for counters", false, to(func(c *Config) any { return &c.Graphite.PrefixCounter })},
	{"graphite.prefix_timer", kString, graphiteDefaults.PrefixTimer, "Name component for timers", false, to(func(c *Config) any { return &c.Graphite.PrefixTimer })},
	{"graphite.prefix_gauge", kString, graphiteDefaults.PrefixGauge, "Name component for gauges", false, to(func(c *Config) any { return &c.Graphite.PrefixGauge })},
	{"graphite.prefix_set", kString, graphiteDefaults.PrefixSet, "Name component for sets", false, to(func(c *Config) any { return &c.Graphite.PrefixSet })},
	{"graphite.global_suffix", kString, graphiteDefaults.GlobalSuffix, "Last name component (before tags)", false, to(func(c *Config) any { return &c.Graphite.GlobalSuffix })},
	{"graphite.dial_timeout", kDuration, graphiteDefaults.DialTimeout, "TCP connect timeout; carbon is dialled at most once per flush", false, toPositive(func(c *Config) any { return &c.Graphite.DialTimeout })},
	{"graphite.write_timeout", kDuration, graphiteDefaults.WriteTimeout, "Timeout of one flush's writes (also bounded by backend-timeout); 0 = none", false, to(func(c *Config) any { return &c.Graphite.WriteTimeout })},
	{"graphite.max_buffer_size", kSize, sizeDefault(graphiteDefaults.MaxBufferSize), "Unsent data kept while carbon is unreachable or slow, in bytes; beyond it the oldest queued data is dropped and counted in garner_graphite_dropped_bytes_total", false, to(func(c *Config) any { return &c.Graphite.MaxBufferSize })},
	{"graphite.write_buffer", kSize, sizeDefault(graphiteDefaults.WriteBuffer), "Socket send buffer (SO_SNDBUF) of the connection to carbon, in bytes; 0 = the kernel's (autotuned)", false, to(func(c *Config) any { return &c.Graphite.WriteBuffer })},
}

func (c *Config) loadGraphite(r *reader) {
	g := &c.Graphite
	g.Mode = r.oneOf("graphite.mode", "tags", "basic", "legacy")
	if missing := c.requiredWith(graphite.Name); missing != "" && g.Address == "" {
		r.fail("graphite.address", errors.New(missing))
	}
}
