package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/garner-metrics/garner/pkg/health"
	"github.com/garner-metrics/garner/pkg/web"
)

// Admin is the HTTP side of garner: the admin server (admin-addr), gostatsd's
// named HTTP servers (http-servers + [http.<name>]), the health endpoints'
// base path and token, the dependency prober and the shutdown grace period.
type Admin struct {
	Addr            string        // admin-addr: host:port; "" = no admin server
	EnableProf      bool          // /debug/pprof on admin-addr
	EnableExpvar    bool          // /expvar on admin-addr
	EnableIngestion bool          // forwarding ingestion (/v2/raw, ...) on admin-addr
	HealthBasePath  string        // health-base-path: default "/health" (web.DefaultOptions); always starts with "/", no trailing "/"
	Token           string        // admin-token: bearer token for everything but the probes and /healthcheck; "" = none
	ShutdownGrace   time.Duration // shutdown-grace: default 2s; 0 = none
	HTTPServers     []HTTPServer  // http-servers, in order, each from its [http.<name>] section

	// Health is the dependency prober: dependency-check-interval →
	// Interval, dependency-check-timeout → Timeout, dependency-history →
	// History; defaults from health.DefaultOptions.
	Health health.Options
}

// HTTPServer is one [http.<name>] section; keys and defaults as gostatsd
// (httpServerDefaults), each field named as its key.
type HTTPServer struct {
	Name              string
	Address           string // address: default 127.0.0.1:8080
	EnableProf        bool   // enable-prof: default false
	EnableExpvar      bool   // enable-expvar: default false
	EnableIngestion   bool   // enable-ingestion: default false
	EnableHealthcheck bool   // enable-healthcheck: default true
}

// httpServerDefaults are the defaults of an [http.<name>] section.
var httpServerDefaults = HTTPServer{Address: "127.0.0.1:8080", EnableHealthcheck: true}

var (
	healthDefaults = health.DefaultOptions()
	webDefaults    = web.DefaultOptions()
)

var adminKeys = []key{
	{"admin-addr", kString, "127.0.0.1:8126", "Admin HTTP server (health, probes, /metrics, status page, see HTTP.md) host:port; empty = off. garner refuses to start (exit 3) when it is taken: another instance runs", true, nil},
	{"admin-token", kString, "", "Bearer token required on every HTTP endpoint except the liveness/readiness/startup probes and /healthcheck (401 without it); empty = none. Prefer GARNER_ADMIN_TOKEN to a flag, which ps shows", true, to(func(c *Config) any { return &c.Admin.Token })},
	{"enable-prof", kBool, false, "Serve /debug/pprof on admin-addr (one CPU profile or trace at a time; a concurrent one gets 429)", true, to(func(c *Config) any { return &c.Admin.EnableProf })},
	{"enable-expvar", kBool, false, "Serve /expvar on admin-addr", true, to(func(c *Config) any { return &c.Admin.EnableExpvar })},
	{"enable-ingestion", kBool, false, "Serve the forwarding ingestion endpoints (/v2/raw, /v3/raw, ...) on admin-addr, for an aggregator", true, to(func(c *Config) any { return &c.Admin.EnableIngestion })},
	{"health-base-path", kString, webDefaults.BasePath, "Path under which the Kubernetes-style health endpoints live ({base}, {base}/live, {base}/ready, ...)", true, nil},
	{"shutdown-grace", kDuration, 2 * time.Second, "On SIGTERM, readiness answers 503 at once and garner keeps ingesting this long (so load balancers take it out) before its listeners close and the final flush runs; 0 = none", true, to(func(c *Config) any { return &c.Admin.ShutdownGrace })},
	{"http-servers", kList, "", "Names of gostatsd-style HTTP servers, space-separated; each is configured by its [http.<name>] section", true, nil},
	// Defaults of dynamic keys are documentation only: loadAdmin applies them.
	{"http.*.address", kString, httpServerDefaults.Address, "host:port this server (named in http-servers) listens on", false, nil},
	{"http.*.enable-prof", kBool, httpServerDefaults.EnableProf, "Serve /debug/pprof (one CPU profile or trace at a time)", false, nil},
	{"http.*.enable-expvar", kBool, httpServerDefaults.EnableExpvar, "Serve /expvar", false, nil},
	{"http.*.enable-ingestion", kBool, httpServerDefaults.EnableIngestion, "Serve the forwarding ingestion endpoints (/v2/raw, /v3/raw, ...)", false, nil},
	{"http.*.enable-healthcheck", kBool, httpServerDefaults.EnableHealthcheck, "Serve /healthcheck, /deepcheck and the health-base-path endpoints", false, nil},
	{"dependency-check-interval", kDuration, healthDefaults.Interval, "How often each dependency (backend, forward upstream) is probed in the background for the health endpoints", true, toPositive(func(c *Config) any { return &c.Admin.Health.Interval })},
	{"dependency-check-timeout", kDuration, healthDefaults.Timeout, "Bound on one dependency probe; a slower answer counts as down (at most dependency-check-interval)", true, toPositive(func(c *Config) any { return &c.Admin.Health.Timeout })},
	{"dependency-history", kInt, healthDefaults.History, "Up/down events kept per dependency for {base}/dependencies", true, toPositive(func(c *Config) any { return &c.Admin.Health.History })},
}

var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c *Config) loadAdmin(r *reader) {
	a := &c.Admin
	a.Addr = strings.TrimSpace(r.str("admin-addr"))
	if a.Addr != "" {
		if _, _, err := net.SplitHostPort(a.Addr); err != nil {
			r.fail("admin-addr", fmt.Errorf("%q is not host:port: %w", a.Addr, err))
		}
	}
	if a.Token != strings.TrimSpace(a.Token) {
		r.fail("admin-token", errors.New("must not start or end with white space"))
	}
	a.HealthBasePath = "/" + strings.Trim(strings.TrimSpace(r.str("health-base-path")), "/")
	switch {
	case a.HealthBasePath == "/":
		r.fail("health-base-path", errors.New("must not be the root path: the status page lives there"))
	case strings.ContainsAny(a.HealthBasePath, "{}?# \t"):
		r.fail("health-base-path", fmt.Errorf("%q: want a plain path such as /health", a.HealthBasePath))
	}
	if a.ShutdownGrace < 0 {
		r.fail("shutdown-grace", errors.New("must not be negative"))
	}
	if a.Health.Timeout > a.Health.Interval {
		r.fail("dependency-check-timeout", fmt.Errorf("must not exceed dependency-check-interval (%s)", a.Health.Interval))
	}

	names := r.list("http-servers")
	seen := map[string]bool{}
	addrs := map[string]string{}
	if a.Addr != "" {
		addrs[a.Addr] = "admin-addr"
	}
	for _, name := range names {
		switch {
		case !serverNameRE.MatchString(name):
			r.fail("http-servers", fmt.Errorf("%q: a server name is letters, digits, '-' and '_'", name))
			continue
		case seen[strings.ToLower(name)]:
			r.fail("http-servers", fmt.Errorf("%q is listed twice", name))
			continue
		}
		seen[strings.ToLower(name)] = true
		name = strings.ToLower(name) // viper lower-cases section names
		key := "http." + name
		s := HTTPServer{
			Name:    name,
			Address: strings.TrimSpace(r.strOr(key+".address", httpServerDefaults.Address)),
		}
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			r.fail(key+".address", fmt.Errorf("%q is not host:port: %w", s.Address, err))
		}
		if other, ok := addrs[s.Address]; ok {
			r.fail(key+".address", fmt.Errorf("%q is already used by %s", s.Address, other))
		}
		addrs[s.Address] = key + ".address"
		s.EnableProf = r.boolOr(key+".enable-prof", httpServerDefaults.EnableProf)
		s.EnableExpvar = r.boolOr(key+".enable-expvar", httpServerDefaults.EnableExpvar)
		s.EnableIngestion = r.boolOr(key+".enable-ingestion", httpServerDefaults.EnableIngestion)
		s.EnableHealthcheck = r.boolOr(key+".enable-healthcheck", httpServerDefaults.EnableHealthcheck)
		a.HTTPServers = append(a.HTTPServers, s)
	}
	// A [http.<name>] section that http-servers does not list would be
	// silently ignored: refuse it, it is almost certainly a mistake.
	listed := make([]string, 0, len(a.HTTPServers))
	for _, s := range a.HTTPServers {
		listed = append(listed, s.Name)
	}
	r.refuseUnlisted("http", "http-servers", listed)
}
