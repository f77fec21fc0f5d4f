package config

import (
	"errors"
	"slices"
	"strings"

	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// TLS is the certificate configuration of garner's listeners. (The client
// side lives in each client's options, next to the rest of its section:
// Forward.HTTPTransport.TLS, InfluxDB.TLS, Datadog.TLS, Prometheus.TLS,
// OTLP.TLS.) Every file is loaded at Load, so a missing,
// unreadable or mismatched file fails the start naming its key; the servers
// and clients re-read the files when they change and on SIGHUP (see
// pkg/tlsconf and SECURITY.md).
type TLS struct {
	// Admin is the admin server's (admin-addr) HTTPS: admin-tls-cert-file →
	// CertFile, admin-tls-key-file → KeyFile, admin-tls-client-ca-file →
	// ClientCAFile. Zero = plain HTTP.
	Admin tlsconf.ServerOptions
	// TCP is the TCP statsd listener's (tcp-metrics-addr) TLS:
	// tcp-tls-cert-file, tcp-tls-key-file, tcp-tls-client-ca-file. Zero =
	// plain TCP.
	TCP tlsconf.ServerOptions
	// HTTP holds the TLS of each [http.<name>] server that sets any of
	// tls-cert-file, tls-key-file, tls-client-ca-file, by server name
	// (lower case, as Admin.HTTPServers). A server not in it is plain HTTP.
	HTTP map[string]tlsconf.ServerOptions
}

var tlsKeys = slices.Concat(
	serverTLSKeys("tcp-", true,
		"PEM certificate (chain, leaf first) the TCP statsd listener (tcp-metrics-addr) serves TLS with; set with tcp-tls-key-file. A client speaking plaintext, or failing the handshake, is closed and counted in garner_tls_handshake_errors_total{listener=\"tcp\"}. Re-read when the file changes and on SIGHUP. Empty = plain TCP",
		"PEM private key of tcp-tls-cert-file",
		"PEM CA bundle: TCP statsd clients must then present a certificate from one of these CAs (mutual TLS). Re-read when the file changes and on SIGHUP. Empty = no client certificate asked"),
	serverTLSKeys("admin-", true,
		"PEM certificate (chain, leaf first) admin-addr serves HTTPS with; set with admin-tls-key-file. Re-read when the file changes and on SIGHUP (a broken new pair keeps the old one, logged). Empty = plain HTTP",
		"PEM private key of admin-tls-cert-file",
		"PEM CA bundle: admin-addr then requires a client certificate from one of these CAs (mutual TLS; forwarders with http-transport.tls-cert-file). Re-read when the file changes and on SIGHUP. Empty = no client certificate asked"),
	serverTLSKeys("http.*.", false,
		"PEM certificate this server serves HTTPS with; set with tls-key-file. Re-read when the file changes and on SIGHUP. Empty = plain HTTP",
		"PEM private key of tls-cert-file",
		"PEM CA bundle: this server then requires a client certificate from one of these CAs (mutual TLS; e.g. ingestion only from forwarders holding one). Re-read when the file changes and on SIGHUP. Empty = none asked"),
	clientTLSKeys("http-transport.",
		"Forwarder mode: PEM CA bundle the aggregators' certificates must chain to (https:// api-endpoint); re-read when the file changes and on SIGHUP (new connections use it). Empty = the system roots",
		"Forwarder mode: PEM client certificate presented to the aggregators (mutual TLS); set with tls-key-file. Re-read when the file changes and on SIGHUP",
		"Forwarder mode: PEM private key of tls-cert-file",
		"Forwarder mode: name the aggregators' certificates must hold, when not the api-endpoint host (e.g. endpoints given as IP addresses); empty = the host"),
	backendTLSKeys(),
)

// serverTLSKeys declares the three keys of a listener's TLS under prefix
// ("tcp-", "http.*."), with their help; serverTLS reads them.
func serverTLSKeys(prefix string, flag bool, certUsage, keyUsage, clientCAUsage string) []key {
	return []key{
		{prefix + "tls-cert-file", kString, "", certUsage, flag, nil},
		{prefix + "tls-key-file", kString, "", keyUsage, flag, nil},
		{prefix + "tls-client-ca-file", kString, "", clientCAUsage, flag, nil},
	}
}

// tlsBackends are the HTTP backends with client TLS keys, each the same four
// (hyphenated in every section, datadog's and otlp's too).
var tlsBackends = []string{"influxdb", "datadog", "prometheus", "otlp"}

func backendTLSKeys() []key {
	var out []key
	for _, b := range tlsBackends {
		out = append(out, clientTLSKeys(b+".",
			"PEM CA bundle the "+b+" server's certificate must chain to (https:// URLs); re-read when the file changes and on SIGHUP (new connections use it). Empty = the system roots",
			"PEM client certificate presented to the "+b+" server (mutual TLS); set with tls-key-file. Re-read when the file changes and on SIGHUP",
			"PEM private key of "+b+".tls-cert-file",
			"Name the "+b+" server's certificate must hold, when not the URL's host; empty = the host")...)
	}
	return out
}

// clientTLSKeys declares the four keys of a client's TLS under prefix
// ("http-transport.", "influxdb."), with their help; clientTLS reads them.
func clientTLSKeys(prefix, caUsage, certUsage, keyUsage, serverNameUsage string) []key {
	return []key{
		{prefix + "tls-ca-file", kString, "", caUsage, false, nil},
		{prefix + "tls-cert-file", kString, "", certUsage, false, nil},
		{prefix + "tls-key-file", kString, "", keyUsage, false, nil},
		{prefix + "tls-server-name", kString, "", serverNameUsage, false, nil},
	}
}

// clientTLS reads the four client TLS keys under prefix ("http-transport.",
// "influxdb.") and loads their files, failing the key of a bad one.
func (r *reader) clientTLS(prefix string) tlsconf.ClientOptions {
	o := tlsconf.ClientOptions{
		CAFile:     strings.TrimSpace(r.str(prefix + "tls-ca-file")),
		CertFile:   strings.TrimSpace(r.str(prefix + "tls-cert-file")),
		KeyFile:    strings.TrimSpace(r.str(prefix + "tls-key-file")),
		ServerName: strings.TrimSpace(r.str(prefix + "tls-server-name")),
	}
	if o.Enabled() {
		err := tlsconf.CheckClient(o)
		r.failTLS(err, tlsFieldKeys{tlsconf.FieldCA: prefix + "tls-ca-file", tlsconf.FieldCert: prefix + "tls-cert-file", tlsconf.FieldKey: prefix + "tls-key-file"})
	}
	return o
}

// tlsFieldKeys maps a tlsconf.FileError field onto the key that names the file.
type tlsFieldKeys map[string]string

// serverTLS reads the three server TLS keys under prefix ("admin-",
// "http.<name>.").
func (r *reader) serverTLS(prefix string) tlsconf.ServerOptions {
	return tlsconf.ServerOptions{
		CertFile:     strings.TrimSpace(r.str(prefix + "tls-cert-file")),
		KeyFile:      strings.TrimSpace(r.str(prefix + "tls-key-file")),
		ClientCAFile: strings.TrimSpace(r.str(prefix + "tls-client-ca-file")),
	}
}

// checkServerTLS loads the files of o, read from the keys under prefix,
// failing the key of a bad one.
func (r *reader) checkServerTLS(prefix string, o tlsconf.ServerOptions) {
	err := tlsconf.CheckServer(o)
	r.failTLS(err, tlsFieldKeys{tlsconf.FieldCert: prefix + "tls-cert-file", tlsconf.FieldKey: prefix + "tls-key-file", tlsconf.FieldClientCA: prefix + "tls-client-ca-file"})
}

func (c *Config) loadTLS(r *reader) {
	c.TLS.Admin = r.serverTLS("admin-")
	if o := c.TLS.Admin; o.Enabled() {
		if c.Admin.Addr == "" {
			r.fail("admin-tls-cert-file", errors.New("admin-addr is empty: there is no admin server to serve TLS on"))
		}
		r.checkServerTLS("admin-", o)
	}

	c.TLS.TCP = r.serverTLS("tcp-")
	if o := c.TLS.TCP; o.Enabled() {
		if c.TCPMetricsAddr == "" {
			r.fail("tcp-tls-cert-file", errors.New("tcp-metrics-addr is empty: there is no TCP listener to serve TLS on"))
		}
		r.checkServerTLS("tcp-", o)
	}

	for _, srv := range c.Admin.HTTPServers {
		k := "http." + srv.Name + "."
		o := r.serverTLS(k)
		if !o.Enabled() {
			continue
		}
		if c.TLS.HTTP == nil {
			c.TLS.HTTP = map[string]tlsconf.ServerOptions{}
		}
		c.TLS.HTTP[srv.Name] = o
		r.checkServerTLS(k, o)
	}

	c.Forward.HTTPTransport.TLS = r.clientTLS("http-transport.")
	c.InfluxDB.TLS = r.clientTLS("influxdb.")
	c.Datadog.TLS = r.clientTLS("datadog.")
	c.Prometheus.TLS = r.clientTLS("prometheus.")
	c.OTLP.TLS = r.clientTLS("otlp.")
}

// failTLS records err from tlsconf against the key of the file it is about.
func (r *reader) failTLS(err error, keys tlsFieldKeys) {
	if err == nil {
		return
	}
	var fe *tlsconf.FileError
	if errors.As(err, &fe) && keys[fe.Field] != "" {
		r.fail(keys[fe.Field], err)
		return
	}
	for _, k := range keys {
		r.fail(k, err)
		return
	}
}
