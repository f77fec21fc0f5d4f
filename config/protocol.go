package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/garner-metrics/garner/pkg/receiver"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// Protocol is what the statsd line parser reads: the dialects of the line
// protocol that are on (PROTOCOL.md).
type Protocol struct {
	// DisabledTagFormats are the tag styles tag-formats does not list.
	DisabledTagFormats statsd.TagFormats
	// Timestamps is what a line's DogStatsD |T<unix seconds> does
	// (timestamps: ignore, the default, or honor).
	Timestamps receiver.TimestampMode
	// TimestampMaxAge is the oldest timestamp honored (timestamp-max-age).
	TimestampMaxAge time.Duration
}

var protocolKeys = []key{
	{"tag-formats", kList, strings.Join((statsd.AllTagFormats &^ lineDefaults.DisabledTagFormats).Names(), " "),
		`Tag styles read from statsd lines, space-separated: dogstatsd (name:1|c|#k:v), influxdb (name,k=v:1|c), librato (name#k=v:1|c), signalfx (name[k=v]rest:1|c), graphite (name;k=v:1|c). A style left out is not read: its characters are sanitised out of the name (a |# section is skipped as unknown). A line with tags both in its name and in |# is skipped and counted in garner_receiver_bad_lines_total{reason="mixed_tag_styles"}`, true, nil},
	{"timestamps", kString, lineDefaults.Timestamps.String(),
		`What a DogStatsD timestamp (name:1|c|T<unix seconds>) does: "ignore" (the line is aggregated as received now) or "honor" (a counter or gauge is aggregated into the flush interval its timestamp falls in, the multiples of flush-interval (+ flush-offset) on the wall clock, and one of an interval already flushed is sent at the next flush with that interval's end as its time, to graphite, influxdb, datadog, otlp, stdout and the forwarder; timers and sets ignore it). Counted in garner_receiver_timestamped_lines_total by outcome`, true, nil},
	{"timestamp-max-age", kDuration, lineDefaults.TimestampMaxAge,
		`With timestamps = "honor": the oldest timestamp kept; an older line, or one more than 1m ahead, is skipped and counted in garner_receiver_timestamp_dropped_lines_total{reason="too_old"} (too_new)`, true, toPositive(func(c *Config) any { return &c.Protocol.TimestampMaxAge })},
}

func (c *Config) loadProtocol(r *reader) {
	on, err := statsd.ParseTagFormats(r.list("tag-formats"))
	if err != nil {
		r.fail("tag-formats", err)
	}
	c.Protocol.DisabledTagFormats = statsd.AllTagFormats &^ on
	c.Protocol.Timestamps = receiver.TimestampModes[r.oneOf("timestamps", "ignore", "honor")]
	if c.Protocol.TimestampMaxAge > 24*time.Hour {
		r.fail("timestamp-max-age", fmt.Errorf("must be at most 24h, got %s", c.Protocol.TimestampMaxAge))
	}
}
