package config

// InfluxDB is the configuration of this area. (Stub: filled in by the issue that
// builds it.)
type InfluxDB struct{}

var influxdbKeys = []key{}

func (c *Config) loadInfluxDB(r *reader) {}
