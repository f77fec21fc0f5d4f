package config

// Statsdaemon is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type Statsdaemon struct{}

var statsdaemonKeys = []key{}

func (c *Config) loadStatsdaemon(r *reader) {}
