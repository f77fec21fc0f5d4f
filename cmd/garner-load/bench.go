package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// benchRun is one row of the benchmark table.
type benchRun struct {
	Rate   float64 // offered lines/s; 0 = flat out
	Types  []string
	Series int // per type
}

func (r benchRun) label() string {
	if r.Rate == 0 {
		return "flat out"
	}
	return humanRate(r.Rate)
}

// parseRun reads RATE[:TYPES[:SERIES]], RATE being a number with an
// optional k or M suffix, or max.
func parseRun(s string, defTypes []string, defSeries int) (benchRun, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return benchRun{}, fmt.Errorf("run %q: want RATE[:TYPES[:SERIES]]", s)
	}
	r := benchRun{Types: defTypes, Series: defSeries}
	rate, err := parseRate(parts[0])
	if err != nil {
		return benchRun{}, fmt.Errorf("run %q: %w", s, err)
	}
	r.Rate = rate
	if len(parts) > 1 && parts[1] != "" {
		if r.Types, err = parseTypes(parts[1]); err != nil {
			return benchRun{}, fmt.Errorf("run %q: %w", s, err)
		}
	}
	if len(parts) > 2 {
		if r.Series, err = strconv.Atoi(parts[2]); err != nil || r.Series < 1 {
			return benchRun{}, fmt.Errorf("run %q: series %q is not a positive number", s, parts[2])
		}
	}
	return r, nil
}

func parseRate(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("rate %q: want a positive number of lines/s (suffix k or M) or max", s)
	}
	return v * mult, nil
}

func humanRate(v float64) string {
	switch {
	case v >= 1e6 && math.Mod(v, 1e5) == 0:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3 && math.Mod(v, 1e3) == 0:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// defaultRuns is the table of issue 6 and DESIGN.md "Performance targets":
// loss at increasing offered rates (gostatsd's anchors 200k, 400k, 800k),
// the 2M target, goodput with the sender flat out, and 400k series (100k each
// of c, g, ms, s) at 200k lines/s for memory.
const defaultRuns = "200k 400k 800k 2M 4M max 200k:c,g,ms,s:100000"

type benchOptions struct {
	Garner        string
	GarnerArgs    []string
	Forwarder     string // "", or the protocol (v2, v3) of a forwarder-mode bench
	Runs          []benchRun
	Duration      time.Duration
	FlushInterval time.Duration
	Drain         time.Duration
	StopTimeout   time.Duration
	Senders       int
	Batch         int
	DatagramSize  int
	Tags          int
	Out           string
	Commit        string
	ProfileDir    string
	Progress      time.Duration

	loadAvg string // host load average around the runs, for the table
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchOptions, error) {
	o := &benchOptions{}
	var runs []string
	var types string
	var series int
	fs := newFlagSet("garner-load bench", `Usage: garner-load bench [flags]

Runs the garner binary with the graphite backend pointed at a listener of its
own, drives it with garner-load at each offered rate, and reports per run the
lines accepted (from the flushed counter and timer counts), loss, garner's CPU
seconds and peak RSS (from /proc), and kernel drops; with --out it writes the
table into BENCHMARKS.md between the bench-e2e markers.

`, stderr)
	o.garnerFlags(fs)
	fs.StringArrayVar(&runs, "run", nil, "A run RATE[:TYPES[:SERIES]], repeatable; RATE in lines/s with k/M suffix, or max (default \""+defaultRuns+"\")")
	fs.StringVar(&types, "types", "c", "Types of runs that do not name theirs")
	fs.IntVar(&series, "series", 10000, "Series per type of runs that do not name theirs")
	fs.IntVar(&o.Senders, "senders", 1, "Sending goroutines")
	fs.IntVar(&o.Batch, "batch", 64, "Datagrams per sendmmsg")
	fs.IntVar(&o.DatagramSize, "datagram-size", 1400, "Bytes per datagram (whole lines)")
	fs.IntVar(&o.Tags, "tags", 0, "Tags per line")
	o.runFlags(fs, 20*time.Second, 10*time.Second, "bench-e2e")
	fs.StringVar(&o.Forwarder, "forwarder", "", "v2 or v3: run the measured garner in forwarder mode (--server-mode=forwarder, that http-transport.protocol), forwarding to a second garner, the aggregator, which flushes to the listener; the table goes between the bench-fwd markers")
	fs.StringVar(&o.ProfileDir, "profile-dir", "", "Save a CPU profile of garner per run here (runs garner with --enable-prof)")
	fs.DurationVar(&o.Progress, "progress", 5*time.Second, "Interval of the load progress line; 0 = none")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	defTypes, err := parseTypes(types)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		runs = strings.Fields(defaultRuns)
	}
	for _, s := range runs {
		r, err := parseRun(s, defTypes, series)
		if err != nil {
			return nil, err
		}
		o.Runs = append(o.Runs, r)
	}
	if o.Forwarder != "" && o.Forwarder != "v2" && o.Forwarder != "v3" {
		return nil, fmt.Errorf("--forwarder %q: want v2 or v3", o.Forwarder)
	}
	return o, o.validate()
}

// garnerFlags adds the flags that say which garner to run.
func (o *benchOptions) garnerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Garner, "garner", "", "garner binary (default: garner next to this binary, then $PATH)")
	fs.StringArrayVar(&o.GarnerArgs, "garner-arg", nil, "Extra garner flag, repeatable (e.g. --garner-arg=--max-readers=2)")
}

// runFlags adds the flags that time a run and say where its table goes
// (between the <!-- marker:start --> and <!-- marker:end --> lines).
func (o *benchOptions) runFlags(fs *pflag.FlagSet, duration, flushInterval time.Duration, marker string) {
	fs.DurationVar(&o.Duration, "duration", duration, "Load time of each run")
	fs.DurationVar(&o.FlushInterval, "flush-interval", flushInterval, "garner's flush-interval (10s is the default of garner and gostatsd)")
	fs.DurationVar(&o.Drain, "drain", time.Second, "Wait after the load before reading garner's CPU, memory and drops")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", time.Minute, "Bound on garner's shutdown (final flush) after SIGTERM")
	fs.StringVar(&o.Out, "out", "", "Write the table into this markdown file (BENCHMARKS.md) between <!-- "+marker+":start --> and <!-- "+marker+":end -->")
	fs.StringVar(&o.Commit, "commit", "", "Commit the garner binary was built from, for the table (default: garner --version)")
}

// validate checks the run flags and finds garner when --garner is not given.
func (o *benchOptions) validate() (err error) {
	if o.Duration <= 0 || o.FlushInterval <= 0 || o.StopTimeout <= 0 || o.Drain < 0 {
		return errors.New("--duration, --flush-interval and --stop-timeout must be positive, --drain not negative")
	}
	if o.Garner == "" {
		o.Garner, err = findGarner()
	}
	return err
}

func findGarner() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "garner")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("garner")
	if err != nil {
		return "", errors.New("no garner binary next to garner-load or in $PATH: give --garner")
	}
	return p, nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseBenchFlags(args, stderr)
	if code, done := flagsDone("garner-load bench", err, stderr); done {
		return code
	}
	if o.Commit == "" {
		o.Commit = garnerVersion(o.Garner)
	}
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "garner-load bench: %v\n", err)
			return exitError
		}
	}
	loadBefore := loadAverage()
	var reports []*runReport
	for i, r := range o.Runs {
		fmt.Fprintf(stderr, "garner-load bench: run %d/%d: %s, %s × %d series, %s\n", i+1, len(o.Runs), r.label(), strings.Join(r.Types, ","), r.Series, o.Duration)
		rep, err := benchOne(ctx, o, r, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "garner-load bench: run %s: %v\n", r.label(), err)
			return exitError
		}
		fmt.Fprintf(stderr, "garner-load bench: %s\n", rep.summary())
		reports = append(reports, rep)
	}
	o.loadAvg = fmt.Sprintf("%s before, %s after", loadBefore, loadAverage())
	section := renderSection(o, reports, time.Now())
	fmt.Fprint(stdout, section)
	if o.Out != "" {
		update := updateMarkdown
		if o.Forwarder != "" {
			update = func(path, section string) error {
				return updateMarkdownBetween(path, section, "<!-- bench-fwd:start -->", "<!-- bench-fwd:end -->", "End-to-end: forwarder mode")
			}
		}
		if err := update(o.Out, section); err != nil {
			fmt.Fprintf(stderr, "garner-load bench: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stderr, "garner-load bench: wrote the table into %s\n", o.Out)
	}
	return exitOK
}

// profileName names a run's profiles: garner-<rate>-<types>-<series>.pprof.
func profileName(r benchRun) string {
	return fmt.Sprintf("garner-%s-%s-%d.pprof", strings.ReplaceAll(r.label(), " ", ""), strings.Join(r.Types, ""), r.Series)
}

func garnerVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
