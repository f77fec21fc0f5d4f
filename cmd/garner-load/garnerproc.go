package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest/logaddr"
)

// garnerProc is the garner process a bench measures: it flushes to a
// Graphite listener of the bench's own, and stops with SIGTERM so that its
// final flush lands there and every line can be accounted for.
type garnerProc struct {
	cmd    *exec.Cmd
	logs   *limitedBuffer
	exited chan struct{}
	carbon *carbon

	cpu0, self0 float64
}

// startGarner runs bin flushing every flushInterval to a new Graphite
// listener, with the admin server and the statsd listeners on port 0:
// garner logs the ports it bound, so no other process can take them between
// a free-port probe and garner's bind. extra follows the common flags; env
// (NAME=value) is added to garner's environment.
func startGarner(bin string, flushInterval time.Duration, extra []string, env ...string) (*garnerProc, error) {
	cb, err := newCarbon("stats.counters.", "stats.timers.")
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--metrics-addr=127.0.0.1:0", "--backends=graphite", "--flush-interval=" + flushInterval.String(),
		"--admin-addr=127.0.0.1:0", "--log-level=info",
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "GARNER_GRAPHITE_ADDRESS="+cb.addr(), "GARNER_GRAPHITE_MODE=tags"), env...)
	g := &garnerProc{cmd: cmd, logs: &limitedBuffer{max: 1 << 20}, exited: make(chan struct{}), carbon: cb}
	cmd.Stderr = g.logs
	if err := cmd.Start(); err != nil {
		cb.close(time.Second)
		return nil, fmt.Errorf("cannot start %q: %w", bin, err)
	}
	go func() {
		_ = cmd.Wait()
		close(g.exited)
	}()
	return g, nil
}

// kill ends garner if it still runs and closes the listener; deferred
// after startGarner, it is a no-op once stop has run.
func (g *garnerProc) kill() {
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	g.carbon.close(time.Second)
}

// logged waits up to 15 s for garner to log each listener: one logaddr.Find
// field list per address wanted, the addresses returned in that order.
func (g *garnerProc) logged(ctx context.Context, what string, finds ...[]string) ([]string, error) {
	addrs := make([]string, len(finds))
	if !waitFor(ctx, g.exited, 15*time.Second, func() bool {
		for i, f := range finds {
			if addrs[i] = logaddr.Find(g.logs.String(), f[0], f[1:]...); addrs[i] == "" {
				return false
			}
		}
		return true
	}) {
		return nil, fmt.Errorf("garner did not start %s:\n%s", what, g.logs.String())
	}
	return addrs, nil
}

// startMeasure marks the start of the measured span.
func (g *garnerProc) startMeasure() (err error) {
	if g.cpu0, err = procCPUSeconds(g.cmd.Process.Pid); err != nil {
		return fmt.Errorf("cannot read garner's CPU time: %w", err)
	}
	g.self0 = selfCPUSeconds()
	return nil
}

// measure is garner's and this process's CPU seconds since startMeasure,
// and garner's peak RSS in bytes.
func (g *garnerProc) measure() (garnerCPU, loadCPU float64, peakRSS int64, err error) {
	loadCPU = selfCPUSeconds() - g.self0
	cpu1, err := procCPUSeconds(g.cmd.Process.Pid)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("cannot read garner's CPU time: %w", err)
	}
	if peakRSS, err = procStatusKB(g.cmd.Process.Pid, "VmHWM"); err != nil {
		return 0, 0, 0, fmt.Errorf("cannot read garner's peak RSS: %w", err)
	}
	return cpu1 - g.cpu0, loadCPU, peakRSS, nil
}

// stop sends SIGTERM, waits up to timeout for the final flush (then kills),
// waits for the listener to go quiet and returns the flushed counter and
// timer-count totals, with a note for anything that makes them doubtful.
func (g *garnerProc) stop(timeout time.Duration) (counters, timers map[string]float64, notes []string) {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	killed := false
	select {
	case <-g.exited:
	case <-time.After(timeout):
		killed = true
		_ = g.cmd.Process.Kill()
		<-g.exited
		notes = append(notes, fmt.Sprintf("garner did not stop within %s and was killed: its final flush is missing", timeout))
	}
	if code := g.cmd.ProcessState.ExitCode(); code != 0 && !killed {
		notes = append(notes, fmt.Sprintf("garner exited with code %d", code))
	}
	if !g.carbon.close(10 * time.Second) {
		notes = append(notes, "the graphite listener was still receiving 10s after garner exited")
	}
	counters, timers, _, malformed := g.carbon.totals()
	if malformed > 0 {
		notes = append(notes, fmt.Sprintf("%d malformed graphite lines", malformed))
	}
	if s := g.logs.String(); strings.Contains(s, "level=error") || strings.Contains(s, "level=fatal") || strings.Contains(s, "level=warn") {
		notes = append(notes, "garner logged: "+firstLine(s, "level=warn")+firstLine(s, "level=error")+firstLine(s, "level=fatal"))
	}
	return counters, timers, notes
}
