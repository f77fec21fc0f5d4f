package main

import (
	"context"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/config"
)

// reloader re-reads the configuration on SIGHUP and applies what can change
// without a restart, through hooks registered per config key. It logs the
// keys whose values changed, by key name: those a hook applied, and those
// that have no hook and only take effect after a restart (needs_restart).
// A key that needs a restart keeps its old value in the running state, so a
// later SIGHUP names it again.
type reloader struct {
	hup     chan os.Signal
	args    []string
	running map[string]string // key → the effective value in force (config.Values)
	log     *logrus.Logger
	hooks   []reloadHook
	every   []func(next *config.Config) // on every SIGHUP whose config loads, before hooks
	signal  []func()                    // on every SIGHUP, before the config is loaded
}

// reloadHook applies the keys it covers from a newly loaded Config. It runs
// once per SIGHUP, whichever and however many of its keys changed; on error
// none of its keys is taken as applied.
type reloadHook struct {
	keys  []string // key names; one ending in "*" covers every key with that prefix ("filter.*")
	apply func(next *config.Config) error
}

func (h reloadHook) covers(key string) bool {
	for _, k := range h.keys {
		if k == key || (strings.HasSuffix(k, "*") && strings.HasPrefix(key, k[:len(k)-1])) {
			return true
		}
	}
	return false
}

// newReloader starts catching SIGHUP (so that from now on it never kills
// the process) and applies the log keys itself; main adds hooks (on) for
// what its components can swap at run time.
func newReloader(args []string, cfg *config.Config, log *logrus.Logger) *reloader {
	r := &reloader{hup: make(chan os.Signal, 1), args: args, running: cfg.Values(), log: log}
	signal.Notify(r.hup, syscall.SIGHUP)
	r.on(func(c *config.Config) error {
		lvl, err := logrus.ParseLevel(c.LogLevel)
		if err == nil {
			log.SetLevel(lvl)
		}
		return err
	}, "log-level", "verbose")
	r.on(func(c *config.Config) error {
		log.SetFormatter(newFormatter(c))
		return nil
	}, "json")
	return r
}

// on registers apply for keys (see reloadHook). Register before Run.
func (r *reloader) on(apply func(next *config.Config) error, keys ...string) {
	r.hooks = append(r.hooks, reloadHook{keys: keys, apply: apply})
}

// onEvery registers apply to run on every SIGHUP whose configuration loads,
// whether or not any key changed: for files a key names (a mapping file),
// whose contents change while the key does not. Register before Run.
func (r *reloader) onEvery(apply func(next *config.Config)) {
	r.every = append(r.every, apply)
}

// onSignal registers apply to run on every SIGHUP, first, whether or not
// the configuration loads: for files that do not depend on it (the TLS
// certificates in use). Register before Run.
func (r *reloader) onSignal(apply func()) {
	r.signal = append(r.signal, apply)
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
	for _, apply := range r.signal {
		apply()
	}
	next, err := config.Load(r.args)
	if err != nil {
		r.log.WithError(err).Error("SIGHUP: the configuration does not load; nothing changed")
		return
	}
	for _, apply := range r.every {
		apply(next)
	}
	values := next.Values()
	byHook := make([][]string, len(r.hooks))
	var applied, restart []string
	for _, k := range config.Changed(r.running, values) {
		i := slices.IndexFunc(r.hooks, func(h reloadHook) bool { return h.covers(k) })
		if i < 0 {
			restart = append(restart, k)
			continue
		}
		byHook[i] = append(byHook[i], k)
	}
	for i, keys := range byHook {
		if len(keys) == 0 {
			continue
		}
		if err := r.hooks[i].apply(next); err != nil {
			r.log.WithError(err).WithField("keys", keys).Error("SIGHUP: cannot apply the new values; keeping the old ones")
			continue
		}
		for _, k := range keys { // a key, or a whole section added or removed
			maps.DeleteFunc(r.running, func(rk, _ string) bool { return rk == k || strings.HasPrefix(rk, k+".") })
			for vk, v := range values {
				if vk == k || strings.HasPrefix(vk, k+".") {
					r.running[vk] = v
				}
			}
		}
		applied = append(applied, keys...)
	}
	if len(applied) == 0 && len(restart) == 0 {
		r.log.Info("SIGHUP: configuration unchanged")
		return
	}
	slices.Sort(applied)
	f := logrus.Fields{"applied": applied}
	if len(restart) > 0 {
		f["needs_restart"] = restart
		r.log.WithFields(f).Warn("SIGHUP: configuration reloaded in part; the keys in needs_restart changed but only apply after a restart")
		return
	}
	r.log.WithFields(f).Info("SIGHUP: configuration reloaded")
}
