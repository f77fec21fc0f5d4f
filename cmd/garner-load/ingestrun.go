package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseIngestFlags(args, stderr)
	if code, done := flagsDone("garner-load bench-ingest", err, stderr); done {
		return code
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
	b := &o.bench
	g, err := startGarner(b.Garner, b.FlushInterval, append([]string{"--enable-ingestion=true"}, b.GarnerArgs...))
	if err != nil {
		return nil, err
	}
	defer g.kill()
	addrs, err := g.logged(ctx, "serving http", []string{"serving http", "http_server=admin"})
	if err != nil {
		return nil, err
	}
	if err := g.startMeasure(); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "garner-load bench-ingest: %d forwarders, %.0f bodies/s of %d counters + %d timers × %d values to /%s/raw for %s\n",
		o.Forwarders, o.BodiesPerSec, o.Counters, o.Timers, o.TimerValues, o.Proto, b.Duration)
	rep := o.load(ctx, "http://"+addrs[0]+"/"+o.Proto+"/raw")
	sleep(ctx, b.Drain)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if rep.GarnerCPU, rep.LoadCPU, rep.PeakRSS, err = g.measure(); err != nil {
		return nil, err
	}
	counters, timers, notes := g.stop(b.StopTimeout)
	rep.Notes = append(rep.Notes, notes...)
	rep.CounterGot = int64(math.Round(counters["garnerload.c"]))
	rep.TimerGot = int64(math.Round(timers["garnerload.ms"]))
	if rep.Refused > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d bodies were not answered 202", rep.Refused))
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
