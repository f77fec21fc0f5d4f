package main

import (
	"context"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/config"
)

// reloader re-reads the configuration on SIGHUP and applies what can change
// without a restart. What it cannot apply it names in the log, so the
// operator knows a restart is needed; the running configuration stays as it
// was for those parts.
type reloader struct {
	hup   chan os.Signal
	args  []string
	cfg   *config.Config
	log   *logrus.Logger
	apply map[string]func(*config.Config) error // Config field name → applier
}

// newReloader starts catching SIGHUP (so that from now on it never kills
// the process) and knows how to apply the log settings; main adds appliers
// (r.apply, by Config field name) for what its components can swap at run
// time. It keeps its own copy of cfg.
func newReloader(args []string, cfg *config.Config, log *logrus.Logger) *reloader {
	own := *cfg
	r := &reloader{hup: make(chan os.Signal, 1), args: args, cfg: &own, log: log, apply: map[string]func(*config.Config) error{}}
	signal.Notify(r.hup, syscall.SIGHUP)
	r.apply["LogLevel"] = func(c *config.Config) error {
		lvl, err := logrus.ParseLevel(c.LogLevel)
		if err == nil {
			log.SetLevel(lvl)
		}
		return err
	}
	r.apply["LogJSON"] = func(c *config.Config) error {
		if c.LogJSON {
			log.SetFormatter(&logrus.JSONFormatter{})
		} else {
			log.SetFormatter(&logrus.TextFormatter{})
		}
		return nil
	}
	r.apply["Warnings"] = func(*config.Config) error { return nil }
	return r
}

// Run reloads on each SIGHUP until ctx ends.
func (r *reloader) Run(ctx context.Context) error {
	defer signal.Stop(r.hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hup:
			r.reload()
		}
	}
}

func (r *reloader) reload() {
	next, err := config.Load(r.args)
	if err != nil {
		r.log.WithError(err).Error("SIGHUP: the configuration does not load; nothing changed")
		return
	}
	var applied, restart []string
	ov, nv := reflect.ValueOf(r.cfg).Elem(), reflect.ValueOf(next).Elem()
	for i := 0; i < ov.NumField(); i++ {
		name := ov.Type().Field(i).Name
		if reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			continue
		}
		fn, ok := r.apply[name]
		if !ok {
			restart = append(restart, name)
			continue
		}
		if err := fn(next); err != nil {
			r.log.WithError(err).WithField("setting", name).Error("SIGHUP: cannot apply the new value; keeping the old one")
			continue
		}
		ov.Field(i).Set(nv.Field(i))
		if name != "Warnings" {
			applied = append(applied, name)
		}
	}
	sort.Strings(restart)
	f := logrus.Fields{"applied": applied}
	if len(restart) > 0 {
		f["needs_restart"] = restart
		r.log.WithFields(f).Warn("SIGHUP: configuration reloaded in part; the settings in needs_restart changed but only apply after a restart")
		return
	}
	r.log.WithFields(f).Info("SIGHUP: configuration reloaded")
}
