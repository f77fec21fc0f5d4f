package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/garner-metrics/garner/pkg/receiver"
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
	fs := pflag.NewFlagSet("garner-load bench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: garner-load bench [flags]

Runs the garner binary with the graphite backend pointed at a listener of its
own, drives it with garner-load at each offered rate, and reports per run the
lines accepted (from the flushed counter and timer counts), loss, garner's CPU
seconds and peak RSS (from /proc), and kernel drops; with --out it writes the
table into BENCHMARKS.md between the bench-e2e markers.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Garner, "garner", "", "garner binary (default: garner next to this binary, then $PATH)")
	fs.StringArrayVar(&o.GarnerArgs, "garner-arg", nil, "Extra garner flag, repeatable (e.g. --garner-arg=--max-readers=2)")
	fs.StringArrayVar(&runs, "run", nil, "A run RATE[:TYPES[:SERIES]], repeatable; RATE in lines/s with k/M suffix, or max (default \""+defaultRuns+"\")")
	fs.StringVar(&types, "types", "c", "Types of runs that do not name theirs")
	fs.IntVar(&series, "series", 10000, "Series per type of runs that do not name theirs")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "Load time of each run")
	fs.DurationVar(&o.FlushInterval, "flush-interval", 10*time.Second, "garner's flush-interval (the default of garner and gostatsd)")
	fs.DurationVar(&o.Drain, "drain", time.Second, "Wait after the load before reading garner's CPU, memory and drops")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", time.Minute, "Bound on garner's shutdown (final flush) after SIGTERM")
	fs.IntVar(&o.Senders, "senders", 1, "Sending goroutines")
	fs.IntVar(&o.Batch, "batch", 64, "Datagrams per sendmmsg")
	fs.IntVar(&o.DatagramSize, "datagram-size", 1400, "Bytes per datagram (whole lines)")
	fs.IntVar(&o.Tags, "tags", 0, "Tags per line")
	fs.StringVar(&o.Out, "out", "", "Write the table into this markdown file (BENCHMARKS.md) between <!-- bench-e2e:start --> and <!-- bench-e2e:end -->")
	fs.StringVar(&o.Commit, "commit", "", "Commit the garner binary was built from, for the table (default: garner --version)")
	fs.StringVar(&o.ProfileDir, "profile-dir", "", "Save a CPU profile of garner per run here (runs garner with --enable-prof)")
	fs.DurationVar(&o.Progress, "progress", 5*time.Second, "Interval of the load progress line; 0 = none")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
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
	if o.Duration <= 0 || o.FlushInterval <= 0 || o.StopTimeout <= 0 || o.Drain < 0 {
		return nil, errors.New("duration, flush-interval and stop-timeout must be positive, drain not negative")
	}
	if o.Garner == "" {
		o.Garner, err = findGarner()
		if err != nil {
			return nil, err
		}
	}
	return o, nil
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
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "garner-load bench: %v\n", err)
		return exitUsage
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
		if err := updateMarkdown(o.Out, section); err != nil {
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

// runReport is the outcome of one run.
type runReport struct {
	Run  benchRun
	Sent *Result

	SentCountable     int64   // counter and timer lines sent
	AcceptedCountable int64   // their flushed counts, summed by the listener
	Accepted          float64 // all lines, scaled from the countable ones
	LossPct           float64

	GarnerCPU    float64 // seconds during load + drain
	CPUPerLineUS float64 // per accepted line
	PeakRSS      int64   // bytes (VmHWM)
	LoadCPU      float64 // this process (sender and listener), seconds

	KernelDrops     uint64  // datagrams, from /proc/net/udp
	KernelDropLines float64 // estimated: drops × mean lines per datagram

	// From garner's /metrics; negative = not available.
	QueueDrops, BadLines, Received, MetricKernelDrops float64

	Unexplained float64 // lines not flushed that no counter explains
	Notes       []string
}

func (r *runReport) summary() string {
	return fmt.Sprintf("%s: sent %d lines (%.0f/s), accepted %.0f/s, loss %.3f%%, garner CPU %.2fs (%.2f µs/line), peak RSS %.0f MB, kernel drops %d datagrams, queue drops %s, bad lines %s, unexplained %.0f",
		r.Run.label(), r.Sent.Lines, r.Sent.Rate, r.Accepted/r.Sent.Seconds, r.LossPct, r.GarnerCPU, r.CPUPerLineUS,
		float64(r.PeakRSS)/1e6, r.KernelDrops, optCount(r.QueueDrops), optCount(r.BadLines), r.Unexplained)
}

func optCount(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// benchOne runs garner, loads it, stops it and accounts for every line.
func benchOne(ctx context.Context, o *benchOptions, r benchRun, stderr io.Writer) (*runReport, error) {
	cb, err := newCarbon("stats.counters.", "stats.timers.")
	if err != nil {
		return nil, err
	}
	defer cb.close(time.Second)
	port, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort))
	args := []string{
		"--metrics-addr=" + addr, "--backends=graphite", "--flush-interval=" + o.FlushInterval.String(),
		"--admin-addr=" + admin, "--log-level=info",
	}
	if o.ProfileDir != "" {
		args = append(args, "--enable-prof")
	}
	args = append(args, o.GarnerArgs...)
	cmd := exec.Command(o.Garner, args...)
	cmd.Env = append(os.Environ(), "GARNER_GRAPHITE_ADDRESS="+cb.addr(), "GARNER_GRAPHITE_MODE=tags")
	logs := &limitedBuffer{max: 1 << 20}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %q: %w", o.Garner, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	killed := false
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	if !waitFor(ctx, exited, 15*time.Second, func() bool { return strings.Contains(logs.String(), "listening for statsd on udp") }) {
		return nil, fmt.Errorf("garner did not start listening:\n%s", logs.String())
	}
	pid := cmd.Process.Pid
	inodes, err := socketInodes(pid)
	if err != nil {
		return nil, fmt.Errorf("cannot list garner's sockets: %w", err)
	}
	drops := func() uint64 {
		m, err := receiver.ReadUDPDrops(receiver.ProcNetUDP(), inodes)
		if err != nil {
			return 0
		}
		var n uint64
		for _, d := range m {
			n += d
		}
		return n
	}
	drops0 := drops()
	cpu0, err := procCPUSeconds(pid)
	if err != nil {
		return nil, fmt.Errorf("cannot read garner's CPU time: %w", err)
	}
	self0 := selfCPUSeconds()

	var profWG sync.WaitGroup
	var profErr error
	if o.ProfileDir != "" {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			secs := max(1, int(o.Duration.Seconds())-1)
			name := filepath.Join(o.ProfileDir, "cpu-"+profileName(r))
			profErr = fetchToFile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), name, o.Duration+30*time.Second)
		}()
	}

	sent, err := Run(ctx, Options{
		Workload: Workload{Prefix: "garnerload", Types: r.Types, Series: r.Series, Tags: o.Tags, DatagramSize: o.DatagramSize},
		Proto:    "udp", Addr: addr, Rate: r.Rate, Duration: o.Duration,
		Senders: o.Senders, Batch: o.Batch, Progress: o.Progress,
	}, prefixWriter{stderr, "  "})
	if err != nil {
		return nil, err
	}
	sleep(ctx, o.Drain)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep := &runReport{Run: r, Sent: sent, QueueDrops: -1, BadLines: -1, Received: -1, MetricKernelDrops: -1}
	rep.LoadCPU = selfCPUSeconds() - self0
	cpu1, err := procCPUSeconds(pid)
	if err != nil {
		return nil, fmt.Errorf("cannot read garner's CPU time: %w", err)
	}
	rep.GarnerCPU = cpu1 - cpu0
	if rep.PeakRSS, err = procStatusKB(pid, "VmHWM"); err != nil {
		return nil, fmt.Errorf("cannot read garner's peak RSS: %w", err)
	}
	rep.KernelDrops = drops() - drops0
	if m, err := scrapeMetrics(ctx, "http://"+admin+"/metrics"); err != nil {
		rep.Notes = append(rep.Notes, "garner's /metrics not available ("+err.Error()+"): queue drops and bad lines unknown")
	} else {
		get := func(name string) float64 {
			if v, ok := m[name]; ok {
				return v
			}
			return -1
		}
		rep.QueueDrops = get("garner_aggregator_queue_dropped_lines_total")
		rep.BadLines = get("garner_receiver_bad_lines_total")
		rep.Received = get("garner_receiver_lines_total")
		rep.MetricKernelDrops = get("garner_receiver_kernel_drops_total")
	}
	profWG.Wait()
	if profErr != nil {
		rep.Notes = append(rep.Notes, "CPU profile: "+profErr.Error())
	}
	if o.ProfileDir != "" {
		name := filepath.Join(o.ProfileDir, "heap-"+profileName(r))
		if err := fetchToFile(ctx, "http://"+admin+"/debug/pprof/heap", name, 30*time.Second); err != nil {
			rep.Notes = append(rep.Notes, "heap profile: "+err.Error())
		}
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(o.StopTimeout):
		killed = true
		_ = cmd.Process.Kill()
		<-exited
	}
	if killed {
		rep.Notes = append(rep.Notes, fmt.Sprintf("garner did not stop within %s and was killed: its final flush is missing", o.StopTimeout))
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 && !killed {
		rep.Notes = append(rep.Notes, fmt.Sprintf("garner exited with code %d", code))
	}
	if !cb.close(10 * time.Second) {
		rep.Notes = append(rep.Notes, "the graphite listener was still receiving 10s after garner exited")
	}
	counters, timers, _, malformed := cb.totals()
	if malformed > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d malformed graphite lines", malformed))
	}
	rep.account(counters, timers)
	if strings.Contains(logs.String(), "level=error") || strings.Contains(logs.String(), "level=fatal") {
		rep.Notes = append(rep.Notes, "garner logged errors: "+firstLine(logs.String(), "level=error"))
	}
	return rep, nil
}

// account compares the flushed counts with what was sent.
func (rep *runReport) account(counters, timers map[string]float64) {
	s := rep.Sent
	var flushed float64
	for p, n := range s.CounterIncrements {
		rep.SentCountable += n
		flushed += counters[p]
	}
	for p, n := range s.TimerSamples {
		rep.SentCountable += n
		flushed += timers[p]
	}
	rep.AcceptedCountable = int64(math.Round(flushed))
	if rep.SentCountable == 0 {
		rep.Notes = append(rep.Notes, "no counter or timer lines were sent: nothing to measure loss by")
		return
	}
	if rep.AcceptedCountable > rep.SentCountable {
		rep.Notes = append(rep.Notes, fmt.Sprintf("garner flushed %d counts for %d lines sent: an over-count", rep.AcceptedCountable, rep.SentCountable))
	}
	// Gauges and sets cannot be counted from their flushed values; their
	// loss is taken to be that of the counters and timers they are mixed with.
	scale := float64(s.Lines) / float64(rep.SentCountable)
	rep.Accepted = float64(rep.AcceptedCountable) * scale
	rep.LossPct = 100 * float64(rep.SentCountable-rep.AcceptedCountable) / float64(rep.SentCountable)
	if rep.Accepted > 0 {
		rep.CPUPerLineUS = rep.GarnerCPU / rep.Accepted * 1e6
	}
	rep.KernelDropLines = float64(rep.KernelDrops) * s.LinesPerDgram
	if rep.Received >= 0 {
		// garner counted what it read: the rest of what was sent is exactly
		// what the kernel dropped, whatever the datagrams held.
		rep.KernelDropLines = float64(s.Lines) - rep.Received
	}
	notFlushed := float64(s.Lines) - rep.Accepted
	explained := rep.KernelDropLines + max(rep.QueueDrops, 0) + max(rep.BadLines, 0)
	rep.Unexplained = math.Round(notFlushed - explained)
	if s.MinLinesPerDgm != s.MaxLinesPerDgm && rep.Received < 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("datagrams hold %d..%d lines: kernel-dropped lines are estimated at the mean", s.MinLinesPerDgm, s.MaxLinesPerDgm))
	}
	if rep.MetricKernelDrops >= 0 && uint64(rep.MetricKernelDrops) != rep.KernelDrops {
		rep.Notes = append(rep.Notes, fmt.Sprintf("garner_receiver_kernel_drops_total says %.0f, /proc/net/udp %d", rep.MetricKernelDrops, rep.KernelDrops))
	}
}

// renderSection is the markdown that goes between the bench-e2e markers.
func renderSection(o *benchOptions, reps []*runReport, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.", now.UTC().Format("2006-01-02"), machine())
	if o.loadAvg != "" {
		fmt.Fprintf(&b, " Host 1-minute load average %s (other work on the host makes CPU figures noisy).", o.loadAvg)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "garner: `%s`; flags `%s`.\n", o.Commit, strings.Join(append([]string{"--backends=graphite", "--flush-interval=" + o.FlushInterval.String()}, o.GarnerArgs...), " "))
	fmt.Fprintf(&b, "Load: %s per run, %d sender(s), datagrams of at most %d bytes, %d tag(s) per line, batches of %d datagrams per sendmmsg.\n\n",
		o.Duration, o.Senders, o.DatagramSize, o.Tags, o.Batch)
	b.WriteString("| offered lines/s | types × series | sent lines/s | accepted lines/s | loss | garner CPU s | CPU µs/line | peak RSS MB | kernel drops (datagrams) | queue drops | bad lines | unexplained lines | sender CPU s |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "| %s | %s × %s | %s | %s | %.3f%% | %.2f | %.2f | %.0f | %s | %s | %s | %s | %.2f |\n",
			r.Run.label(), strings.Join(r.Run.Types, ","), thousands(float64(r.Run.Series)),
			thousands(r.Sent.Rate), thousands(r.Accepted/r.Sent.Seconds), r.LossPct,
			r.GarnerCPU, r.CPUPerLineUS, float64(r.PeakRSS)/1e6,
			thousands(float64(r.KernelDrops)), optThousands(r.QueueDrops), optThousands(r.BadLines),
			thousands(r.Unexplained), r.LoadCPU)
	}
	var notes []string
	for _, r := range reps {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", r.Run.label(), n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

func thousands(v float64) string {
	neg := v < 0
	s := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func optThousands(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return thousands(v)
}

const (
	markStart = "<!-- bench-e2e:start -->"
	markEnd   = "<!-- bench-e2e:end -->"
)

// updateMarkdown replaces what is between the markers in path (appending a
// marked section when they are missing).
func updateMarkdown(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read %q: %w", path, err)
	}
	s := string(b)
	block := markStart + "\n" + section + markEnd
	i, j := strings.Index(s, markStart), strings.Index(s, markEnd)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(markEnd):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%q has only one of the markers %s and %s", path, markStart, markEnd)
	default:
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n## End-to-end benchmark\n\n" + block + "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	return nil
}

// scrapeMetrics reads a Prometheus text exposition and sums each metric
// over its label sets.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseExposition(resp.Body)
}

func parseExposition(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		rest := l[len(name):]
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return nil, fmt.Errorf("cannot parse exposition line %q", l)
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("cannot parse exposition line %q", l)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("cannot parse exposition value in %q: %w", l, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

func fetchToFile(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond every 10 ms until it holds (true), or the timeout
// passes, ctx ends or exited closes (false).
func waitFor(ctx context.Context, exited <-chan struct{}, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-exited:
			return cond()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

func firstLine(s, containing string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, containing) {
			return l
		}
	}
	return ""
}

// limitedBuffer keeps the first max bytes written to it. Safe for
// concurrent use.
type limitedBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// prefixWriter indents each write (the load's progress lines).
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}
