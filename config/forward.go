package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Server modes (server-mode).
const (
	ModeStandalone = "standalone"
	ModeForwarder  = "forwarder"
)

// Forward is the forwarding tier's configuration: server-mode, the
// forwarder's [http-transport] section (gostatsd's keys plus garner's) and
// the aggregator's [ingestion] section.
type Forward struct {
	ServerMode string // standalone | forwarder

	// [http-transport]: used in forwarder mode.
	Endpoints        []string      // upstream base URLs, trailing "/" removed
	Protocol         string        // v3 | v2
	FlushInterval    time.Duration // default 1s
	MaxRequests      int           // requests in flight, all upstreams together; default 1000
	MaxRequestTime   time.Duration // retry budget of one batch; < 0 = no retries (gostatsd's -1); default 30s
	ConsolidatorSlot int           // gostatsd's consolidator-slots: accepted, unused (the shards consolidate)
	Compression      string        // zlib | zstd | none (compress=false forces none)
	CompressionLevel int           // 0 (fastest) .. 9 (smallest); default 9
	CustomHeaders    map[string]string
	DynamicHeaders   []string      // tag names whose values become request headers
	ClientTimeout    time.Duration // one request; default 10s
	FastFail         bool          // drop a batch at once on a 4xx other than 404, 408 and 429
	DNSRefresh       time.Duration // re-resolve endpoint host names this often, one upstream per address; 0 = off
	MaxBufferSize    int           // bytes of unsent batches per upstream; default 64MiB
	MaxSeries        int           // series per request; default 20000
	UpstreamFailures int           // failed attempts in a row that take an upstream out; default 3
	ProbeInterval    time.Duration // how often an upstream that is out is probed; default 2s

	// [ingestion]: the aggregator's /v2 and /v3 endpoints.
	MaxBodyBytes         int           // compressed request body limit; default 16MiB
	MaxDecompressedBytes int           // decompressed body limit; default 64MiB
	DedupWindow          time.Duration // how long v3 batch ids are remembered; default 5m
	ServeV3              bool          // false: /v3/* answer 404, so forwarders fall back to v2
	ApplyTimeout         time.Duration // wait for a full shard queue before dropping; default 5s
}

var forwardKeys = []key{
	{"server-mode", kString, ModeStandalone, "standalone: aggregate and flush to the backends; forwarder: aggregate locally and POST the raw aggregates every http-transport.flush-interval to the aggregators in http-transport.api-endpoint (backends are not used)", true},

	{"http-transport.api-endpoint", kList, "", "Forwarder mode: aggregator base URL(s) without the /v2/raw path, e.g. \"http://aggregator:8080\"; several (space-separated) form a tier: each series goes to exactly one, chosen by rendezvous hashing of its series key. Required in forwarder mode", false},
	{"http-transport.protocol", kString, "v3", "v3 (garner: float counters, batch ids, batched events) or v2 (gostatsd). With v3, an upstream that answers 404 to /v3/raw is spoken to in v2 from then on", false},
	{"http-transport.flush-interval", kDuration, time.Second, "How often the forwarder sends what it aggregated", false},
	{"http-transport.max-requests", kInt, 1000, "Requests in flight, all upstreams together", false},
	{"http-transport.max-request-elapsed-time", kDuration, 30 * time.Second, "Retry budget of one batch, from its creation (exponential backoff with jitter; Retry-After honoured); \"-1\" = one attempt, no retries", false},
	{"http-transport.consolidator-slots", kInt, 0, "gostatsd's consolidator slots: accepted for compatibility and unused (garner's shards consolidate; see max-workers)", false},
	{"http-transport.concurrent-merge", kInt, 1, "gostatsd's merge goroutines: accepted for compatibility and unused (the shards merge)", false},
	{"http-transport.transport", kString, "default", "gostatsd's [transport.<name>] to use: accepted for compatibility and unused; garner's HTTP client is set by client-timeout and the keys of this section", false},
	{"http-transport.compress", kBool, true, "Compress request bodies (false = Content-Encoding identity)", false},
	{"http-transport.compression-type", kString, "zlib", "zlib (Content-Encoding deflate), zstd (v3 only; v2 requests use zlib) or none", false},
	{"http-transport.compression-level", kInt, 9, "0 (fastest) to 9 (smallest)", false},
	{"http-transport.dynamic-headers", kList, "", "Tag names whose values become request headers (\"_\" in the name becomes \"-\"); series are split into one request per distinct set of values", false},
	{"http-transport.client-timeout", kDuration, 10 * time.Second, "Timeout of one HTTP request (connect, send, answer)", false},
	{"http-transport.fast-fail-on-non-retryable-errors", kBool, false, "Drop a batch at once when an upstream answers a 4xx other than 404, 408 and 429 (false = retry it within the retry budget, as gostatsd)", false},
	{"http-transport.dns-refresh", kDuration, time.Duration(0), "Resolve api-endpoint host names every this long and use every address as an upstream (Kubernetes headless services); 0 = off: one upstream per URL", false},
	{"http-transport.max-buffer-size", kSize, "64MiB", "Unsent compressed batches kept per upstream (queued or retrying); beyond it the oldest batch is dropped and counted", false},
	{"http-transport.max-series-per-request", kInt, 20000, "Series in one request; a larger flush share is split", false},
	{"http-transport.upstream-failures", kInt, 3, "Failed attempts in a row that take an upstream out of the choice (its series go to their next choice) until a probe succeeds", false},
	{"http-transport.probe-interval", kDuration, 2 * time.Second, "How often an upstream that was taken out is probed with an empty POST /v2/raw", false},
	{"http-transport.custom-headers.*", kString, nil, "Headers added to every request, one per line in a [http-transport.custom-headers] table: <Header-Name> = \"value\"", false},

	{"ingestion.max-body-bytes", kSize, "16MiB", "Largest request body (as sent, compressed) accepted on /v2/raw, /v3/raw, /v2/event and /v3/event; larger ones are answered 413", false},
	{"ingestion.max-decompressed-bytes", kSize, "64MiB", "Largest decompressed body; decompression stops there and the request is answered 413", false},
	{"ingestion.dedup-window", kDuration, 5 * time.Minute, "How long /v3 batch ids are remembered, so that a retried batch is applied only once", false},
	{"ingestion.v3", kBool, true, "Serve /v3/raw and /v3/event; false answers 404 there, so garner forwarders speak v2", false},
	{"ingestion.apply-timeout", kDuration, 5 * time.Second, "How long a request waits for a full shard queue; series still unapplied then are dropped and counted", false},
}

func (c *Config) loadForward(r *reader) {
	f := &c.Forward
	f.ServerMode = r.oneOf("server-mode", ModeStandalone, ModeForwarder)

	f.Protocol = r.oneOf("http-transport.protocol", "v3", "v2")
	f.FlushInterval = r.positiveDuration("http-transport.flush-interval")
	f.MaxRequests = r.positiveInt("http-transport.max-requests")
	f.MaxRequestTime = r.retryBudget("http-transport.max-request-elapsed-time")
	f.ConsolidatorSlot = r.int("http-transport.consolidator-slots")
	_ = r.int("http-transport.concurrent-merge") // validated, unused
	_ = r.str("http-transport.transport")
	f.Compression = r.oneOf("http-transport.compression-type", "zlib", "zstd", "none")
	if !r.bool("http-transport.compress") {
		f.Compression = "none"
	}
	if f.Compression == "zstd" && f.Protocol == "v2" {
		r.fail("http-transport.compression-type", errors.New("zstd needs protocol v3 (gostatsd's v2 receivers only take deflate)"))
	}
	f.CompressionLevel = r.int("http-transport.compression-level")
	if f.CompressionLevel < 0 || f.CompressionLevel > 9 {
		r.fail("http-transport.compression-level", fmt.Errorf("must be between 0 and 9, got %d", f.CompressionLevel))
	}
	f.CustomHeaders = r.headerMap("http-transport.custom-headers")
	f.DynamicHeaders = r.list("http-transport.dynamic-headers")
	f.ClientTimeout = r.positiveDuration("http-transport.client-timeout")
	f.FastFail = r.bool("http-transport.fast-fail-on-non-retryable-errors")
	f.DNSRefresh = r.duration("http-transport.dns-refresh")
	if f.DNSRefresh < 0 {
		r.fail("http-transport.dns-refresh", errors.New("must not be negative"))
	}
	f.MaxBufferSize = r.size("http-transport.max-buffer-size")
	if f.MaxBufferSize <= 0 {
		r.fail("http-transport.max-buffer-size", errors.New("must be positive"))
	}
	f.MaxSeries = r.positiveInt("http-transport.max-series-per-request")
	f.UpstreamFailures = r.positiveInt("http-transport.upstream-failures")
	f.ProbeInterval = r.positiveDuration("http-transport.probe-interval")
	for _, e := range r.list("http-transport.api-endpoint") {
		u, err := url.Parse(e)
		switch {
		case err != nil:
			r.fail("http-transport.api-endpoint", fmt.Errorf("%q is not a URL: %w", e, err))
		case u.Scheme != "http" && u.Scheme != "https":
			r.fail("http-transport.api-endpoint", fmt.Errorf("%q: want an http:// or https:// base URL", e))
		case u.Host == "" || u.RawQuery != "" || u.Fragment != "":
			r.fail("http-transport.api-endpoint", fmt.Errorf("%q: want scheme://host[:port][/path-prefix], nothing else", e))
		}
		f.Endpoints = append(f.Endpoints, strings.TrimRight(e, "/"))
	}
	if f.ServerMode == ModeForwarder && len(f.Endpoints) == 0 {
		r.fail("http-transport.api-endpoint", errors.New("required in forwarder mode"))
	}

	f.MaxBodyBytes = r.size("ingestion.max-body-bytes")
	if f.MaxBodyBytes <= 0 {
		r.fail("ingestion.max-body-bytes", errors.New("must be positive"))
	}
	f.MaxDecompressedBytes = r.size("ingestion.max-decompressed-bytes")
	if f.MaxDecompressedBytes <= 0 {
		r.fail("ingestion.max-decompressed-bytes", errors.New("must be positive"))
	}
	f.DedupWindow = r.positiveDuration("ingestion.dedup-window")
	f.ServeV3 = r.bool("ingestion.v3")
	f.ApplyTimeout = r.positiveDuration("ingestion.apply-timeout")
}

// retryBudget reads a positive duration, or -1 (gostatsd's "no retries"),
// which it returns as a negative duration.
func (r *reader) retryBudget(key string) time.Duration {
	switch x := r.v.Get(key).(type) {
	case int, int64, float64:
		if fmt.Sprint(x) == "-1" {
			return -1
		}
	case string:
		if s := strings.TrimSpace(x); s == "-1" || s == "-1s" || s == "-1ns" {
			return -1
		}
	}
	d := r.duration(key)
	if d <= 0 {
		r.fail(key, fmt.Errorf("must be a positive duration, or -1 for no retries; got %s", d))
	}
	return d
}

// headerMap reads a header map given as a table (one key per header) or as
// a JSON object string (gostatsd's form). Names are canonicalised
// (x-region → X-Region).
func (r *reader) headerMap(key string) map[string]string {
	out := map[string]string{}
	switch x := r.v.Get(key).(type) {
	case nil:
	case string:
		if strings.TrimSpace(x) == "" {
			break
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(x), &m); err != nil {
			r.fail(key, fmt.Errorf("%q is not a JSON object of strings: %w", x, err))
			return out
		}
		for k, v := range m {
			r.addHeader(out, key+"."+k, k, v)
		}
	case map[string]any:
		for k, v := range x {
			s, ok := v.(string)
			if !ok {
				r.fail(key+"."+k, fmt.Errorf("%v is not a string", v))
				continue
			}
			r.addHeader(out, key+"."+k, k, s)
		}
	default:
		r.fail(key, fmt.Errorf("%v is not a table or a JSON object", x))
	}
	return out
}

func (r *reader) addHeader(out map[string]string, key, name, value string) {
	if !httpguts.ValidHeaderFieldName(name) {
		r.fail(key, fmt.Errorf("%q is not a valid HTTP header name", name))
		return
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		r.fail(key, fmt.Errorf("%q is not a valid HTTP header value", value))
		return
	}
	out[http.CanonicalHeaderKey(name)] = value
}
