package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/garner-metrics/garner/pkg/garnertest/logaddr"
)

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseIngestFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "garner-load bench-ingest: %v\n", err)
		return exitUsage
	}
	if o.bench.Commit == "" {
		o.bench.Commit = garnerVersion(o.bench.Garner)
	}
	load0 := loadAverage()
	var reps []*ingestReport
	for _, p := range o.Protos {
		o.Proto = p
		rep, err := o.run(ctx, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "garner-load bench-ingest: /%s/raw: %v\n", p, err)
			return exitError
		}
		reps = append(reps, rep)
	}
	section := o.render(reps, load0+" before, "+loadAverage()+" after", time.Now())
	fmt.Fprint(stdout, section)
	if o.bench.Out != "" {
		if err := updateMarkdownBetween(o.bench.Out, section, "<!-- bench-ingest:start -->", "<!-- bench-ingest:end -->", "End-to-end: forwarded series (bench-ingest)"); err != nil {
			fmt.Fprintf(stderr, "garner-load bench-ingest: %v\n", err)
			return exitError
		}
	}
	return exitOK
}

// run starts garner as an aggregator, loads it, stops it and compares the
// flushed totals with what it accepted.
func (o *ingestOptions) run(ctx context.Context, stderr io.Writer) (*ingestReport, error) {
	cb, err := newCarbon("stats.counters.", "stats.timers.")
	if err != nil {
		return nil, err
	}
	defer cb.close(time.Second)
	b := &o.bench
	args := append([]string{
		"--metrics-addr=127.0.0.1:0", "--backends=graphite", "--flush-interval=" + b.FlushInterval.String(),
		"--admin-addr=127.0.0.1:0", "--enable-ingestion=true", "--log-level=info",
	}, b.GarnerArgs...)
	cmd := exec.Command(b.Garner, args...)
	cmd.Env = append(os.Environ(), "GARNER_GRAPHITE_ADDRESS="+cb.addr(), "GARNER_GRAPHITE_MODE=tags")
	logs := &limitedBuffer{max: 1 << 20}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %q: %w", b.Garner, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var admin string
	if !waitFor(ctx, exited, 15*time.Second, func() bool {
		admin = logaddr.Find(logs.String(), "serving http", "http_server=admin")
		return admin != ""
	}) {
		return nil, fmt.Errorf("garner did not start serving http:\n%s", logs.String())
	}
	pid := cmd.Process.Pid
	cpu0, err := procCPUSeconds(pid)
	if err != nil {
		return nil, err
	}
	self0 := selfCPUSeconds()
	fmt.Fprintf(stderr, "garner-load bench-ingest: %d forwarders, %.0f bodies/s of %d counters + %d timers × %d values to /%s/raw for %s\n",
		o.Forwarders, o.BodiesPerSec, o.Counters, o.Timers, o.TimerValues, o.Proto, b.Duration)
	rep := o.load(ctx, "http://"+admin+"/"+o.Proto+"/raw")
	sleep(ctx, b.Drain)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.LoadCPU = selfCPUSeconds() - self0
	cpu1, err := procCPUSeconds(pid)
	if err != nil {
		return nil, err
	}
	rep.GarnerCPU = cpu1 - cpu0
	if rep.PeakRSS, err = procStatusKB(pid, "VmHWM"); err != nil {
		return nil, err
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(b.StopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		rep.Notes = append(rep.Notes, fmt.Sprintf("garner did not stop within %s and was killed: its final flush is missing", b.StopTimeout))
	}
	if !cb.close(10 * time.Second) {
		rep.Notes = append(rep.Notes, "the graphite listener was still receiving 10s after garner exited")
	}
	counters, timers, _, malformed := cb.totals()
	if malformed > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d malformed graphite lines", malformed))
	}
	rep.CounterGot = int64(math.Round(counters["garnerload.c"]))
	rep.TimerGot = int64(math.Round(timers["garnerload.ms"]))
	if rep.Refused > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d bodies were not answered 202", rep.Refused))
	}
	if s := logs.String(); strings.Contains(s, "level=error") || strings.Contains(s, "level=warn") {
		rep.Notes = append(rep.Notes, "garner logged: "+firstLine(s, "level=warn")+firstLine(s, "level=error"))
	}
	fmt.Fprintf(stderr, "garner-load bench-ingest: %s\n", o.summary(rep))
	return rep, nil
}

func (o *ingestOptions) summary(r *ingestReport) string {
	exact := r.CounterGot == r.CounterWant && r.TimerGot == r.TimerWant
	return fmt.Sprintf("/%s/raw: %d bodies (%d accepted, %d late), %.0f series/s accepted, garner CPU %.2fs (%.3f µs/series), p99 %.1f ms, peak RSS %.0f MB, totals exact: %v (counters %d/%d, timer samples %d/%d)",
		o.Proto, r.Bodies, r.Accepted, r.Late, float64(r.SeriesAccepted)/r.Seconds, r.GarnerCPU, r.cpuPerSeries(), r.P99,
		float64(r.PeakRSS)/1e6, exact, r.CounterGot, r.CounterWant, r.TimerGot, r.TimerWant)
}

func (r *ingestReport) cpuPerSeries() float64 {
	if r.SeriesAccepted == 0 {
		return 0
	}
	return r.GarnerCPU / float64(r.SeriesAccepted) * 1e6
}

// render is the markdown between the bench-ingest markers.
func (o *ingestOptions) render(reps []*ingestReport, load string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s. Host 1-minute load average %s (other work on the host makes CPU figures noisy).\n\n", now.UTC().Format("2006-01-02"), machine(), load)
	fmt.Fprintf(&b, "garner: `%s`; flags `%s`.\n", o.bench.Commit,
		strings.Join(append([]string{"--enable-ingestion=true", "--backends=graphite", "--flush-interval=" + o.bench.FlushInterval.String()}, o.bench.GarnerArgs...), " "))
	fmt.Fprintf(&b, "Load: `garner-load bench-ingest --proto %s --forwarders %d --bodies %.0f --counters %d --timers %d --timer-values %d --duration %s` (deflate bodies, one request in flight per forwarder, load generator on the same cores).\n\n",
		strings.Join(o.Protos, ","), o.Forwarders, o.BodiesPerSec, o.Counters, o.Timers, o.TimerValues, o.bench.Duration)
	b.WriteString("| endpoint | bodies sent | accepted (202) | late > 1 s | series/s accepted | garner CPU s | CPU µs/series | p50 / p99 / max request ms | peak RSS MB | counter total flushed / expected | timer samples flushed / expected | load generator CPU s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|---:|\n")
	var notes []string
	for _, r := range reps {
		fmt.Fprintf(&b, "| /%s/raw | %s | %s | %s | %s | %.2f | %.3f | %.1f / %.1f / %.1f | %.0f | %s / %s | %s / %s | %.2f |\n",
			r.Proto, thousands(float64(r.Bodies)), thousands(float64(r.Accepted)), thousands(float64(r.Late)),
			thousands(float64(r.SeriesAccepted)/r.Seconds), r.GarnerCPU, r.cpuPerSeries(), r.P50, r.P99, r.Max,
			float64(r.PeakRSS)/1e6, thousands(float64(r.CounterGot)), thousands(float64(r.CounterWant)),
			thousands(float64(r.TimerGot)), thousands(float64(r.TimerWant)), r.LoadCPU)
		for _, n := range r.Notes {
			notes = append(notes, "- /"+r.Proto+"/raw: "+n)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}
