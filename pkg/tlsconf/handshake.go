package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a server-side handshake fails, the reason label of
// garner_tls_handshake_errors_total.
const (
	ReasonNotTLS       = "not_tls"          // plaintext (or garbage) to a TLS port
	ReasonNoClientCert = "no_client_cert"   // mutual TLS, and the client presented none
	ReasonExpiredCert  = "expired_cert"     // the client's certificate is expired or not yet valid
	ReasonBadCert      = "bad_cert"         // the client's certificate does not verify (unknown CA, wrong usage)
	ReasonVersion      = "protocol_version" // the client offered only versions below TLS 1.2
	ReasonTimeout      = "timeout"          // the handshake did not finish in time
	ReasonClosed       = "closed"           // the client hung up during the handshake
	ReasonOther        = "other"
)

// Reasons lists every reason, for looking label children up once.
var Reasons = []string{ReasonNotTLS, ReasonNoClientCert, ReasonExpiredCert, ReasonBadCert, ReasonVersion, ReasonTimeout, ReasonClosed, ReasonOther}

// HandshakeReason classifies the error of a server-side tls.Conn.Handshake.
func HandshakeReason(err error) string {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &rh):
		return ReasonNotTLS
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return ReasonExpiredCert
	case errors.As(err, &cv):
		return ReasonBadCert
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonClosed
	}
	// crypto/tls has no typed errors for these.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "didn't provide a certificate"):
		return ReasonNoClientCert
	case strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "protocol version"):
		return ReasonVersion
	case strings.Contains(msg, "connection reset"):
		return ReasonClosed
	}
	return ReasonOther
}

// HandshakeErrors returns garner_tls_handshake_errors_total{listener,reason}
// registered with reg; every TLS listener shares it, so a second call with
// the same reg returns the collector registered first.
func HandshakeErrors(reg prometheus.Registerer) *prometheus.CounterVec {
	return sharedCounterVec(reg, prometheus.CounterOpts{
		Name: "garner_tls_handshake_errors_total",
		Help: "TLS handshakes refused or failed, by listener and reason (not_tls, no_client_cert, expired_cert, bad_cert, protocol_version, timeout, closed, other).",
	}, "listener", "reason")
}

// sharedCounterVec registers a counter vector with reg, or returns the one
// of that name reg already has; a nil reg registers nothing.
func sharedCounterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(opts, labels)
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err) // a different collector with this name: a bug
	}
	return c
}
