package config

import (
	"errors"
	"fmt"
	"net"

	"github.com/garner-metrics/garner/backends/statsdaemon"
)

// Statsdaemon is the [statsdaemon] section: the statsdaemon backend's
// options, with their defaults from statsdaemon.DefaultOptions().
type Statsdaemon = statsdaemon.Options

var statsdaemonDefaults = statsdaemon.DefaultOptions()

var statsdaemonKeys = []key{
	{"statsdaemon.address", kString, statsdaemonDefaults.Address, "host:port of the statsd server to repeat aggregates to; required with the statsdaemon backend", false, to(func(c *Config) any { return &c.Statsdaemon.Address })},
	{"statsdaemon.tcp_transport", kBool, statsdaemonDefaults.TCPTransport, "Send over TCP (newline-terminated lines) instead of UDP datagrams of at most 1432 bytes", false, to(func(c *Config) any { return &c.Statsdaemon.TCPTransport })},
	{"statsdaemon.disable_tags", kBool, statsdaemonDefaults.DisableTags, "Send no |#tags (for statsd servers without DogStatsD tags)", false, to(func(c *Config) any { return &c.Statsdaemon.DisableTags })},
	{"statsdaemon.dial_timeout", kDuration, statsdaemonDefaults.DialTimeout, "Connect timeout (and the health check's)", false, toPositive(func(c *Config) any { return &c.Statsdaemon.DialTimeout })},
	{"statsdaemon.write_timeout", kDuration, statsdaemonDefaults.WriteTimeout, "Bound on writing one flush; 0 = only the backend-timeout", false, toNonNegative(func(c *Config) any { return &c.Statsdaemon.WriteTimeout })},
}

func (c *Config) loadStatsdaemon(r *reader) {
	s := &c.Statsdaemon
	if missing := c.requiredWith(statsdaemon.Name); missing != "" && s.Address == "" {
		r.fail("statsdaemon.address", errors.New(missing))
	} else if _, _, err := net.SplitHostPort(s.Address); s.Address != "" && err != nil {
		r.fail("statsdaemon.address", fmt.Errorf("%q is not host:port: %w", s.Address, err))
	}
}
