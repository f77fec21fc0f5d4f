package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// Admin is the HTTP side of garner: the admin server (admin-addr), gostatsd's
// named HTTP servers (http-servers + [http.<name>]), the health endpoints'
// base path and token, the dependency prober and the shutdown grace period.
type Admin struct {
	Addr            string // admin-addr: host:port; "" = no admin server
	EnableProf      bool   // /debug/pprof on admin-addr
	EnableExpvar    bool   // /expvar on admin-addr
	EnableIngestion bool   // forwarding ingestion (/v2/raw, ...) on admin-addr
	HealthBasePath  string // default "/health"; always starts with "/", no trailing "/"
	Token           string // bearer token for everything but the probes and /healthcheck; "" = none
	ShutdownGrace   time.Duration
	HTTPServers     []HTTPServer // in http-servers order

	DependencyInterval time.Duration // between two probes of one dependency
	DependencyTimeout  time.Duration // bound on one probe
	DependencyHistory  int           // up/down events kept per dependency
}

// HTTPServer is one [http.<name>] section; keys and defaults as gostatsd.
type HTTPServer struct {
	Name              string
	Address           string // default 127.0.0.1:8080
	EnableProf        bool   // default false
	EnableExpvar      bool   // default false
	EnableIngestion   bool   // default false
	EnableHealthcheck bool   // default true
}

var adminKeys = []key{
	{"admin-addr", kString, "127.0.0.1:8126", "Admin HTTP server (health, probes, /metrics, status page, see HTTP.md) host:port; empty = off. garner refuses to start (exit 2) when it is taken: another instance runs", true},
	{"admin-token", kString, "", "Bearer token required on every HTTP endpoint except the liveness/readiness/startup probes and /healthcheck (401 without it); empty = none. Prefer GARNER_ADMIN_TOKEN to a flag, which ps shows", true},
	{"enable-prof", kBool, false, "Serve /debug/pprof on admin-addr (one CPU profile or trace at a time; a concurrent one gets 429)", true},
	{"enable-expvar", kBool, false, "Serve /expvar on admin-addr", true},
	{"enable-ingestion", kBool, false, "Serve the forwarding ingestion endpoints (/v2/raw, /v3/raw, ...) on admin-addr, for an aggregator", true},
	{"health-base-path", kString, "/health", "Path under which the Kubernetes-style health endpoints live ({base}, {base}/live, {base}/ready, ...)", true},
	{"shutdown-grace", kDuration, 2 * time.Second, "On SIGTERM, readiness answers 503 at once and garner keeps ingesting this long (so load balancers take it out) before its listeners close and the final flush runs; 0 = none", true},
	{"http-servers", kList, "", "Names of gostatsd-style HTTP servers, space-separated; each is configured by its [http.<name>] section", true},
	// Defaults of dynamic keys are documentation only: loadAdmin applies them.
	{"http.*.address", kString, "127.0.0.1:8080", "host:port this server (named in http-servers) listens on", false},
	{"http.*.enable-prof", kBool, false, "Serve /debug/pprof (one CPU profile or trace at a time)", false},
	{"http.*.enable-expvar", kBool, false, "Serve /expvar", false},
	{"http.*.enable-ingestion", kBool, false, "Serve the forwarding ingestion endpoints (/v2/raw, /v3/raw, ...)", false},
	{"http.*.enable-healthcheck", kBool, true, "Serve /healthcheck, /deepcheck and the health-base-path endpoints", false},
	{"dependency-check-interval", kDuration, 10 * time.Second, "How often each dependency (backend, forward upstream) is probed in the background for the health endpoints", true},
	{"dependency-check-timeout", kDuration, 5 * time.Second, "Bound on one dependency probe; a slower answer counts as down (at most dependency-check-interval)", true},
	{"dependency-history", kInt, 100, "Up/down events kept per dependency for {base}/dependencies", true},
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
	a.Token = r.str("admin-token")
	if a.Token != strings.TrimSpace(a.Token) {
		r.fail("admin-token", errors.New("must not start or end with white space"))
	}
	a.EnableProf = r.bool("enable-prof")
	a.EnableExpvar = r.bool("enable-expvar")
	a.EnableIngestion = r.bool("enable-ingestion")
	a.HealthBasePath = "/" + strings.Trim(strings.TrimSpace(r.str("health-base-path")), "/")
	switch {
	case a.HealthBasePath == "/":
		r.fail("health-base-path", errors.New("must not be the root path: the status page lives there"))
	case strings.ContainsAny(a.HealthBasePath, "{}?# \t"):
		r.fail("health-base-path", fmt.Errorf("%q: want a plain path such as /health", a.HealthBasePath))
	}
	a.ShutdownGrace = r.duration("shutdown-grace")
	if a.ShutdownGrace < 0 {
		r.fail("shutdown-grace", errors.New("must not be negative"))
	}
	a.DependencyInterval = r.positiveDuration("dependency-check-interval")
	a.DependencyTimeout = r.positiveDuration("dependency-check-timeout")
	if a.DependencyTimeout > a.DependencyInterval {
		r.fail("dependency-check-timeout", fmt.Errorf("must not exceed dependency-check-interval (%s)", a.DependencyInterval))
	}
	a.DependencyHistory = r.positiveInt("dependency-history")

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
			Address: strings.TrimSpace(r.strOr(key+".address", "127.0.0.1:8080")),
		}
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			r.fail(key+".address", fmt.Errorf("%q is not host:port: %w", s.Address, err))
		}
		if other, ok := addrs[s.Address]; ok {
			r.fail(key+".address", fmt.Errorf("%q is already used by %s", s.Address, other))
		}
		addrs[s.Address] = key + ".address"
		s.EnableProf = r.boolOr(key+".enable-prof", false)
		s.EnableExpvar = r.boolOr(key+".enable-expvar", false)
		s.EnableIngestion = r.boolOr(key+".enable-ingestion", false)
		s.EnableHealthcheck = r.boolOr(key+".enable-healthcheck", true)
		a.HTTPServers = append(a.HTTPServers, s)
	}
	// A [http.<name>] section that http-servers does not list would be
	// silently ignored: refuse it, it is almost certainly a mistake.
	if m, ok := r.v.Get("http").(map[string]any); ok {
		for name := range m {
			if !seen[strings.ToLower(name)] {
				r.fail("http."+name, fmt.Errorf("section [http.%s] is not listed in http-servers (%q)", name, strings.Join(names, " ")))
			}
		}
	}
}
