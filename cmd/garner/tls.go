package main

import (
	"crypto/tls"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// serverTLS builds a listener's TLS config from its options (nil when TLS is
// off). config.Load already loaded the files; an error here means one changed
// since, and names key, the listener's certificate key.
func serverTLS(o tlsconf.ServerOptions, key string, log logrus.FieldLogger) (*tls.Config, error) {
	if !o.Enabled() {
		return nil, nil
	}
	tc, err := tlsconf.ServerConfig(o, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return tc, nil
}
