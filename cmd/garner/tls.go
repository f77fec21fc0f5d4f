package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/config"
	"github.com/garner-metrics/garner/pkg/health"
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

// reloadTLS re-reads every certificate, key and CA bundle in use (SIGHUP),
// whether or not the files changed, and logs each: what was loaded, and what
// did not load and so is still the previous one. New handshakes use what was
// loaded; the clients open new connections.
func reloadTLS(log logrus.FieldLogger) {
	for _, r := range tlsconf.Reload() {
		e := log.WithField("file", r.File)
		if r.KeyFile != "" {
			e = e.WithField("key_file", r.KeyFile)
		}
		switch {
		case r.Err != nil:
			e.WithError(r.Err).Error("SIGHUP: tls: cannot load the file; still using the previous one")
		case r.KeyFile != "":
			e.WithField("not_after", r.NotAfter.UTC().Format(time.RFC3339)).Info("SIGHUP: tls: re-read the certificate and key")
		default:
			e.Info("SIGHUP: tls: re-read the CA bundle")
		}
	}
}

// expiryWarning is how long before its expiry a certificate makes its health
// dependency fail (overall status degraded).
const expiryWarning = 7 * 24 * time.Hour

// watchExpiry reports the expiry of every certificate garner serves or
// presents: garner_tls_certificate_expiry_timestamp_seconds{key} and a soft
// health dependency "tls <key>" that fails within expiryWarning of it (so
// {base}/dependencies says degraded). The files were loaded by config.Load.
func watchExpiry(cfg *config.Config, log logrus.FieldLogger, reg prometheus.Registerer, h *health.Registry) error {
	certs := map[string]*tls.Config{}
	keep := func(key string, tc *tls.Config, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		certs[key] = tc
		return nil
	}
	server := func(key string, o tlsconf.ServerOptions) error {
		if !o.Enabled() {
			return nil
		}
		tc, err := tlsconf.ServerConfig(o, log)
		return keep(key, tc, err)
	}
	client := func(key string, o tlsconf.ClientOptions) error {
		if o.CertFile == "" {
			return nil
		}
		tc, err := tlsconf.ClientConfig(o, log)
		return keep(key, tc, err)
	}
	errs := []error{
		server("admin-tls-cert-file", cfg.TLS.Admin),
		server("tcp-tls-cert-file", cfg.TLS.TCP),
	}
	for name, o := range cfg.TLS.HTTP {
		errs = append(errs, server("http."+name+".tls-cert-file", o))
	}
	if cfg.Forward.ServerMode == config.ModeForwarder {
		errs = append(errs, client("http-transport.tls-cert-file", cfg.Forward.HTTPTransport.TLS))
	}
	for _, b := range cfg.Backends {
		switch b {
		case "influxdb":
			errs = append(errs, client("influxdb.tls-cert-file", cfg.InfluxDB.TLS))
		case "datadog":
			errs = append(errs, client("datadog.tls-cert-file", cfg.Datadog.TLS))
		case "prometheus":
			errs = append(errs, client("prometheus.tls-cert-file", cfg.Prometheus.TLS))
		case "otlp":
			errs = append(errs, client("otlp.tls-cert-file", cfg.OTLP.TLS))
		case "exporter":
			errs = append(errs, server("exporter.tls-cert-file", cfg.Exporter.TLS))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(certs) == 0 {
		return nil
	}
	expiry := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "garner_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate garner serves or presents expires (Unix time), by the key naming its file; re-read when the file changes.",
	}, []string{"key"})
	reg.MustRegister(expiry)
	for key, tc := range certs {
		g := expiry.WithLabelValues(key)
		leaf := func() *x509.Certificate {
			l := tlsconf.Leaf(tc)
			if l != nil {
				g.Set(float64(l.NotAfter.Unix()))
			}
			return l
		}
		leaf()
		if h == nil {
			continue
		}
		err := h.Register("tls "+key, health.Soft, func(context.Context) error {
			l := leaf()
			if l == nil {
				return errors.New("no certificate loaded")
			}
			if left := time.Until(l.NotAfter); left < expiryWarning {
				return fmt.Errorf("certificate %q expires at %s (in %s); renew it", l.Subject.CommonName, l.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Minute))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
