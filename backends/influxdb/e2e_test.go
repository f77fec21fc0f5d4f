package influxdb

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2EGarnerToInfluxDB runs the real garner binary with the influxdb
// backend (api-version 1) against a real influxd, sends statsd datagrams and
// reads the totals back with InfluxQL.
func TestE2EGarnerToInfluxDB(t *testing.T) {
	db := garnertest.StartInfluxDB(t)
	db.Query(t, "", `CREATE DATABASE "e2e"`)
	// influxd creates the shard on the first write, which can take longer
	// than a flush on a loaded machine: make it before garner writes, into
	// a measurement the checks do not read.
	resp, err := http.Post(db.URL+"/write?db=e2e", "text/plain", strings.NewReader("e2e.warmup value=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("warm-up write answered %s", resp.Status)
	}
	// A flush that outlasts the interval makes the next one be dropped (and
	// logged, which fails the test): a 1s interval leaves influxd room.
	p := garnertest.StartConfig(t, fmt.Sprintf(`backends = "influxdb"
metrics-addr = "127.0.0.1:0"
flush-interval = "1s"
[influxdb]
api-endpoint = %q
api-version = 1
database = "e2e"
metrics-per-batch = 2
`, db.URL))
	udp := p.UDPAddr(t)
	const n = 40
	for i := range n {
		garnertest.SendUDP(t, udp, "e2e.cnt:1|c|#env:test\ne2e.cnt:2|c|@0.5|#env:test\ne2e.lat:10|ms\ne2e.lat:30|ms|@0.25\ne2e.g:"+fmt.Sprint(i)+"|g\ne2e.users:u"+fmt.Sprint(i%5)+"|s")
		if i%10 == 9 {
			time.Sleep(400 * time.Millisecond) // spread over several flushes (any number of them sums the same)
		}
	}
	// Gauges are last-wins in arrival order, and datagrams read by different
	// UDP readers race: send the final value on its own, once all the others
	// have been read.
	p.WaitRead(t, 6*n)
	garnertest.SendUDP(t, udp, "e2e.g:99|g")
	p.WaitRead(t, 6*n+1)
	p.StopOK(t)

	one := func(q string) any {
		rows := db.Query(t, "e2e", q).Rows()
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows %v, want 1", q, len(rows), rows)
		}
		for k, v := range rows[0] {
			if k != "time" && k != "_measurement" {
				return v
			}
		}
		return nil
	}
	checks := []struct {
		q    string
		want any
	}{
		{`SELECT sum("count") FROM "e2e.cnt" WHERE env='test' AND host='127.0.0.1'`, float64(n * 5)},
		{`SELECT sum("count") FROM "e2e.lat"`, float64(n * 5)},
		{`SELECT max("upper") FROM "e2e.lat"`, float64(30)},
		{`SELECT last("value") FROM "e2e.g"`, float64(99)},
		{`SELECT max("count") FROM "e2e.users"`, float64(5)},
	}
	for _, c := range checks {
		if got := one(c.q); got != c.want {
			t.Errorf("%s = %v, want %v", c.q, got, c.want)
		}
	}
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(l, "backend=influxdb") && (strings.Contains(l, "level=warn") || strings.Contains(l, "level=error")) {
			t.Errorf("the influxdb backend logged a problem: %s", l)
		}
	}
}
