package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// The markdown table of the bench and its place in BENCHMARKS.md.

// renderSection is the markdown that goes between the bench-e2e markers.
func renderSection(o *benchOptions, reps []*runReport, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.", now.UTC().Format("2006-01-02"), machine())
	if o.loadAvg != "" {
		fmt.Fprintf(&b, " Host 1-minute load average %s (other work on the host makes CPU figures noisy).", o.loadAvg)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "garner: `%s`; flags `%s`.\n", o.Commit, strings.Join(append([]string{"--backends=graphite", "--flush-interval=" + o.FlushInterval.String()}, o.GarnerArgs...), " "))
	if o.Forwarder != "" {
		fmt.Fprintf(&b, "Forwarder mode: the measured garner (CPU, RSS, drops) runs with `--server-mode=forwarder`, `http-transport.protocol = %s` and the forwarder's defaults (1 s flush, zlib level 9), "+
			"forwarding to a second garner (`--enable-ingestion=true`, the aggregator) that flushes to the listener; accepted lines are what the aggregator flushed.\n", o.Forwarder)
	}
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
	return updateMarkdownBetween(path, section, markStart, markEnd, "End-to-end benchmark")
}

// updateMarkdownBetween replaces what is between the markers start and end
// in path (appending a section titled title when they are missing).
func updateMarkdownBetween(path, section, markStart, markEnd, title string) error {
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
		s += "\n## " + title + "\n\n" + block + "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	return nil
}
