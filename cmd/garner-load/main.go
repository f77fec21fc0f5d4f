// Command garner-load is a statsd load generator and garner's end-to-end
// benchmark.
//
//	garner-load [flags]          send statsd lines to any server, print what was sent as JSON
//	garner-load bench [flags]    run garner under load at several rates, report loss, CPU and memory
//	garner-load bench-ingest [flags]  run garner as an aggregator fed /v2/raw or /v3/raw bodies by N forwarders
//
// The content is deterministic (see Workload): every counter line is :1|c, so
// the totals a server should flush are known and printed. Datagrams are built
// once before the run; the send loop only hands them to sendmmsg, so the
// generator costs little CPU next to the server it measures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the run failed
	exitUsage = 2 // bad flags
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "bench" {
		return runBench(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "bench-ingest" {
		return runBenchIngest(ctx, args[1:], stdout, stderr)
	}
	o, err := parseSendFlags(args, stderr)
	if code, done := flagsDone("garner-load", err, stderr); done {
		return code
	}
	res, err := Run(ctx, *o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "garner-load: %v\n", err)
		return exitError
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(stderr, "garner-load: %v\n", err)
		return exitError
	}
	return exitOK
}

// flagsDone is the end of a command whose flags did not parse: 0 after
// --help, exitUsage after a bad flag (said on stderr); done is false when
// err is nil and the command goes on.
func flagsDone(cmd string, err error, stderr io.Writer) (code int, done bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, pflag.ErrHelp):
		return exitOK, true
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	return exitUsage, true
}

// newFlagSet is a command's flag set: flags in the order they are added,
// usage (the text above the flag list) on --help and after a bad flag.
func newFlagSet(cmd, usage string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, which must hold flags only.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// workloadFlags adds the flags that shape the content.
func workloadFlags(fs *pflag.FlagSet, w *Workload, types *string) {
	fs.StringVar(&w.Prefix, "prefix", "garnerload", "First component of every metric name: <prefix>.<type>.s<series>")
	fs.StringVar(types, "types", "c,g,ms,s", "Statsd types to send, comma-separated, equally mixed: some of "+knownTypes)
	fs.IntVar(&w.Series, "series", 1000, "Distinct series per type")
	fs.IntVar(&w.Tags, "tags", 0, "Tags per line (0 = no tags); a series' tags never change, so they do not add series")
	fs.IntVar(&w.DatagramSize, "datagram-size", 1400, "Pack whole lines into datagrams (or TCP writes) of at most this many bytes")
}

func parseSendFlags(args []string, stderr io.Writer) (*Options, error) {
	o := &Options{}
	var types string
	fs := newFlagSet("garner-load", "Usage: garner-load [flags]\n       garner-load bench --help\n       garner-load bench-ingest --help\n\nSends deterministic statsd load and prints what it sent as JSON on stdout.\n\n", stderr)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8125", "Statsd server, host:port")
	fs.StringVar(&o.Proto, "proto", "udp", "udp or tcp")
	rate := fs.String("rate", "100k", "Target lines per second over all senders, with an optional k or M suffix; 0 or max = as fast as possible")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "Stop after this long; 0 = no time bound (then --lines is required)")
	fs.Int64Var(&o.Lines, "lines", 0, "Stop after exactly this many lines; 0 = no count bound")
	fs.IntVar(&o.Senders, "senders", 1, "Sending goroutines, each with its own socket")
	fs.IntVar(&o.Batch, "batch", 64, "Datagrams per sendmmsg call (TCP: per writev)")
	workloadFlags(fs, &o.Workload, &types)
	fs.DurationVar(&o.Progress, "progress", time.Second, "Interval of the progress line on stderr; 0 = none")
	fs.BoolVar(&o.PerName, "per-name", false, "Also print the expected total of every counter")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	t, err := parseTypes(types)
	if err != nil {
		return nil, err
	}
	o.Types = t
	if *rate != "0" {
		if o.Rate, err = parseRate(*rate); err != nil {
			return nil, err
		}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, o.Workload.validate()
}
