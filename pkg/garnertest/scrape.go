package garnertest

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Metrics is one scrape of a Prometheus text page: every sample, keyed by
// its series as written ("name{labels}").
type Metrics map[string]float64

// Sum adds the samples of metric name whose labels contain every one of the
// label pairs given (e.g. `backend="influxdb"`).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var total float64
	for k, v := range m {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			total += v
		}
	}
	return total
}

// Scrape reads http://<admin>/metrics (admin may also be a base URL such as
// https://127.0.0.1:8126); client bounds the request.
func Scrape(client *http.Client, admin string) (Metrics, error) {
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	resp, err := client.Get(admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %s", resp.Status)
	}
	m := Metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("cannot parse %q: %w", line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// MustScrape is Scrape with a 10s bound that fails the test on an error.
func MustScrape(t testing.TB, admin string) Metrics {
	t.Helper()
	m, err := Scrape(&http.Client{Timeout: 10 * time.Second}, admin)
	if err != nil {
		t.Fatalf("scrape %s: %v", admin, err)
	}
	return m
}
