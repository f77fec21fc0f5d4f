package main

import (
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/backends/exporter"
	"github.com/garner-metrics/garner/config"
)

// watchMappingFile re-reads the exporter backend's mapping file on every
// SIGHUP (as statsd_exporter does), whether or not exporter.mapping-config
// changed. A file that does not load keeps the mappings in force: config.Load
// already refuses it (naming the key and the line), so the reload changes
// nothing and says why.
func watchMappingFile(rl *reloader, bs []backends.Backend, log logrus.FieldLogger) {
	var exp *exporter.Exporter
	for _, b := range bs {
		if e, ok := b.(*exporter.Exporter); ok {
			exp = e
		}
	}
	if exp == nil {
		return
	}
	var lastErr error
	rl.onEvery(func(next *config.Config) {
		if lastErr = exp.ReloadMapping(next.Exporter.MappingConfig); lastErr != nil {
			log.WithError(lastErr).Error("SIGHUP: the mapping file does not load; keeping the mappings in force")
		}
	})
	rl.on(func(*config.Config) error { return lastErr }, "exporter.mapping-config")
}
