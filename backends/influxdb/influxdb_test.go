package influxdb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

func baseConfig(endpoint string) Options {
	return Options{
		APIEndpoint: endpoint, APIVersion: 1, Database: "garner", CompressPayload: true,
		MetricsPerBatch: 2, MaxRequests: 2, MaxRequestElapsedTime: 2 * time.Second, Timeout: 2 * time.Second,
	}
}

// testSnapshot has one series of each kind, with tags that need escaping.
func testSnapshot(now time.Time) *model.Snapshot {
	return &model.Snapshot{
		Time: now, Interval: 10 * time.Second,
		Counters: []model.Counter{
			{Series: model.Series{Name: "api.req", Tags: []string{"env:prod", "path:/a b,c=d"}, Source: "10.0.0.7"}, Value: 42, PerSecond: 4.2},
			{Series: model.Series{Name: "api.req", Tags: []string{"env:dev"}, Source: "10.0.0.8"}, Value: 0.8, PerSecond: 0.08},
		},
		Gauges: []model.Gauge{{Series: model.Series{Name: "temp", Source: "10.0.0.7"}, Value: -12.5}},
		Sets:   []model.Set{{Series: model.Series{Name: "users"}, Members: map[string]struct{}{"a": {}, "b": {}}}},
		Timers: []model.Timer{{
			Series: model.Series{Name: "lat", Tags: []string{"bare"}}, Count: 3, PerSecond: 0.3,
			Lower: 1, Upper: 9, Mean: 4, Median: 2, Std: 3.55, Sum: 12, SumSquares: 86,
			Percentiles: []model.Percentile{{Name: "upper_90", Value: 9}},
		}},
	}
}

func TestInfluxDBv1RealServer(t *testing.T) {
	db := garnertest.StartInfluxDB(t)
	db.Query(t, "", `CREATE DATABASE "garner" WITH DURATION 1000w NAME "long"`)
	db.Query(t, "", `CREATE RETENTION POLICY "short" ON "garner" DURATION 1000w REPLICATION 1`)

	cfg := baseConfig(db.URL)
	cfg.RetentionPolicy = "short"
	cfg.Consistency = "one"
	c, dropped := garnertest.NewBackend(t, New, cfg)
	if err := c.CheckHealth(context.Background()); err != nil {
		t.Fatalf("health check against a running influxd: %v", err)
	}
	now := time.Now().Truncate(time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.SendMetrics(ctx, testSnapshot(now)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendEvent(ctx, &model.Event{Title: `deploy "x"`, Text: "a\nb", DateHappened: now.Unix(), Source: "10.0.0.9", Tags: []string{"env:prod"}}); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(dropped); v != 0 {
		t.Errorf("dropped = %v", v)
	}

	q := func(stmt string) []map[string]any {
		return db.Query(t, "garner", stmt).Rows()
	}
	cases := []struct {
		name string
		stmt string
		want []string // "col=value" that must be in the rows, one row per entry
	}{
		{"counter prod", `SELECT "count","rate","env","host","path" FROM "short"."api.req" WHERE env='prod'`,
			[]string{"count=42 rate=4.2 env=prod host=10.0.0.7 path=/a b,c=d"}},
		{"counter dev fractional", `SELECT "count","rate","host" FROM "short"."api.req" WHERE env='dev'`,
			[]string{"count=0.8 rate=0.08 host=10.0.0.8"}},
		{"gauge", `SELECT "value","host" FROM "short"."temp"`, []string{"value=-12.5 host=10.0.0.7"}},
		{"set without source has no host", `SELECT "count","host" FROM "short"."users"`, []string{"count=2 host=<nil>"}},
		{"timer", `SELECT * FROM "short"."lat"`,
			[]string{"lower=1 upper=9 count=3 rate=0.3 mean=4 median=2 stddev=3.55 sum=12 sum_squares=86 upper_90=9 unnamed=bare"}},
		{"event", `SELECT "title","text","host","priority","alerttype","env" FROM "short"."events"`,
			[]string{`title=deploy "x" text=a\nb host=10.0.0.9 priority=normal alerttype=info env=prod`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows := q(tc.stmt)
			if len(rows) != len(tc.want) {
				t.Fatalf("%s: %d rows %v, want %d", tc.stmt, len(rows), rows, len(tc.want))
			}
			for i, w := range tc.want {
				if err := matchRow(rows[i], w); err != nil {
					t.Errorf("%s: %v (row %v)", tc.stmt, err, rows[i])
				}
			}
			if ts, ok := rows[0]["time"].(float64); !ok || (tc.name != "event" && int64(ts) != now.UnixMilli()) {
				t.Errorf("time = %v, want %d", rows[0]["time"], now.UnixMilli())
			}
		})
	}
}

// matchRow checks "k=v k=v" pairs against a row; values with spaces are
// written with the pair's remaining text up to the next " k=" boundary.
func matchRow(row map[string]any, want string) error {
	pairs := splitPairs(want)
	for k, v := range pairs {
		got := fmt.Sprint(row[k])
		if got != v {
			return fmt.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	return nil
}

// splitPairs splits "a=1 b=x y c=2" into {a:1, b:"x y", c:2}: a space starts
// a new pair only when followed by <word>=.
func splitPairs(s string) map[string]string {
	out := map[string]string{}
	var keys []string
	var vals []string
	for _, f := range strings.Split(s, " ") {
		k, v, ok := strings.Cut(f, "=")
		if ok && k != "" && !strings.ContainsAny(k, `"/,\`) && len(keys) == len(vals) {
			keys = append(keys, k)
			vals = append(vals, v)
			continue
		}
		vals[len(vals)-1] += " " + f
	}
	for i, k := range keys {
		out[k] = vals[i]
	}
	return out
}

func TestInfluxDBv1UnknownDatabaseIsDroppedNotRetried(t *testing.T) {
	db := garnertest.StartInfluxDB(t)
	cfg := baseConfig(db.URL)
	cfg.Database = "does_not_exist"
	deps, reg, dropped := garnertest.BackendDeps()
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	snap := testSnapshot(time.Now())
	err = c.SendMetrics(context.Background(), snap)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "database not found") {
		t.Fatalf("error = %v, want influxd's 404 database not found", err)
	}
	if n := garnertest.Gathered(t, reg, "garner_influxdb_retries_total"); n != 0 {
		t.Errorf("%v retries: a 404 must not be retried", n)
	}
	if got := testutil.ToFloat64(dropped); got != float64(snap.Len()) {
		t.Errorf("dropped series = %v, want %d", got, snap.Len())
	}
}

func TestInfluxDBv2VictoriaMetrics(t *testing.T) {
	vm := garnertest.StartVictoriaMetrics(t, false)
	cfg := baseConfig(vm.URL)
	cfg.APIVersion, cfg.Database, cfg.Org, cfg.Bucket, cfg.Credentials = 2, "", "o", "b", "secret-token"
	c, dropped := garnertest.NewBackend(t, New, cfg)
	if err := c.CheckHealth(context.Background()); err != nil {
		t.Fatalf("health check against VictoriaMetrics: %v", err)
	}
	now := time.Now().Truncate(time.Millisecond)
	if err := c.SendMetrics(context.Background(), testSnapshot(now)); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(dropped); v != 0 {
		t.Errorf("dropped = %v", v)
	}
	want := map[string]float64{
		`api.req_count{env="prod",host="10.0.0.7",path="/a b,c=d"}`: 42,
		`api.req_rate{env="prod",host="10.0.0.7",path="/a b,c=d"}`:  4.2,
		`api.req_count{env="dev",host="10.0.0.8"}`:                  0.8,
		`temp_value{host="10.0.0.7"}`:                               -12.5,
		`users_count{}`:                                             2,
		`lat_count{unnamed="bare"}`:                                 3,
		`lat_upper_90{unnamed="bare"}`:                              9,
		`lat_stddev{unnamed="bare"}`:                                3.55,
	}
	got := vm.WaitExport(t, `{__name__=~"api.req_.*|temp_.*|users_.*|lat_.*"}`, func(s []garnertest.Series) bool { return len(s) >= 15 })
	garnertest.CheckSamples(t, got, want, now)
}

func TestInfluxDBDownIsBoundedAndCounted(t *testing.T) {
	addr := garnertest.FreeAddr(t) // nobody listens there
	cfg := baseConfig("http://" + addr)
	cfg.MaxRequestElapsedTime = 500 * time.Millisecond
	c, dropped := garnertest.NewBackend(t, New, cfg)
	garnertest.CheckDeadDestination(t, c, dropped, testSnapshot(time.Now()), 3*time.Second) // a 500ms budget
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Options
	}{
		{"no endpoint", Options{APIVersion: 2}},
		{"version 3", Options{APIEndpoint: "http://x", APIVersion: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := logtest.NewNullLogger()
			if _, err := New(tc.cfg, backends.Deps{Log: log, Registerer: prometheus.NewRegistry()}); err == nil {
				t.Error("want an error")
			}
		})
	}
}
