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

	"github.com/garner-metrics/garner/pkg/forwarder"
	"github.com/garner-metrics/garner/pkg/ingest"
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

	// HTTPTransport is the [http-transport] section, used in forwarder
	// mode, mapped key by key onto the forwarder's options (api-endpoint →
	// APIEndpoints, max-request-elapsed-time → MaxRequestElapsedTime, ...).
	// DrainTimeout and Hostname are left to the caller (shutdown-timeout,
	// hostname).
	HTTPTransport forwarder.Options
	// ConsolidatorSlots is gostatsd's consolidator-slots: accepted, unused
	// (the shards consolidate).
	ConsolidatorSlots int

	// Ingestion is the [ingestion] section: the aggregator's /v2 and /v3
	// endpoints, mapped key by key onto ingest's options.
	Ingestion ingest.Options
}

// fwdDefaults are the key defaults of [http-transport]: the forwarder's;
// ingestDefaults those of [ingestion].
var (
	fwdDefaults    = forwarder.DefaultOptions()
	ingestDefaults = ingest.DefaultOptions()
)

var forwardKeys = []key{
	{"server-mode", kString, ModeStandalone, "standalone: aggregate and flush to the backends; forwarder: aggregate locally and POST the raw aggregates every http-transport.flush-interval to the aggregators in http-transport.api-endpoint (backends are not used)", true, nil},

	{"http-transport.api-endpoint", kList, "", "Forwarder mode: aggregator base URL(s) without the /v2/raw path, e.g. \"http://aggregator:8080\" (a URL ending in /v2/raw or /v3/raw is taken without it, with a warning); several (space-separated) form a tier: each series goes to exactly one, chosen by rendezvous hashing of its series key. Required in forwarder mode", false, nil},
	{"http-transport.protocol", kString, fwdDefaults.Protocol, "v3 (garner: float counters, batch ids, batched events) or v2 (gostatsd). With v3, an upstream that answers 404 to /v3/raw is spoken to in v2 from then on", false, nil},
	{"http-transport.flush-interval", kDuration, fwdDefaults.FlushInterval, "How often the forwarder sends what it aggregated", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.FlushInterval })},
	{"http-transport.max-requests", kInt, fwdDefaults.MaxRequests, "Requests in flight, all upstreams together", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.MaxRequests })},
	{"http-transport.max-request-elapsed-time", kDuration, fwdDefaults.MaxRequestElapsedTime, "Retry budget of one batch, from its creation (exponential backoff with jitter from 100ms to 10s; Retry-After honoured up to 10s); \"-1\" = one attempt, no retries", false, nil},
	{"http-transport.consolidator-slots", kInt, 0, "gostatsd's consolidator slots: accepted for compatibility and unused (garner's shards consolidate; see max-workers)", false, to(func(c *Config) any { return &c.Forward.ConsolidatorSlots })},
	{"http-transport.concurrent-merge", kInt, 1, "gostatsd's merge goroutines: accepted for compatibility and unused (the shards merge)", false, nil},
	{"http-transport.transport", kString, "default", "gostatsd's [transport.<name>] to use: accepted for compatibility and unused; garner's HTTP client is set by client-timeout and the keys of this section", false, nil},
	{"http-transport.compress", kBool, true, "Compress request bodies (false = Content-Encoding identity)", false, nil},
	{"http-transport.compression-type", kString, fwdDefaults.CompressionType, "zlib (Content-Encoding deflate), zstd (v3 only; v2 requests use zlib) or none", false, nil},
	{"http-transport.compression-level", kInt, fwdDefaults.CompressionLevel, "0 (fastest) to 9 (smallest)", false, to(func(c *Config) any { return &c.Forward.HTTPTransport.CompressionLevel })},
	{"http-transport.dynamic-headers", kList, "", "Tag names whose values become request headers (\"_\" in the name becomes \"-\"); series are split into one request per distinct set of values", false, to(func(c *Config) any { return &c.Forward.HTTPTransport.DynamicHeaders })},
	{"http-transport.client-timeout", kDuration, fwdDefaults.ClientTimeout, "Timeout of one HTTP request (connect, send, answer)", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.ClientTimeout })},
	{"http-transport.fast-fail-on-non-retryable-errors", kBool, fwdDefaults.FastFail, "Drop a batch at once when an upstream answers a 4xx other than 404, 408 and 429 (false = retry it within the retry budget, as gostatsd)", false, to(func(c *Config) any { return &c.Forward.HTTPTransport.FastFail })},
	{"http-transport.dns-refresh", kDuration, fwdDefaults.DNSRefresh, "Resolve api-endpoint host names every this long and use every address as an upstream (Kubernetes headless services); 0 = off: one upstream per URL", false, to(func(c *Config) any { return &c.Forward.HTTPTransport.DNSRefresh })},
	{"http-transport.max-buffer-size", kSize, sizeDefault(fwdDefaults.MaxBufferSize), "Unsent compressed batches kept per upstream (queued or retrying); beyond it the oldest batch is dropped and counted", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.MaxBufferSize })},
	{"http-transport.max-buffer-age", kDuration, fwdDefaults.MaxBufferAge, "How long an unsent batch is kept while its upstream is out (from its creation); older ones are dropped, counted and logged. The default outlasts a rolling restart of an aggregator tier, so nothing is lost to one; max-buffer-size bounds the memory", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.MaxBufferAge })},
	{"http-transport.v3-reprobe-interval", kDuration, fwdDefaults.V3Reprobe, "After an upstream answered 404 to /v3/raw (and is spoken to in v2), try v3 again this long after: a transient 404 (an ingress during a deploy) does not cost float counters and de-duplication until restart", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.V3Reprobe })},
	{"http-transport.max-series-per-request", kInt, fwdDefaults.MaxSeriesPerRequest, "Series in one request; a larger flush share is split", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.MaxSeriesPerRequest })},
	{"http-transport.upstream-failures", kInt, fwdDefaults.UpstreamFailures, "Failed attempts in a row that take an upstream out of the choice (its series go to their next choice) until a probe succeeds", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.UpstreamFailures })},
	{"http-transport.probe-interval", kDuration, fwdDefaults.ProbeInterval, "How often an upstream that was taken out is probed with an empty POST /v2/raw", false, toPositive(func(c *Config) any { return &c.Forward.HTTPTransport.ProbeInterval })},
	{"http-transport.custom-headers.*", kString, nil, "Headers added to every request, one per line in a [http-transport.custom-headers] table: <Header-Name> = \"value\"", false, nil},

	{"ingestion.max-body-bytes", kSize, sizeDefault(int(ingestDefaults.MaxBodyBytes)), "Largest request body (as sent, compressed) accepted on /v2/raw, /v3/raw, /v2/event and /v3/event; larger ones are answered 413", false, toPositive(func(c *Config) any { return &c.Forward.Ingestion.MaxBodyBytes })},
	{"ingestion.max-decompressed-bytes", kSize, sizeDefault(int(ingestDefaults.MaxDecompressedBytes)), "Largest decompressed body; decompression stops there and the request is answered 413", false, toPositive(func(c *Config) any { return &c.Forward.Ingestion.MaxDecompressedBytes })},
	{"ingestion.dedup-window", kDuration, ingestDefaults.DedupWindow, "How long /v3 batch ids are remembered, so that a retried batch is applied only once", false, toPositive(func(c *Config) any { return &c.Forward.Ingestion.DedupWindow })},
	{"ingestion.v3", kBool, ingestDefaults.ServeV3, "Serve /v3/raw and /v3/event; false answers 404 there, so garner forwarders speak v2", false, to(func(c *Config) any { return &c.Forward.Ingestion.ServeV3 })},
	{"ingestion.apply-timeout", kDuration, ingestDefaults.ApplyTimeout, "How long a request waits for a full shard queue; series still unapplied then are dropped and counted", false, toPositive(func(c *Config) any { return &c.Forward.Ingestion.ApplyTimeout })},
}

func (c *Config) loadForward(r *reader) {
	f := &c.Forward
	f.ServerMode = r.oneOf("server-mode", ModeStandalone, ModeForwarder)

	o := &f.HTTPTransport
	o.Protocol = r.oneOf("http-transport.protocol", "v3", "v2")
	o.MaxRequestElapsedTime = r.retryBudget("http-transport.max-request-elapsed-time")
	_ = r.int("http-transport.concurrent-merge") // validated, unused
	_ = r.str("http-transport.transport")
	o.CompressionType = r.oneOf("http-transport.compression-type", "zlib", "zstd", "none")
	if !r.bool("http-transport.compress") {
		o.CompressionType = "none"
	}
	if o.CompressionType == "zstd" && o.Protocol == "v2" {
		r.fail("http-transport.compression-type", errors.New("zstd needs protocol v3 (gostatsd's v2 receivers only take deflate)"))
	}
	if o.CompressionLevel < 0 || o.CompressionLevel > 9 {
		r.fail("http-transport.compression-level", fmt.Errorf("must be between 0 and 9, got %d", o.CompressionLevel))
	}
	o.CustomHeaders = r.headerMap("http-transport.custom-headers")
	if o.DNSRefresh < 0 {
		r.fail("http-transport.dns-refresh", errors.New("must not be negative"))
	}
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
		e = strings.TrimRight(e, "/")
		for _, suffix := range []string{"/v2/raw", "/v3/raw"} {
			if base, ok := strings.CutSuffix(e, suffix); ok && err == nil {
				c.Warnings = append(c.Warnings, fmt.Sprintf("http-transport.api-endpoint %q: the forwarder adds the path itself; using %q", e, base))
				e = base
			}
		}
		o.APIEndpoints = append(o.APIEndpoints, e)
	}
	if f.ServerMode == ModeForwarder && len(o.APIEndpoints) == 0 {
		r.fail("http-transport.api-endpoint", errors.New("required in forwarder mode"))
	}
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
