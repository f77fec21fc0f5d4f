package config

// Prometheus is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type Prometheus struct{}

var prometheusKeys = []key{}

func (c *Config) loadPrometheus(r *reader) {}
