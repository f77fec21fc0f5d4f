package forwarder

import (
	"fmt"
	"net/http"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// clientTLS is the TLS client every upstream's transport shares: Options.TLS
// (a private CA, a client certificate, a server name) or, unset, the system
// roots; TLS 1.2 at least either way. Its files are re-read when they
// change and on SIGHUP (tlsconf.Reload).
func clientTLS(o tlsconf.ClientOptions, log logrus.FieldLogger) (*tlsconf.Client, error) {
	c, err := tlsconf.NewClient(o, log)
	if err != nil {
		return nil, fmt.Errorf("forwarder tls: %w", err)
	}
	return c, nil
}

// transport is tr under the forwarder's TLS client: new connections use its
// files as they are now, and a failed handshake is counted in
// garner_tls_client_handshake_errors_total{client="forwarder",reason} and
// logged with a rate limit.
func (cfg upstreamConfig) transport(tr *http.Transport, log logrus.FieldLogger) http.RoundTripper {
	return cfg.tls.RoundTripper(tr, Name, cfg.tlsErrs, log)
}
