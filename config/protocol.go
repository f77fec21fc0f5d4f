package config

import (
	"strings"

	"github.com/garner-metrics/garner/pkg/statsd"
)

// Protocol is what the statsd line parser reads: the dialects of the line
// protocol that are on (PROTOCOL.md).
type Protocol struct {
	// DisabledTagFormats are the tag styles tag-formats does not list.
	DisabledTagFormats statsd.TagFormats
}

var protocolKeys = []key{
	{"tag-formats", kList, strings.Join((statsd.AllTagFormats &^ lineDefaults.DisabledTagFormats).Names(), " "),
		`Tag styles read from statsd lines, space-separated: dogstatsd (name:1|c|#k:v), influxdb (name,k=v:1|c), librato (name#k=v:1|c), signalfx (name[k=v]rest:1|c), graphite (name;k=v:1|c). A style left out is not read: its characters are sanitised out of the name (a |# section is skipped as unknown). A line with tags both in its name and in |# is skipped and counted in garner_receiver_bad_lines_total{reason="mixed_tag_styles"}`, true},
}

func (c *Config) loadProtocol(r *reader) {
	on, err := statsd.ParseTagFormats(r.list("tag-formats"))
	if err != nil {
		r.fail("tag-formats", err)
	}
	c.Protocol.DisabledTagFormats = statsd.AllTagFormats &^ on
}
