package tlsconf

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/ratelog"
)

// Client is the TLS side of an HTTP client (garner's forwarder, the HTTP
// backends): its files loaded by NewClient and kept current. The client
// certificate is re-read when its files change (checked at each handshake
// and at each request through RoundTripper), the CA bundle when it changes
// (checked at each request through RoundTripper), and both on Reload. Safe
// for concurrent use.
type Client struct {
	base *tls.Config // MinVersion, ServerName, GetClientCertificate; RootCAs added by Config
	ca   *caFile     // nil: the system roots
	kp   *keyPair    // nil: no client certificate
}

// NewClient loads the files of o now, so that a bad file fails at start.
// The zero ClientOptions is a client of the system roots without a
// certificate.
func NewClient(o ClientOptions, log logrus.FieldLogger) (*Client, error) {
	c, err := loadClient(o, log)
	if err != nil {
		return nil, err
	}
	if c.ca != nil {
		track(c.ca)
	}
	if c.kp != nil {
		track(c.kp)
	}
	return c, nil
}

// loadClient is NewClient without registering the files for Reload.
func loadClient(o ClientOptions, log logrus.FieldLogger) (*Client, error) {
	c := &Client{base: &tls.Config{MinVersion: MinVersion, ServerName: o.ServerName}}
	if o.CAFile != "" {
		ca, err := newCAFile(FieldCA, o.CAFile, log)
		if err != nil {
			return nil, err
		}
		c.ca = ca
	}
	switch {
	case o.CertFile == "" && o.KeyFile == "":
	case o.CertFile == "":
		return nil, &FileError{Field: FieldCert, Err: errors.New("a client key needs its certificate: set both")}
	case o.KeyFile == "":
		return nil, &FileError{Field: FieldKey, Err: errors.New("a client certificate needs its key: set both")}
	default:
		kp, err := newKeyPair(o.CertFile, o.KeyFile, log)
		if err != nil {
			return nil, err
		}
		c.kp = kp
		c.base.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return kp.current(), nil
		}
	}
	return c, nil
}

// Config returns a new TLS config for new connections: the CA bundle as it
// is on disk now (checked for a change first), the client certificate
// re-read at each handshake when its files change.
func (c *Client) Config() *tls.Config {
	cfg := c.base.Clone()
	if c.ca != nil {
		cfg.RootCAs = c.ca.current()
	}
	return cfg
}

// generation checks the files for a change and counts the loads since the
// start: a new value means new connections should use new files.
func (c *Client) generation() uint64 {
	var g uint64
	if c.ca != nil {
		c.ca.current()
		g += c.ca.gen.Load()
	}
	if c.kp != nil {
		c.kp.current()
		g += c.kp.gen.Load()
	}
	return g
}

// RoundTripper returns an http.RoundTripper that sends through a clone of
// base (whose TLSClientConfig is replaced by Config). When c's CA bundle or
// certificate changes (on disk, checked at each request, or by Reload), the
// next request goes through a new clone, so that new connections verify
// against the new bundle and present the new certificate, and the previous
// clone's idle connections are closed; requests in flight finish on theirs.
//
// A request that fails at the TLS handshake is counted in errs (from
// ClientHandshakeErrors; nil = not counted) as {client=name, reason} and
// logged to log at most 10 times a minute.
func (c *Client) RoundTripper(base *http.Transport, name string, errs *prometheus.CounterVec, log logrus.FieldLogger) http.RoundTripper {
	rt := &roundTripper{c: c, base: base, name: name, log: log.WithField("client", name), logLim: ratelog.Every(time.Minute, 10)}
	if errs != nil {
		rt.errs = make(map[string]prometheus.Counter, len(ClientReasons))
		for _, r := range ClientReasons {
			rt.errs[r] = errs.WithLabelValues(name, r)
		}
	}
	rt.gen = c.generation()
	rt.cur = rt.build()
	return rt
}

type roundTripper struct {
	c      *Client
	base   *http.Transport
	name   string
	errs   map[string]prometheus.Counter // by reason
	log    logrus.FieldLogger
	logLim *ratelog.Limiter

	mu  sync.Mutex
	gen uint64
	cur *http.Transport
}

func (rt *roundTripper) build() *http.Transport {
	t := rt.base.Clone()
	t.TLSClientConfig = rt.c.Config()
	return t
}

// current is the transport for a new request: a new one when the files
// changed since the last was built.
func (rt *roundTripper) current() *http.Transport {
	g := rt.c.generation()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if g == rt.gen {
		return rt.cur
	}
	old := rt.cur
	rt.gen, rt.cur = g, rt.build()
	old.CloseIdleConnections()
	return rt.cur
}

// RoundTrip implements http.RoundTripper.
func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.current().RoundTrip(req)
	if err != nil && req.URL.Scheme == "https" {
		if reason, ok := clientHandshakeReason(err, rt.c.kp != nil); ok {
			if c := rt.errs[reason]; c != nil {
				c.Inc()
			}
			if e := rt.logLim.Entry(rt.log); e != nil {
				e.WithFields(logrus.Fields{"server": req.URL.Host, "reason": reason}).WithError(err).
					Warn("tls handshake with the server failed: nothing is sent on this connection")
			}
		}
	}
	return resp, err
}

// CloseIdleConnections closes the idle connections of the transport in use
// (http.Client.CloseIdleConnections calls it).
func (rt *roundTripper) CloseIdleConnections() {
	rt.mu.Lock()
	t := rt.cur
	rt.mu.Unlock()
	t.CloseIdleConnections()
}

// Reasons a client-side handshake fails, the reason label of
// garner_tls_client_handshake_errors_total. The first three are the
// server's verdict on garner's certificate, the next two garner's on the
// server's.
const (
	ReasonClientNoCert      = "no_client_cert"      // the server requires a client certificate and none is configured
	ReasonClientCertRefused = "client_cert_refused" // the server refused the client certificate (another CA, wrong usage)
	ReasonClientCertExpired = "client_cert_expired" // the server says the client certificate is expired
	ReasonServerExpired     = ReasonExpiredCert     // the server's certificate is expired or not yet valid
	ReasonServerBad         = ReasonBadCert         // the server's certificate does not verify (unknown CA, wrong name)
	// ReasonNotTLS, ReasonVersion, ReasonTimeout and ReasonOther as for servers:
	// a plaintext server, no common version, a handshake that did not finish
	// in time, another alert from the server.
)

// ClientReasons lists every reason of a client-side handshake failure.
var ClientReasons = []string{ReasonClientNoCert, ReasonClientCertRefused, ReasonClientCertExpired, ReasonServerExpired, ReasonServerBad, ReasonNotTLS, ReasonVersion, ReasonTimeout, ReasonOther}

// clientHandshakeReason classifies the error of a request (or a client-side
// handshake); ok is false when it is not a TLS handshake failure (a refused
// connection, a timeout before TLS, an HTTP error). presented says whether
// the client has a certificate to present.
func clientHandshakeReason(err error, presented bool) (reason string, ok bool) {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var op *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &cv):
		if HandshakeReason(cv) == ReasonExpiredCert {
			return ReasonServerExpired, true
		}
		return ReasonServerBad, true
	case errors.As(err, &rh) || strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return ReasonNotTLS, true
	case strings.Contains(msg, "TLS handshake timeout"):
		return ReasonTimeout, true
	case errors.As(err, &op) && op.Op == "remote error":
		// An alert from the server: crypto/tls has no exported type for it.
		alert := op.Err.Error()
		switch {
		case strings.Contains(alert, "certificate required"):
			return ReasonClientNoCert, true
		case strings.Contains(alert, "handshake failure") && !presented:
			return ReasonClientNoCert, true // TLS 1.2's way of saying so
		case strings.Contains(alert, "expired certificate"):
			return ReasonClientCertExpired, true
		case strings.Contains(alert, "unknown certificate authority"), strings.Contains(alert, "bad certificate"),
			strings.Contains(alert, "unsupported certificate"), strings.Contains(alert, "certificate unknown"),
			strings.Contains(alert, "revoked certificate"):
			return ReasonClientCertRefused, true
		case strings.Contains(alert, "protocol version"):
			return ReasonVersion, true
		}
		return ReasonOther, true
	case strings.Contains(msg, "tls: server selected unsupported protocol version"):
		return ReasonVersion, true
	}
	return "", false
}

// ClientHandshakeErrors returns
// garner_tls_client_handshake_errors_total{client,reason} registered with
// reg (nil: not registered); every client shares it, so a second call with
// the same reg returns the collector registered first.
func ClientHandshakeErrors(reg prometheus.Registerer) *prometheus.CounterVec {
	return sharedCounterVec(reg, prometheus.CounterOpts{
		Name: "garner_tls_client_handshake_errors_total",
		Help: "Requests of garner's HTTP clients (forwarder, backends) that failed at the TLS handshake, by client and reason (no_client_cert, client_cert_refused, client_cert_expired, expired_cert, bad_cert, not_tls, protocol_version, timeout, other).",
	}, "client", "reason")
}
