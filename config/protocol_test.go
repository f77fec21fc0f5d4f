package config

import (
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// loadCase loads args with env set: the Config, or nil once the error
// names wantKey ("" = Load must succeed).
func loadCase(t *testing.T, args []string, env map[string]string, wantKey string) *Config {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := Load(args)
	if wantKey != "" {
		requireKeyError(t, err, wantKey)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

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
			c := loadCase(t, tc.args, tc.env, tc.wantKey)
			if c == nil {
				return
			}
			if c.Protocol.DisabledTagFormats != tc.want {
				t.Fatalf("DisabledTagFormats = %v, want %v", c.Protocol.DisabledTagFormats.Names(), tc.want.Names())
			}
		})
	}
}

func TestTimestamps(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		mode    receiver.TimestampMode
		maxAge  time.Duration
		wantKey string // "" = loads
	}{
		{"default: ignore, 10m", nil, nil, receiver.TimestampsIgnore, 10 * time.Minute, ""},
		{"flag", []string{"--timestamps=honor", "--timestamp-max-age=1h"}, nil, receiver.TimestampsHonor, time.Hour, ""},
		{"environment", nil, map[string]string{"GARNER_TIMESTAMPS": "honor", "GARNER_TIMESTAMP_MAX_AGE": "30s"}, receiver.TimestampsHonor, 30 * time.Second, ""},
		{"unknown mode", []string{"--timestamps=trust"}, nil, 0, 0, "timestamps"},
		{"zero max age", []string{"--timestamp-max-age=0s"}, nil, 0, 0, "timestamp-max-age"},
		{"max age over a day", []string{"--timestamp-max-age=25h"}, nil, 0, 0, "timestamp-max-age"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCase(t, tc.args, tc.env, tc.wantKey)
			if c == nil {
				return
			}
			if c.Protocol.Timestamps != tc.mode || c.Protocol.TimestampMaxAge != tc.maxAge {
				t.Fatalf("timestamps %v, max age %v; want %v, %v", c.Protocol.Timestamps, c.Protocol.TimestampMaxAge, tc.mode, tc.maxAge)
			}
		})
	}
}
