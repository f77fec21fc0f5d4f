package config

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Statsdaemon is the [statsdaemon] section: the statsd server the
// statsdaemon backend repeats aggregates to. Keys and defaults as gostatsd.
type Statsdaemon struct {
	Address      string        // host:port of the statsd server; required with the backend
	TCPTransport bool          // newline-terminated lines over TCP instead of UDP datagrams
	DisableTags  bool          // leave out |#tags
	DialTimeout  time.Duration // default 5s
	WriteTimeout time.Duration // bound on one flush's writes; default 30s; 0 = none
}

var statsdaemonKeys = []key{
	{"statsdaemon.address", kString, "", "host:port of the statsd server to repeat aggregates to; required with the statsdaemon backend", false},
	{"statsdaemon.tcp_transport", kBool, false, "Send over TCP (newline-terminated lines) instead of UDP datagrams of at most 1432 bytes", false},
	{"statsdaemon.disable_tags", kBool, false, "Send no |#tags (for statsd servers without DogStatsD tags)", false},
	{"statsdaemon.dial_timeout", kDuration, 5 * time.Second, "Connect timeout (and the health check's)", false},
	{"statsdaemon.write_timeout", kDuration, 30 * time.Second, "Bound on writing one flush; 0 = only the backend-timeout", false},
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
	if s.Address != "" {
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			r.fail("statsdaemon.address", fmt.Errorf("%q is not host:port: %w", s.Address, err))
		}
	} else if contains(c.Backends, "statsdaemon") {
		r.fail("statsdaemon.address", errors.New("required when the statsdaemon backend is enabled"))
	}
}
