package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/garner-metrics/garner/pkg/receiver"
)

// One run of the bench: start garner, load it, stop it, account for every line.

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
	var extra []string
	if o.ProfileDir != "" {
		extra = append(extra, "--enable-prof")
	}
	var agg *garnerProc // forwarder mode: the aggregator the measured garner forwards to
	var env []string
	if o.Forwarder != "" {
		var err error
		if agg, env, err = startAggregator(ctx, o); err != nil {
			return nil, err
		}
		defer agg.kill()
		extra = append(extra, "--server-mode=forwarder")
	}
	g, err := startGarner(o.Garner, o.FlushInterval, append(extra, o.GarnerArgs...), env...)
	if err != nil {
		return nil, err
	}
	defer g.kill()
	addrs, err := g.logged(ctx, "listening", []string{"listening for statsd on udp"}, []string{"serving http", "http_server=admin"})
	if err != nil {
		return nil, err
	}
	addr, admin := addrs[0], addrs[1]
	inodes, err := socketInodes(g.cmd.Process.Pid)
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
	if err := g.startMeasure(); err != nil {
		return nil, err
	}
	if agg != nil {
		if err := agg.startMeasure(); err != nil {
			return nil, err
		}
	}

	var profWG sync.WaitGroup
	var profErr error
	if o.ProfileDir != "" {
		profWG.Go(func() {
			secs := max(1, int(o.Duration.Seconds())-1)
			name := filepath.Join(o.ProfileDir, "cpu-"+profileName(r))
			profErr = fetchToFile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), name, o.Duration+30*time.Second)
		})
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
	if rep.GarnerCPU, rep.LoadCPU, rep.PeakRSS, err = g.measure(); err != nil {
		return nil, err
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

	counters, timers, notes := g.stop(o.StopTimeout)
	rep.Notes = append(rep.Notes, notes...)
	if agg != nil {
		// The forwarder's final flush went to the aggregator; the
		// aggregator's final flush takes it to the listener.
		aggCPU, _, aggRSS, err := agg.measure()
		if err != nil {
			return nil, err
		}
		var aggNotes []string
		counters, timers, aggNotes = agg.stop(o.StopTimeout)
		rep.Notes = append(rep.Notes, fmt.Sprintf("the aggregator: CPU %.2f s, peak RSS %.0f MB", aggCPU, float64(aggRSS)/1e6))
		for _, n := range aggNotes {
			rep.Notes = append(rep.Notes, "the aggregator: "+n)
		}
	}
	rep.account(counters, timers)
	return rep, nil
}

// startAggregator starts the garner a forwarder-mode bench forwards to, and
// returns the environment that points a forwarder at it.
func startAggregator(ctx context.Context, o *benchOptions) (*garnerProc, []string, error) {
	agg, err := startGarner(o.Garner, o.FlushInterval, []string{"--enable-ingestion=true"})
	if err != nil {
		return nil, nil, err
	}
	addrs, err := agg.logged(ctx, "serving http", []string{"serving http", "http_server=admin"})
	if err != nil {
		agg.kill()
		return nil, nil, err
	}
	return agg, []string{"GARNER_HTTP_TRANSPORT_API_ENDPOINT=http://" + addrs[0], "GARNER_HTTP_TRANSPORT_PROTOCOL=" + o.Forwarder}, nil
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
