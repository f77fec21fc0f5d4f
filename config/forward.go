package config

// Forward is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type Forward struct{}

var forwardKeys = []key{}

func (c *Config) loadForward(r *reader) {}
