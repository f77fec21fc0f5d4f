package config

// Filters is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type Filters struct{}

var filterKeys = []key{}

func (c *Config) loadFilters(r *reader) {}
