package config

import (
	"reflect"
	"testing"

	"github.com/garner-metrics/garner/backends/datadog"
	"github.com/garner-metrics/garner/backends/influxdb"
	"github.com/garner-metrics/garner/backends/otlp"
	"github.com/garner-metrics/garner/backends/prometheus"
	"github.com/garner-metrics/garner/pkg/health"
	"github.com/garner-metrics/garner/pkg/web"
)

// TestDefaultsAreTheComponents: with no key set, every section maps to its
// component's DefaultOptions, so a default exists once, in the component.
func TestDefaultsAreTheComponents(t *testing.T) {
	c := Default()
	prom := c.Prometheus
	if len(prom.Headers) == 0 {
		prom.Headers = nil
	}
	o := c.OTLP
	if len(o.ResourceKeys) == 0 {
		o.ResourceKeys = nil
	}
	for _, tc := range []struct {
		section   string
		got, want any
	}{
		{"influxdb", c.InfluxDB, influxdb.DefaultOptions()},
		{"datadog", c.Datadog, datadog.DefaultOptions()},
		{"prometheus", prom, prometheus.DefaultOptions()},
		{"otlp", o, otlp.DefaultOptions()},
		{"dependency-*", c.Admin.Health, health.DefaultOptions()},
		{"health-base-path", c.Admin.HealthBasePath, web.DefaultOptions().BasePath},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s defaults:\n got %+v\nwant %+v", tc.section, tc.got, tc.want)
		}
	}
}
