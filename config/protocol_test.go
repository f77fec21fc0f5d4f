package config

import (
	"errors"
	"testing"

	"github.com/garner-metrics/garner/pkg/statsd"
)

func TestTagFormats(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    statsd.TagFormats // disabled
		wantKey string            // "" = loads
	}{
		{"default: every style", nil, nil, 0, ""},
		{"flag", []string{"--tag-formats=dogstatsd,influxdb"}, nil, statsd.TagLibrato | statsd.TagSignalFx | statsd.TagGraphite, ""},
		{"environment", nil, map[string]string{"GARNER_TAG_FORMATS": "graphite dogstatsd"}, statsd.TagInfluxDB | statsd.TagLibrato | statsd.TagSignalFx, ""},
		{"none", []string{"--tag-formats="}, nil, statsd.AllTagFormats, ""},
		{"unknown style", []string{"--tag-formats=dogstatsd,prometheus"}, nil, 0, "tag-formats"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load(tc.args)
			if tc.wantKey != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Key != tc.wantKey {
					t.Fatalf("Load = %v, want an error naming %q", err, tc.wantKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Protocol.DisabledTagFormats != tc.want {
				t.Fatalf("DisabledTagFormats = %v, want %v", c.Protocol.DisabledTagFormats.Names(), tc.want.Names())
			}
		})
	}
}
