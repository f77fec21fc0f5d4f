// Package config reads garner's configuration from flags, GARNER_*
// environment variables and a TOML/YAML/JSON file into a typed Config.
// It is the only package that uses viper.
//
// Precedence is flag > environment > file > default. Every key garner knows is
// declared once, in a section table (keys.go and the section files); a key
// garner does not know, or a value that does not parse, makes Load fail with an
// error that names the key.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/garner-metrics/garner/backends/datadog"
	"github.com/garner-metrics/garner/backends/influxdb"
	"github.com/garner-metrics/garner/backends/otlp"
	"github.com/garner-metrics/garner/backends/prometheus"
	"github.com/garner-metrics/garner/pkg/aggregator"
	"github.com/garner-metrics/garner/pkg/forwarder"
	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// ErrHelp is returned by Load when --help was asked for; the usage was printed.
var ErrHelp = pflag.ErrHelp

// Config is garner's whole configuration. The zero value is not useful; use Load
// or Default. A field is named as its key (max-series-per-metric →
// MaxSeriesPerMetric); the sections are the components' Options where the
// component has them.
type Config struct {
	ConfigPath  string
	ShowVersion bool
	CheckConfig bool   // --check-config: validate everything, bind nothing, exit
	LogLevel    string // panic|fatal|error|warn|info|debug|trace
	LogJSON     bool

	MetricsAddr         string        // UDP listen address, or a unix datagram socket path; "" = off
	TCPMetricsAddr      string        // TCP listen address; "" = off
	Handover            bool          // sharing the statsd UDP port with a running process is meant (no warning)
	MaxReaders          int           // UDP sockets (SO_REUSEPORT), one reading goroutine each
	MaxWorkers          int           // aggregation shards
	ReceiveBatchSize    int           // datagrams per recvmmsg call
	SocketReceiveBuffer int           // SO_RCVBUF in bytes
	MaxDatagramSize     int           // read buffer per datagram, bytes
	MaxQueueSize        int           // lines buffered per shard before drops
	TCPMaxLineLength    int           // bytes
	TCPMaxConnections   int           // concurrent TCP clients
	TCPIdleTimeout      time.Duration // a TCP client silent this long is disconnected
	BadLinesPerMinute   float64       // bad-line log lines per minute (burst of 10); 0 = never log
	LineLimits          statsd.Limits // max-tags-per-line, max-tag-length, max-packed-values
	MaxEventLength      int           // bytes of an event's title+text or a service check's message
	MaxEventQueueSize   int           // events and service checks waiting for the backends

	Backends            []string
	FlushInterval       time.Duration
	FlushAligned        bool
	FlushOffset         time.Duration
	BackendTimeout      time.Duration // per-backend deadline of one flush
	ShutdownTimeout     time.Duration // bound on the final flush at shutdown
	PercentThreshold    []float64
	Expiry              Expiry
	IgnoreHost          bool
	Hostname            string
	Namespace           string
	DefaultTags         []string
	GaugeDeltas         bool
	MemoryLimit         int              // bytes; 0 = none
	MaxSeries           int              // 0 = unlimited
	MaxSeriesPerMetric  int              // 0 = unlimited
	CardinalityOverflow bool             // fold refused series into <name>.__overflow__
	HistogramLimit      int              // buckets per gsd_histogram tag
	DisabledSubMetrics  model.SubMetrics // disabled-sub-metrics.<name> = true sets the bit
	Timers              Timers           // timer-aggregation, histogram-max-buckets (timers.go)
	Sets                Sets             // set-aggregation, hll-precision (timers.go)

	Graphite    Graphite
	InfluxDB    influxdb.Options   // [influxdb]
	Datadog     datadog.Options    // [datadog]
	Prometheus  prometheus.Options // [prometheus]
	OTLP        otlp.Options       // [otlp]
	Statsdaemon Statsdaemon
	Exporter    Exporter // [exporter]
	Admin       Admin
	Forward     Forward
	Filters     Filters
	Protocol    Protocol // tag-formats
	TLS         TLS      // admin-tls-*; the forwarder's tls-* keys are in Forward.HTTPTransport.TLS
	Auth        Auth     // ingestion-token; the token files (admin-token-file sets Admin.Token)
	Socket      Socket

	// values holds each key's effective value as Load read it (see
	// ChangedKeys); config-path and version are not keys.
	values map[string]string

	// Warnings lists what Load accepted but wants the operator to know (keys
	// ignored on purpose). The caller logs each once.
	Warnings []string
}

// Expiry holds the per-type idle expiry intervals: 0 = never expire,
// negative = drop every series after each flush.
type Expiry = aggregator.Expiry

// KnownBackends lists the backend names the backends key accepts.
var KnownBackends = []string{"stdout", "null", "graphite", "influxdb", "datadog", "prometheus", "otlp", "statsdaemon", "exporter"}

// Error is a configuration error; Key names the offending key.
type Error struct {
	Key string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("config key %q: %v", e.Key, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Default returns the configuration with every key at its default.
func Default() *Config {
	c, err := Load(nil)
	if err != nil {
		panic(fmt.Sprintf("config: defaults do not load: %v", err)) // a bug in this package
	}
	return c
}

// Load builds the configuration from command-line args (without the program
// name), the process environment and the file named by --config-path. It
// fails with an *Error naming the first bad key, or with ErrHelp after
// printing usage for --help.
func Load(args []string) (*Config, error) {
	fs := pflag.NewFlagSet("garner", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String("config-path", "", "Path to a config file (TOML, YAML or JSON, chosen by extension)")
	fs.Bool("version", false, "Print version, commit and build date, then exit")
	fs.Bool("check-config", false, "Read and validate the configuration as a start would (keys, values, filters, backends' and the forwarder's settings) without binding a port; print what is wrong (exit 2) or \"ok\" (exit 0)")
	for _, k := range allKeys() {
		if k.flag {
			k.addFlag(fs)
		}
	}
	addIgnoredFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	v := viper.New()
	v.SetEnvPrefix("GARNER")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	for _, k := range allKeys() {
		if k.def != nil && !strings.Contains(k.name, "*") {
			v.SetDefault(k.name, k.def)
		}
		if k.flag {
			if err := v.BindPFlag(k.name, fs.Lookup(k.name)); err != nil {
				return nil, fmt.Errorf("cannot bind flag %q: %w", k.name, err)
			}
		}
	}
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(name, "GARNER_") {
			if err := checkEnvKnown(name); err != nil {
				return nil, err
			}
		}
	}

	c := &Config{}
	c.ConfigPath, _ = fs.GetString("config-path")
	c.ShowVersion, _ = fs.GetBool("version")
	c.CheckConfig, _ = fs.GetBool("check-config")
	var fileKeys []string
	if c.ConfigPath != "" {
		var err error
		fileKeys, err = readFileKeys(c.ConfigPath)
		if err != nil {
			return nil, &Error{Key: "config-path", Err: err}
		}
		for _, fk := range fileKeys {
			if _, ok := ignoredKeyNamed(fk); ok {
				continue
			}
			if fk == "" || strings.HasPrefix(fk, ".") || strings.HasSuffix(fk, ".") || strings.Contains(fk, "..") {
				return nil, &Error{Key: "config-path", Err: fmt.Errorf("%s has an empty key name", c.ConfigPath)}
			}
			if !isKnown(fk) {
				return nil, &Error{Key: fk, Err: errors.New("unknown key (see config/garner.example.toml for every key)")}
			}
		}
		v.SetConfigFile(c.ConfigPath)
		if err := v.ReadInConfig(); err != nil {
			return nil, &Error{Key: "config-path", Err: err}
		}
	}

	r := &reader{v: v}
	for _, s := range sections {
		s(c, r)
		if r.err != nil {
			return nil, r.err
		}
	}
	// Keys no accessor read (an unlisted [filter.<name>], header tables)
	// still count for ChangedKeys, with viper's value.
	for _, k := range v.AllKeys() {
		if _, ok := r.values[k]; !ok && isKnown(k) {
			r.note(k, fmt.Sprint(v.Get(k)))
		}
	}
	c.values = r.values
	c.Warnings = append(ignoredWarnings(fs, fileKeys), c.Warnings...) // the sections' warnings after the ignored keys
	return c, nil
}

// sections fill the Config from the reader, one per config area. A section
// records the first bad key in r.err.
var sections = []func(*Config, *reader){
	(*Config).loadPlain,
	(*Config).loadCore,
	(*Config).loadGraphite,
	(*Config).loadInfluxDB,
	(*Config).loadDatadog,
	(*Config).loadPrometheus,
	(*Config).loadOTLP,
	(*Config).loadStatsdaemon,
	(*Config).loadExporter,
	(*Config).loadAdmin,
	(*Config).loadForward,
	(*Config).loadFilters,
	(*Config).loadProtocol,
	(*Config).loadTimers,
	(*Config).loadGostatsd, // after the keys it maps onto
	(*Config).loadTLS,
	(*Config).loadAuth,
	(*Config).loadSocket,
}

// loadPlain reads every plain key into its field. It comes first: the
// loaders that follow read the other keys and check what spans keys.
func (c *Config) loadPlain(r *reader) {
	// Options with fields no key sets start at their component's defaults.
	c.Forward.HTTPTransport = forwarder.DefaultOptions()
	c.Admin.Health = healthDefaults
	for _, k := range allKeys() {
		if k.to != nil {
			r.readInto(c, k)
		}
	}
}

func (c *Config) loadCore(r *reader) {
	c.LogLevel = r.oneOf("log-level", "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")
	if r.bool("verbose") {
		c.LogLevel = "debug"
	}
	if c.MaxDatagramSize < 512 || c.MaxDatagramSize > 65536 {
		r.fail("max-datagram-size", fmt.Errorf("must be between 512 and 65536 bytes, got %d", c.MaxDatagramSize))
	}
	if c.BadLinesPerMinute < 0 {
		r.fail("bad-lines-per-minute", errors.New("must not be negative"))
	}
	for _, b := range c.Backends {
		if !contains(KnownBackends, b) {
			r.fail("backends", fmt.Errorf("unknown backend %q (known: %s)", b, strings.Join(KnownBackends, ", ")))
		}
	}
	if c.FlushOffset < 0 || (c.FlushInterval > 0 && c.FlushOffset >= c.FlushInterval) {
		r.fail("flush-offset", fmt.Errorf("must be in [0, flush-interval=%s)", c.FlushInterval))
	}
	if c.BackendTimeout <= 0 {
		c.BackendTimeout = c.FlushInterval
	}
	for _, p := range c.PercentThreshold {
		if p == 0 || p < -100 || p > 100 || p != p {
			r.fail("percent-threshold", fmt.Errorf("%v is not a percentile: want a non-zero number in [-100, 100]", p))
		}
	}
	all := r.duration("expiry-interval")
	c.Expiry = Expiry{
		Counter: r.durationOr("expiry-interval-counter", all),
		Gauge:   r.durationOr("expiry-interval-gauge", all),
		Set:     r.durationOr("expiry-interval-set", all),
		Timer:   r.durationOr("expiry-interval-timer", all),
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	c.Namespace = strings.Trim(r.str("namespace"), ".")
	if c.MaxSeries < 0 || c.MaxSeriesPerMetric < 0 {
		r.fail("max-series", errors.New("limits must not be negative (0 = unlimited)"))
	}
	for name, bit := range model.SubMetricKeys {
		if r.bool("disabled-sub-metrics." + name) {
			c.DisabledSubMetrics |= bit
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readFileKeys returns every leaf key of the config file, lower-cased and
// dotted as viper names them.
func readFileKeys(path string) ([]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	fv := viper.New()
	fv.SetConfigFile(path)
	if err := fv.ReadInConfig(); err != nil {
		if data, rerr := os.ReadFile(path); rerr == nil {
			return nil, syntaxError(path, data, err)
		}
		return nil, err
	}
	keys := fv.AllKeys()
	sort.Strings(keys)
	return keys, nil
}

func isKnown(name string) bool {
	for _, k := range allKeys() {
		if matchKey(k.name, name) {
			return true
		}
	}
	return false
}

// matchKey matches a dotted key against a pattern where "*" is one segment.
func matchKey(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	ps, ns := strings.Split(pattern, "."), strings.Split(name, ".")
	if len(ps) != len(ns) {
		return false
	}
	for i := range ps {
		if ps[i] != "*" && ps[i] != ns[i] {
			return false
		}
	}
	return true
}

// envName is the environment variable that sets key.
func envName(key string) string {
	return "GARNER_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(key))
}

func checkEnvKnown(name string) error {
	for _, k := range ignoredKeys {
		if envName(k.name) == name {
			return nil
		}
	}
	for _, k := range allKeys() {
		if strings.Contains(k.name, "*") {
			// A dynamic section ([filter.<name>]) cannot be named by one
			// variable; accept anything under its prefix.
			prefix := envName(k.name[:strings.Index(k.name, "*")])
			if strings.HasPrefix(name, prefix) {
				return nil
			}
			continue
		}
		if envName(k.name) == name {
			return nil
		}
	}
	return &Error{Key: name, Err: errors.New("unknown environment variable (GARNER_ variables name config keys, e.g. GARNER_FLUSH_INTERVAL)")}
}
