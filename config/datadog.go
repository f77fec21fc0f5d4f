package config

// Datadog is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type Datadog struct{}

var datadogKeys = []key{}

func (c *Config) loadDatadog(r *reader) {}
