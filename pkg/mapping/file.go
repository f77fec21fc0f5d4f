package mapping

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// What statsd_exporter accepts as a glob component, a mapped name (with
// $N / ${N} references) and a label name.
var (
	globComponentRE = regexp.MustCompile(`^[a-zA-Z_](-?[a-zA-Z0-9_])*$`)
	nameTemplateRE  = regexp.MustCompile(`^([a-zA-Z_]|\$\{?\d+\}?)([a-zA-Z0-9_]|\$\{?\d+\}?)*$`)
	labelNameRE     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]+$`)
)

// defaultBuckets are client_golang's DefBuckets, statsd_exporter's default.
var defaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// defaultObjectives are statsd_exporter's default summary quantiles.
var defaultObjectives = []Objective{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}}

// duration decodes as statsd_exporter's (yaml.v2) time.Duration fields do:
// a Go duration string ("1m30s"), or a bare integer of nanoseconds (so 0).
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var i int64
	if n.Tag == "!!int" && n.Decode(&i) == nil {
		*d = duration(i)
		return nil
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = duration(v)
	return nil
}

type rawObjective struct {
	Quantile float64 `yaml:"quantile"`
	Error    float64 `yaml:"error"`
}

type rawSummary struct {
	Quantiles  []rawObjective `yaml:"quantiles"`
	MaxAge     duration       `yaml:"max_age"`
	AgeBuckets uint32         `yaml:"age_buckets"`
	BufCap     uint32         `yaml:"buf_cap"`
}

type rawHistogram struct {
	Buckets            []float64 `yaml:"buckets"`
	NativeBucketFactor float64   `yaml:"native_histogram_bucket_factor"`
	NativeMaxBuckets   uint32    `yaml:"native_histogram_max_buckets"`
}

// rawObserver is the keys defaults and a mapping share: the observer type
// (timer_type is its older spelling), the older top-level spelling of the
// buckets and quantiles options, and the match type.
type rawObserver struct {
	ObserverType string         `yaml:"observer_type"`
	TimerType    string         `yaml:"timer_type"`
	Buckets      []float64      `yaml:"buckets"`
	Quantiles    []rawObjective `yaml:"quantiles"`
	MatchType    string         `yaml:"match_type"`
}

// observer is observer_type, else timer_type.
func (r rawObserver) observer() string {
	if r.ObserverType == "" {
		return r.TimerType
	}
	return r.ObserverType
}

type rawDefaults struct {
	rawObserver         `yaml:",inline"`
	GlobDisableOrdering bool         `yaml:"glob_disable_ordering"`
	TTL                 duration     `yaml:"ttl"`
	SummaryOptions      rawSummary   `yaml:"summary_options"`
	HistogramOptions    rawHistogram `yaml:"histogram_options"`
}

type rawMapping struct {
	Match            string            `yaml:"match"`
	Name             string            `yaml:"name"`
	Labels           map[string]string `yaml:"labels"`
	HonorLabels      bool              `yaml:"honor_labels"`
	rawObserver      `yaml:",inline"`
	Help             string        `yaml:"help"`
	Action           string        `yaml:"action"`
	MatchMetricType  string        `yaml:"match_metric_type"`
	TTL              duration      `yaml:"ttl"`
	SummaryOptions   *rawSummary   `yaml:"summary_options"`
	HistogramOptions *rawHistogram `yaml:"histogram_options"`
	Scale            *float64      `yaml:"scale"`
}

// The keys each section knows, for the unknown-key warnings.
var (
	topKeys       = []string{"defaults", "mappings"}
	defaultsKeys  = []string{"observer_type", "timer_type", "buckets", "quantiles", "match_type", "glob_disable_ordering", "ttl", "summary_options", "histogram_options"}
	mappingKeys   = []string{"match", "name", "labels", "honor_labels", "observer_type", "timer_type", "buckets", "quantiles", "match_type", "help", "action", "match_metric_type", "ttl", "summary_options", "histogram_options", "scale"}
	summaryKeys   = []string{"quantiles", "max_age", "age_buckets", "buf_cap"}
	histogramKeys = []string{"buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets"}
)

type defaults struct {
	observer         ObserverType
	observerSet      bool
	regex            bool
	orderingDisabled bool
	ttl              time.Duration
	summary          SummaryOptions
	histogram        HistogramOptions
}

func (d *defaults) mapping() *Mapping {
	return &Mapping{ObserverType: d.observer, Summary: d.summary, Histogram: d.histogram, TTL: d.ttl, Scale: 1}
}

// parseYAML decodes and checks the file. Errors name the line.
func parseYAML(data []byte) ([]*Mapping, defaults, []string, error) {
	var d defaults
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, d, nil, err
	}
	if len(doc.Content) == 0 {
		d.summary.Quantiles, d.histogram.Buckets = defaultObjectives, defaultBuckets
		return nil, d, nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, d, nil, fmt.Errorf("line %d: the file must be a map with defaults and mappings", root.Line)
	}
	var warnings []string
	warn := func(n *yaml.Node, where string, known []string) {
		if n == nil || n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(known, k.Value) {
				warnings = append(warnings, fmt.Sprintf("line %d: unknown key %q in %s, ignored (as statsd_exporter does)", k.Line, k.Value, where))
			}
		}
	}
	warn(root, "the top level", topKeys)
	defNode, mapsNode := child(root, "defaults"), child(root, "mappings")
	var rd rawDefaults
	if defNode != nil {
		if err := defNode.Decode(&rd); err != nil {
			return nil, d, warnings, fmt.Errorf("defaults: %w", err)
		}
		warn(defNode, "defaults", defaultsKeys)
		warn(child(defNode, "summary_options"), "defaults.summary_options", summaryKeys)
		warn(child(defNode, "histogram_options"), "defaults.histogram_options", histogramKeys)
	}
	if err := d.fill(rd, defNode); err != nil {
		return nil, d, warnings, err
	}
	if mapsNode == nil || mapsNode.Tag == "!!null" {
		return nil, d, warnings, nil
	}
	if mapsNode.Kind != yaml.SequenceNode {
		return nil, d, warnings, fmt.Errorf("line %d: mappings must be a list", mapsNode.Line)
	}
	out := make([]*Mapping, 0, len(mapsNode.Content))
	for i, n := range mapsNode.Content {
		var rm rawMapping
		if err := n.Decode(&rm); err != nil {
			return nil, d, warnings, fmt.Errorf("mapping %d: %w", i, err)
		}
		where := fmt.Sprintf("mapping %d", i)
		warn(n, where, mappingKeys)
		warn(child(n, "summary_options"), where+" summary_options", summaryKeys)
		warn(child(n, "histogram_options"), where+" histogram_options", histogramKeys)
		mp, err := build(rm, d)
		if err != nil {
			return nil, d, warnings, fmt.Errorf("line %d: mapping %d (match %q): %w", n.Line, i, rm.Match, err)
		}
		mp.Line = n.Line
		out = append(out, mp)
	}
	return out, d, warnings, nil
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (d *defaults) fill(rd rawDefaults, n *yaml.Node) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	var err error
	if d.observer, d.observerSet, err = observerType(rd.observer()); err != nil {
		return fmt.Errorf("line %d: defaults: %w", line, err)
	}
	if d.regex, err = matchType(rd.MatchType, false); err != nil {
		return fmt.Errorf("line %d: defaults: %w", line, err)
	}
	d.orderingDisabled, d.ttl = rd.GlobDisableOrdering, time.Duration(rd.TTL)
	d.summary = summaryOptions(rd.SummaryOptions)
	if len(d.summary.Quantiles) == 0 {
		d.summary.Quantiles = objectives(rd.Quantiles) // deprecated top-level quantiles
	}
	if len(d.summary.Quantiles) == 0 {
		d.summary.Quantiles = defaultObjectives
	}
	d.histogram = histogramOptions(rd.HistogramOptions)
	if len(d.histogram.Buckets) == 0 {
		d.histogram.Buckets = rd.Buckets // deprecated top-level buckets
	}
	if len(d.histogram.Buckets) == 0 {
		d.histogram.Buckets = defaultBuckets
	}
	if err := checkSummary(d.summary); err != nil {
		return fmt.Errorf("line %d: defaults.summary_options: %w", line, err)
	}
	if err := checkHistogram(d.histogram); err != nil {
		return fmt.Errorf("line %d: defaults.histogram_options: %w", line, err)
	}
	return nil
}

func build(rm rawMapping, d defaults) (*Mapping, error) {
	mp := &Mapping{Match: rm.Match, Name: rm.Name, HonorLabels: rm.HonorLabels, Help: rm.Help, Scale: 1}
	for k, v := range rm.Labels {
		if !labelNameRE.MatchString(k) {
			return nil, fmt.Errorf("invalid label key: %q", k)
		}
		mp.Labels = append(mp.Labels, Label{k, v})
	}
	sortLabels(mp.Labels)
	switch rm.Action {
	case "", "map":
	case "drop":
		mp.Drop = true
	default:
		return nil, fmt.Errorf("invalid action type %q (map or drop)", rm.Action)
	}
	if mp.Name == "" && !mp.Drop {
		return nil, errors.New("metric mapping didn't set a metric name")
	}
	if mp.Name != "" && !nameTemplateRE.MatchString(mp.Name) {
		return nil, fmt.Errorf("metric name %q is not a Prometheus name (with $N or ${N} references)", mp.Name)
	}
	var err error
	if mp.Regex, err = matchType(rm.MatchType, d.regex); err != nil {
		return nil, err
	}
	switch rm.MatchMetricType {
	case "":
	case "counter":
		mp.MatchMetricType = Counter
	case "gauge":
		mp.MatchMetricType = Gauge
	case "observer", "timer":
		mp.MatchMetricType = Observer
	default:
		return nil, fmt.Errorf("invalid metric type %q (counter, gauge or observer)", rm.MatchMetricType)
	}
	if mp.Regex {
		if mp.re, err = regexp.Compile(rm.Match); err != nil {
			return nil, fmt.Errorf("invalid regex: %w", err)
		}
	} else {
		captures, err := checkGlob(rm.Match)
		if err != nil {
			return nil, err
		}
		mp.name = parseTemplate(mp.Name, captures)
		for _, l := range mp.Labels {
			mp.labels = append(mp.labels, parseTemplate(l.Value, captures))
		}
	}
	if err := observerOptions(mp, rm, d); err != nil {
		return nil, err
	}
	mp.TTL = time.Duration(rm.TTL)
	if mp.TTL == 0 && d.ttl > 0 {
		mp.TTL = d.ttl
	}
	if mp.TTL < 0 {
		return nil, fmt.Errorf("ttl must not be negative, got %s", mp.TTL)
	}
	if rm.Scale != nil {
		mp.Scale = *rm.Scale
	}
	return mp, nil
}

// checkGlob refuses what statsd_exporter's glob syntax refuses: at least two
// dot-separated components, each "*" or a name ([a-zA-Z_], then letters,
// digits and "_", single "-" between them). It returns the number of "*".
func checkGlob(match string) (int, error) {
	fields := strings.Split(match, ".")
	stars := 0
	for _, f := range fields {
		if f == "*" {
			stars++
		} else if !globComponentRE.MatchString(f) {
			return 0, fmt.Errorf("invalid match: %q is neither * nor a statsd name component", f)
		}
	}
	if len(fields) < 2 {
		return 0, errors.New("invalid match: a glob needs at least two dot-separated components")
	}
	return stars, nil
}

// observerOptions applies statsd_exporter's rules: observer_type (or the
// older timer_type) else the default; top-level buckets / quantiles are the
// older spelling of the options; the options of the other observer type
// are an error.
func observerOptions(mp *Mapping, rm rawMapping, d defaults) error {
	typ, set, err := observerType(rm.observer())
	if err != nil {
		return err
	}
	if !set {
		typ, set = d.observer, d.observerSet
	}
	mp.ObserverType = typ
	if rm.SummaryOptions != nil && rm.Quantiles != nil && rm.SummaryOptions.Quantiles != nil {
		return errors.New("cannot use quantiles in both the top level and summary_options at the same time")
	}
	if rm.HistogramOptions != nil && rm.Buckets != nil && rm.HistogramOptions.Buckets != nil {
		return errors.New("cannot use buckets in both the top level and histogram_options at the same time")
	}
	if set && typ == Histogram && rm.SummaryOptions != nil {
		return errors.New("cannot use histogram observer and summary options at the same time")
	}
	if set && typ == Summary && rm.HistogramOptions != nil {
		return errors.New("cannot use summary observer and histogram options at the same time")
	}
	mp.Summary, mp.Histogram = d.summary, d.histogram
	if s := rm.SummaryOptions; s != nil {
		o := summaryOptions(*s)
		if len(o.Quantiles) == 0 {
			o.Quantiles = d.summary.Quantiles
		}
		if o.MaxAge == 0 {
			o.MaxAge = d.summary.MaxAge
		}
		if o.AgeBuckets == 0 {
			o.AgeBuckets = d.summary.AgeBuckets
		}
		if o.BufCap == 0 {
			o.BufCap = d.summary.BufCap
		}
		mp.Summary = o
	}
	if len(rm.Quantiles) > 0 {
		mp.Summary.Quantiles = objectives(rm.Quantiles)
	}
	if h := rm.HistogramOptions; h != nil {
		o := histogramOptions(*h)
		if len(o.Buckets) == 0 {
			o.Buckets = d.histogram.Buckets
		}
		mp.Histogram = o
	}
	if len(rm.Buckets) > 0 {
		mp.Histogram.Buckets = rm.Buckets
	}
	if err := checkSummary(mp.Summary); err != nil {
		return fmt.Errorf("summary_options: %w", err)
	}
	if err := checkHistogram(mp.Histogram); err != nil {
		return fmt.Errorf("histogram_options: %w", err)
	}
	return nil
}

func observerType(s string) (ObserverType, bool, error) {
	switch s {
	case "":
		return Summary, false, nil
	case "summary":
		return Summary, true, nil
	case "histogram":
		return Histogram, true, nil
	}
	return 0, false, fmt.Errorf("invalid observer type %q (summary or histogram)", s)
}

func matchType(s string, def bool) (bool, error) {
	switch s {
	case "":
		return def, nil
	case "glob":
		return false, nil
	case "regex":
		return true, nil
	}
	return false, fmt.Errorf("invalid match type %q (glob or regex)", s)
}

func objectives(raw []rawObjective) []Objective {
	var out []Objective
	for _, o := range raw {
		out = append(out, Objective(o))
	}
	return out
}

func summaryOptions(r rawSummary) SummaryOptions {
	return SummaryOptions{Quantiles: objectives(r.Quantiles), MaxAge: time.Duration(r.MaxAge), AgeBuckets: r.AgeBuckets, BufCap: r.BufCap}
}

func histogramOptions(r rawHistogram) HistogramOptions {
	return HistogramOptions(r)
}

// checkSummary refuses what would make client_golang misbehave.
func checkSummary(s SummaryOptions) error {
	for _, o := range s.Quantiles {
		if !(o.Quantile >= 0 && o.Quantile <= 1) || !(o.Error >= 0 && o.Error <= 1) {
			return fmt.Errorf("quantile %v with error %v: both must be within [0, 1]", o.Quantile, o.Error)
		}
	}
	if s.MaxAge < 0 {
		return fmt.Errorf("max_age must not be negative, got %s", s.MaxAge)
	}
	return nil
}

// checkHistogram refuses buckets that client_golang would panic on.
func checkHistogram(h HistogramOptions) error {
	for i, b := range h.Buckets {
		if math.IsNaN(b) || i > 0 && b <= h.Buckets[i-1] {
			return fmt.Errorf("buckets %v must be numbers in increasing order", h.Buckets)
		}
	}
	if math.IsNaN(h.NativeBucketFactor) || h.NativeBucketFactor < 0 {
		return fmt.Errorf("native_histogram_bucket_factor must be > 1 (or 0 for none), got %v", h.NativeBucketFactor)
	}
	return nil
}
