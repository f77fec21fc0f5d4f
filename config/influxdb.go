package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/garner-metrics/garner/backends/influxdb"
)

var influxdbDefaults = influxdb.DefaultOptions()

var influxdbKeys = []key{
	{"influxdb.api-endpoint", kString, influxdbDefaults.APIEndpoint, "Base URL of InfluxDB (or anything that takes its line protocol, e.g. VictoriaMetrics), e.g. http://127.0.0.1:8086; required with the influxdb backend", false},
	{"influxdb.api-version", kInt, influxdbDefaults.APIVersion, "Write API: 1 = POST /write?db=&rp=&consistency=, 2 = POST /api/v2/write?org=&bucket=", false},
	{"influxdb.database", kString, influxdbDefaults.Database, "Database to write to (api-version 1; required there)", false},
	{"influxdb.retention-policy", kString, influxdbDefaults.RetentionPolicy, "Retention policy (api-version 1); empty = the database's default", false},
	{"influxdb.consistency", kString, influxdbDefaults.Consistency, "Write consistency (api-version 1, InfluxDB Enterprise): any, one, quorum, all; empty = server default", false},
	{"influxdb.org", kString, influxdbDefaults.Org, "Organization (api-version 2; required there)", false},
	{"influxdb.bucket", kString, influxdbDefaults.Bucket, "Bucket (api-version 2; required there)", false},
	{"influxdb.credentials", kString, influxdbDefaults.Credentials, "Sent as \"Authorization: Token <credentials>\": an API token (v2) or \"user:password\" (v1); empty = none", false},
	{"influxdb.compress-payload", kBool, influxdbDefaults.CompressPayload, "Gzip request bodies", false},
	{"influxdb.metrics-per-batch", kInt, influxdbDefaults.MetricsPerBatch, "Most series (one line each) per write request; a flush is split into several requests beyond it", false},
	{"influxdb.max-requests", kInt, influxdbDefaults.MaxRequests, "Most write requests in flight at once (gostatsd's default is 10 per CPU)", false},
	{"influxdb.max-request-elapsed-time", kDuration, influxdbDefaults.MaxRequestElapsedTime, "Time budget of one request, retries with exponential backoff included (connection errors, 408, 429, 5xx are retried); the batch is dropped and counted after it", false},
	{"influxdb.timeout", kDuration, influxdbDefaults.Timeout, "Bound on one write request attempt", false},
}

func (c *Config) loadInfluxDB(r *reader) {
	x := &c.InfluxDB
	x.APIEndpoint = strings.TrimRight(strings.TrimSpace(r.str("influxdb.api-endpoint")), "/")
	x.APIVersion = r.int("influxdb.api-version")
	x.Database = r.str("influxdb.database")
	x.RetentionPolicy = r.str("influxdb.retention-policy")
	x.Consistency = strings.ToLower(r.str("influxdb.consistency"))
	x.Org = r.str("influxdb.org")
	x.Bucket = r.str("influxdb.bucket")
	x.Credentials = r.str("influxdb.credentials")
	x.CompressPayload = r.bool("influxdb.compress-payload")
	x.MetricsPerBatch = r.positiveInt("influxdb.metrics-per-batch")
	x.MaxRequests = r.positiveInt("influxdb.max-requests")
	x.MaxRequestElapsedTime = r.positiveDuration("influxdb.max-request-elapsed-time")
	x.Timeout = r.positiveDuration("influxdb.timeout")

	if x.APIVersion != 1 && x.APIVersion != 2 {
		r.fail("influxdb.api-version", fmt.Errorf("must be 1 or 2, got %d", x.APIVersion))
	}
	if !contains([]string{"", "any", "one", "quorum", "all"}, x.Consistency) {
		r.fail("influxdb.consistency", fmt.Errorf("%q is not one of any, one, quorum, all (or empty)", x.Consistency))
	}
	if x.APIEndpoint != "" {
		if err := checkHTTPURL(x.APIEndpoint); err != nil {
			r.fail("influxdb.api-endpoint", err)
		}
	}
	if !contains(c.Backends, "influxdb") {
		return
	}
	if x.APIEndpoint == "" {
		r.fail("influxdb.api-endpoint", errors.New("required when the influxdb backend is enabled"))
	}
	switch x.APIVersion {
	case 1:
		if x.Database == "" {
			r.fail("influxdb.database", errors.New("required with api-version 1"))
		}
	case 2:
		if x.Org == "" {
			r.fail("influxdb.org", errors.New("required with api-version 2"))
		}
		if x.Bucket == "" {
			r.fail("influxdb.bucket", errors.New("required with api-version 2"))
		}
	}
}
