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

var statsdaemonKeys = statsdaemonKeyTable(statsdaemon.DefaultOptions())

// statsdaemonKeyTable declares the [statsdaemon] keys with defaults d.
func statsdaemonKeyTable(d Statsdaemon) []key {
	return []key{
		{"statsdaemon.address", kString, d.Address, "host:port of the statsd server to repeat aggregates to; required with the statsdaemon backend", false},
		{"statsdaemon.tcp_transport", kBool, d.TCPTransport, "Send over TCP (newline-terminated lines) instead of UDP datagrams of at most 1432 bytes", false},
		{"statsdaemon.disable_tags", kBool, d.DisableTags, "Send no |#tags (for statsd servers without DogStatsD tags)", false},
		{"statsdaemon.dial_timeout", kDuration, d.DialTimeout, "Connect timeout (and the health check's)", false},
		{"statsdaemon.write_timeout", kDuration, d.WriteTimeout, "Bound on writing one flush; 0 = only the backend-timeout", false},
	}
}

func (c *Config) loadStatsdaemon(r *reader) {
	s := &c.Statsdaemon
	s.Address = r.str("statsdaemon.address")
	s.TCPTransport = r.bool("statsdaemon.tcp_transport")
	s.DisableTags = r.bool("statsdaemon.disable_tags")
	s.DialTimeout = r.positiveDuration("statsdaemon.dial_timeout")
	s.WriteTimeout = r.duration("statsdaemon.write_timeout")
	if s.WriteTimeout < 0 {
		r.fail("statsdaemon.write_timeout", fmt.Errorf("must not be negative, got %s", s.WriteTimeout))
	}
	switch {
	case s.Address != "":
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			r.fail("statsdaemon.address", fmt.Errorf("%q is not host:port: %w", s.Address, err))
		}
	case contains(c.Backends, "statsdaemon"):
		r.fail("statsdaemon.address", errors.New("required when the statsdaemon backend is enabled"))
	}
}
