package config

// OTLP is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type OTLP struct{}

var otlpKeys = []key{}

func (c *Config) loadOTLP(r *reader) {}
