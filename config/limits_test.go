package config

import (
	"errors"
	"testing"

	"github.com/garner-metrics/garner/pkg/statsd"
)

func TestInputBoundDefaults(t *testing.T) {
	c := Default()
	want := statsd.Limits{Tags: statsd.MaxTags, TagLength: statsd.MaxTagLength, Values: statsd.MaxValues}
	if c.LineLimits != want {
		t.Errorf("LineLimits = %+v, want %+v (the parser's defaults)", c.LineLimits, want)
	}
	if c.MaxEventLength != 16<<10 || c.MaxEventQueueSize != 4096 {
		t.Errorf("MaxEventLength = %d, MaxEventQueueSize = %d; want 16384, 4096", c.MaxEventLength, c.MaxEventQueueSize)
	}
}

func TestInputBounds(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*Config) bool
		wantKey string // "" = loads
	}{
		{"flags", []string{"--max-tags-per-line=10", "--max-tag-length=1KiB", "--max-packed-values=64", "--max-event-length=2KiB", "--max-event-queue-size=100"}, nil,
			func(c *Config) bool {
				return c.LineLimits == statsd.Limits{Tags: 10, TagLength: 1024, Values: 64} && c.MaxEventLength == 2048 && c.MaxEventQueueSize == 100
			}, ""},
		{"environment", nil, map[string]string{"GARNER_MAX_TAG_LENGTH": "200", "GARNER_MAX_EVENT_QUEUE_SIZE": "7"},
			func(c *Config) bool { return c.LineLimits.TagLength == 200 && c.MaxEventQueueSize == 7 }, ""},
		{"zero tags", []string{"--max-tags-per-line=0"}, nil, nil, "max-tags-per-line"},
		{"negative values", []string{"--max-packed-values=-1"}, nil, nil, "max-packed-values"},
		{"zero tag length", []string{"--max-tag-length=0"}, nil, nil, "max-tag-length"},
		{"tag length not a size", []string{"--max-tag-length=lots"}, nil, nil, "max-tag-length"},
		{"zero event length", []string{"--max-event-length=0KiB"}, nil, nil, "max-event-length"},
		{"event queue not a number", []string{"--max-event-queue-size=many"}, nil, nil, "max-event-queue-size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load(tc.args)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !tc.check(c) {
					t.Fatalf("got LineLimits %+v, MaxEventLength %d, MaxEventQueueSize %d", c.LineLimits, c.MaxEventLength, c.MaxEventQueueSize)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.wantKey {
				t.Fatalf("Load = %v, want an error naming %q", err, tc.wantKey)
			}
		})
	}
}
