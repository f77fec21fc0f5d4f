package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

// dashboardQueries returns every PromQL expression of the dashboard, keyed
// by where it is ("panel title/refId", "variable name").
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "garner.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/garner.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a title and a uid (stable links, provisioning)")
	}
	qs := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				qs[p.Title+"/"+tg.RefID] = tg.Expr
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		qs["variable "+v.Name] = q
	}
	return qs
}

// TestDashboardMetricsExist runs a forwarder feeding an aggregator (the
// real binary, both roles of the tier) and checks that every metric name
// in every query of the dashboard is in their /metrics.
func TestDashboardMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("starts garner")
	}
	queries := dashboardQueries(t)
	dir := t.TempDir()
	graphite := garnertest.NewGraphite(t)
	aggAdmin := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))
	aggCfg := writeFile(t, dir, "aggregator.toml", fmt.Sprintf(`
enable-ingestion = true
metrics-addr = "127.0.0.1:%d"
flush-interval = "1s"
backends = "graphite"
[graphite]
address = %q
`, garnertest.FreePort(t), graphite.Addr()))
	fwdAdmin := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))
	fwdUDP := fmt.Sprintf("127.0.0.1:%d", garnertest.FreePort(t))
	fwdCfg := writeFile(t, dir, "forwarder.toml", fmt.Sprintf(`
server-mode = "forwarder"
metrics-addr = %q
[http-transport]
api-endpoint = "http://%s"
`, fwdUDP, aggAdmin))
	garnertest.Start(t, "--config-path", aggCfg, "--admin-addr", aggAdmin)
	garnertest.Start(t, "--config-path", fwdCfg, "--admin-addr", fwdAdmin)

	// Wait until a line went agent -> aggregator -> backend, so that the
	// metrics created on first use exist too.
	var agg, fwd map[string]bool
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no line reached the aggregator's flush in time; aggregator has %d names, forwarder %d", len(agg), len(fwd))
		}
		garnertest.SendUDP(t, fwdUDP, "deploy.test:1|c\ndeploy.timer:3|ms\nnot a line\n")
		var aggSamples, fwdSamples map[string]float64
		agg, aggSamples = scrapeNames(t, aggAdmin)
		fwd, fwdSamples = scrapeNames(t, fwdAdmin)
		if aggSamples["garner_ingest_series_total"] > 0 && fwdSamples["garner_forwarder_sent_series_total"] > 0 &&
			agg["garner_aggregator_series"] && aggSamples["garner_backend_series_total"] > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	for where, expr := range queries {
		names := promqlMetricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, expr)
		}
		for _, n := range names {
			if !agg[n] && !fwd[n] {
				t.Errorf("%s: %s is in neither the aggregator's nor the forwarder's /metrics (%q)", where, n, expr)
			}
		}
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// scrapeNames reads /metrics and returns every name a query can select
// (a histogram's or summary's _bucket, _sum and _count too) and, per
// family, the sum of its samples (counters, gauges, untyped).
func scrapeNames(t *testing.T, admin string) (map[string]bool, map[string]float64) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, nil // not up yet
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s/metrics answered %s", admin, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics does not parse: %v", admin, err)
	}
	names, sums := map[string]bool{}, map[string]float64{}
	for name, f := range fams {
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				sums[name] += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sums[name] += m.GetGauge().GetValue()
			case m.Untyped != nil:
				sums[name] += m.GetUntyped().GetValue()
			}
		}
	}
	return names, sums
}
