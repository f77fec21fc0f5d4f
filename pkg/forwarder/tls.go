package forwarder

import (
	"crypto/tls"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// clientTLS is the TLS config of every upstream's transport: Options.TLS
// (a private CA, a client certificate re-read when its files change, a
// server name) or, unset, the system roots; TLS 1.2 at least either way.
// Each upstream's transport takes a Clone (http.Transport adds to it); the
// clones share the certificate reloader.
func clientTLS(o tlsconf.ClientOptions, log logrus.FieldLogger) (*tls.Config, error) {
	if !o.Enabled() {
		return &tls.Config{MinVersion: tlsconf.MinVersion}, nil
	}
	cfg, err := tlsconf.ClientConfig(o, log)
	if err != nil {
		return nil, fmt.Errorf("forwarder tls: %w", err)
	}
	return cfg, nil
}
