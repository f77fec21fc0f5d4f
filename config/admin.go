package config

// Admin is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type Admin struct{}

var adminKeys = []key{}

func (c *Config) loadAdmin(r *reader) {}
