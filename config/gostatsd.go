package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// gostatsd's top-level parameters (its defaults_and_params.go and
// cmd/gostatsd) that garner does not read under a key of its own. Every
// one is accepted in a file, as a flag and as a GARNER_ variable: the keys
// of gostatsdKeys are implemented (another name for a garner key), those of
// ignoredKeys log one warning that says why garner ignores them, and
// cloud-provider stops the start unless it is empty.

// gostatsdKeys are gostatsd's names for garner keys; loadGostatsd maps them.
var gostatsdKeys = []key{
	{"receive-buffer-size", kSize, nil, "gostatsd's name for max-datagram-size (the read buffer of one datagram); set one of the two", true, nil},
	{"timer-histogram-limit", kInt, nil, "gostatsd's name for histogram-limit; set one of the two", true, nil},
	{"fast-fail-on-non-retryable-errors", kBool, nil, "gostatsd's top-level name for http-transport.fast-fail-on-non-retryable-errors; set one of the two", true, nil},
	{"cloud-provider", kString, "", "gostatsd's cloud provider lookup of each sender's metadata: garner has none, and refuses to start unless this is empty (the source stays the sender's IP, or the host: tag with ignore-host)", true, nil},
}

// ignoredKey is a gostatsd key garner accepts and ignores on purpose.
type ignoredKey struct {
	name string
	bool bool   // a boolean flag (--heartbeat-enabled without a value)
	why  string // the warning's reason
}

const noCloud = "garner has no cloud provider lookups (cloud-provider)"

var ignoredKeys = []ignoredKey{
	{"max-cloud-requests", false, noCloud},
	{"burst-cloud-requests", false, noCloud},
	{"cloud-cache-refresh-period", false, noCloud},
	{"cloud-cache-evict-after-idle-period", false, noCloud},
	{"cloud-cache-ttl", false, noCloud},
	{"cloud-cache-negative-ttl", false, noCloud},
	{"max-parsers", false, "garner parses on the reading goroutines (max-readers); there is no parser pool"},
	{"max-concurrent-events", false, "garner delivers events from one bounded queue (max-event-queue-size)"},
	{"estimated-tags", false, "it is an allocation hint garner's parser does not need"},
	{"conn-per-reader", true, "garner always binds one SO_REUSEPORT socket per reader (max-readers)"},
	{"heartbeat-enabled", true, "garner sends no heartbeat metric: watch garner_build_info or the health endpoints (health-base-path) instead"},
	{"log-raw-metric", true, "garner does not print each received metric: use the stdout backend to see what it aggregates"},
	{"disable-internal-events", true, "garner sends no internal events"},
	{"profile", false, "garner serves pprof on admin-addr with enable-prof"},
	{"lambda-extension-manual-flush", true, "garner does not run as an AWS Lambda extension"},
	{"lambda-extension-telemetry-address", false, "garner does not run as an AWS Lambda extension"},
}

func ignoredKeyNamed(name string) (ignoredKey, bool) {
	for _, k := range ignoredKeys {
		if k.name == name {
			return k, true
		}
	}
	return ignoredKey{}, false
}

// addIgnoredFlags registers a hidden flag per ignored key, so that a
// gostatsd command line starts garner.
func addIgnoredFlags(fs *pflag.FlagSet) {
	for _, k := range ignoredKeys {
		usage := "gostatsd's; ignored: " + k.why
		if k.bool {
			fs.Bool(k.name, false, usage)
		} else {
			fs.String(k.name, "", usage)
		}
		_ = fs.MarkHidden(k.name)
	}
}

// ignoredWarnings returns one warning per ignored key set by a flag, a
// GARNER_ variable or the file (fileKeys), in the order of ignoredKeys.
func ignoredWarnings(fs *pflag.FlagSet, fileKeys []string) []string {
	var out []string
	for _, k := range ignoredKeys {
		var from string
		switch _, env := os.LookupEnv(envName(k.name)); {
		case fs.Changed(k.name):
			from = "flag --" + k.name
		case env:
			from = "environment variable " + envName(k.name)
		case contains(fileKeys, k.name):
			from = "config file"
		default:
			continue
		}
		out = append(out, fmt.Sprintf("gostatsd setting %q (%s) ignored: %s", k.name, from, k.why))
	}
	return out
}

// loadGostatsd maps gostatsd's names onto the garner keys they stand for,
// after those were read, and refuses a cloud provider.
func (c *Config) loadGostatsd(r *reader) {
	if p := strings.TrimSpace(r.str("cloud-provider")); p != "" {
		r.fail("cloud-provider", fmt.Errorf("%q: garner cannot look up senders in a cloud provider; remove the key (each series' source is the sender's IP, or its host: tag with ignore-host)", p))
	}
	alias := func(name, garnerKey string, garnerDefault bool, set func()) {
		if !r.v.IsSet(name) {
			return
		}
		if !garnerDefault {
			r.fail(name, fmt.Errorf("set either %s or its gostatsd name %s, not both", garnerKey, name))
			return
		}
		set()
	}
	alias("receive-buffer-size", "max-datagram-size", c.MaxDatagramSize == udpDefaults.DatagramSize, func() {
		c.MaxDatagramSize = r.size("receive-buffer-size")
		if c.MaxDatagramSize < 512 || c.MaxDatagramSize > 65536 {
			r.fail("receive-buffer-size", fmt.Errorf("must be between 512 and 65536 bytes, got %d", c.MaxDatagramSize))
		}
	})
	alias("timer-histogram-limit", "histogram-limit", c.HistogramLimit == aggDefaults.HistogramLimit, func() {
		c.HistogramLimit = r.positiveInt("timer-histogram-limit")
	})
	o := &c.Forward.HTTPTransport
	alias("fast-fail-on-non-retryable-errors", "http-transport.fast-fail-on-non-retryable-errors", o.FastFail == fwdDefaults.FastFail, func() {
		o.FastFail = r.bool("fast-fail-on-non-retryable-errors")
	})
}
