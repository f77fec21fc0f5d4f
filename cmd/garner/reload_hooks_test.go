package main

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/config"
)

// TestReloadHooks: a SIGHUP reload names config keys, only those that
// changed; hooks apply theirs, the rest need a restart (and are named again
// on the next SIGHUP), a failing hook or a bad file leaves things as they were.
func TestReloadHooks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.toml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = "flush-interval = \"1s\"\nlog-level = \"info\"\n"
	write(base)
	args := []string{"--config-path", path}
	cfg, err := config.Load(args)
	if err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.InfoLevel)
	rl := newReloader(args, cfg, log)
	defer signal.Stop(rl.hup)
	filterErr := errors.New("bad filter")
	var filterCalls int
	rl.on(func(*config.Config) error { filterCalls++; return filterErr }, "filters", "filter.*")

	type want struct {
		level          logrus.Level
		applied, needs []string
	}
	check := func(name string, w want) {
		t.Helper()
		e := hook.LastEntry()
		if e == nil || e.Level != w.level {
			t.Fatalf("%s: last log entry %+v, want level %s", name, e, w.level)
		}
		got := func(f string) []string { s, _ := e.Data[f].([]string); return s }
		if !slices.Equal(got("applied"), w.applied) || !slices.Equal(got("needs_restart"), w.needs) {
			t.Fatalf("%s: applied=%q needs_restart=%q, want %q and %q", name, got("applied"), got("needs_restart"), w.applied, w.needs)
		}
		if _, ok := e.Data["needs_restart"]; ok != (w.needs != nil) {
			t.Fatalf("%s: needs_restart logged = %v, want %v", name, ok, w.needs != nil)
		}
	}

	rl.reload()
	check("nothing changed", want{level: logrus.InfoLevel})

	write("flush-interval = \"2s\"\nlog-level = \"info\"\n")
	rl.reload()
	check("flush-interval", want{level: logrus.WarnLevel, needs: []string{"flush-interval"}})
	rl.reload()
	check("flush-interval again", want{level: logrus.WarnLevel, needs: []string{"flush-interval"}})

	write(base + "# only a comment\n")
	rl.reload()
	check("back to the running value", want{level: logrus.InfoLevel})

	write("flush-interval = \"1s\"\nlog-level = \"debug\"\n")
	rl.reload()
	check("log-level", want{level: logrus.InfoLevel, applied: []string{"log-level"}})
	if log.GetLevel() != logrus.DebugLevel {
		t.Fatalf("log level %s after reload, want debug", log.GetLevel())
	}

	write("flush-interval = \"soon\"\n")
	rl.reload()
	if e := hook.LastEntry(); e.Level != logrus.ErrorLevel || e.Message != "SIGHUP: the configuration does not load; nothing changed" {
		t.Fatalf("bad file: %+v", e)
	}
	if log.GetLevel() != logrus.DebugLevel {
		t.Fatal("a bad file changed the log level")
	}
	write("flush-interval = \"1s\"\nlog-level = \"debug\"\n")
	rl.reload()
	check("after the bad file", want{level: logrus.InfoLevel})

	write("flush-interval = \"1s\"\nlog-level = \"debug\"\nfilters = \"f\"\n[filter.f]\ndrop-metric = true\n")
	rl.reload()
	if filterCalls != 1 {
		t.Fatalf("filter hook ran %d times for one reload, want 1", filterCalls)
	}
	for _, e := range hook.AllEntries() {
		if err, _ := e.Data[logrus.ErrorKey].(error); errors.Is(err, filterErr) {
			rl.reload() // the failed keys were not taken as applied: tried again
			if filterCalls != 2 {
				t.Fatalf("a failed hook's keys were taken as applied")
			}
			return
		}
	}
	t.Fatal("a failing hook was not logged")
}
