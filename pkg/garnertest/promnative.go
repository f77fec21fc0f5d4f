package garnertest

import (
	"fmt"
	"testing"
)

// StartPrometheusScrapingNative is StartPrometheusScraping with native
// histograms on (--enable-feature=native-histograms): Prometheus then asks
// for the delimited protobuf exposition first, so a test checks that
// format against the real scraper.
func StartPrometheusScrapingNative(t testing.TB, target, path string) *Prometheus {
	t.Helper()
	return startPrometheus(t, fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n- job_name: garner\n  metrics_path: %q\n  static_configs:\n  - targets: [%q]\n", path, target),
		"--enable-feature=native-histograms")
}
