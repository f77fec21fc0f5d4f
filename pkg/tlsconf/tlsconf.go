// Package tlsconf builds the *tls.Config of garner's TLS servers and clients
// from PEM files, and keeps the certificate they serve or present current:
// each handshake checks the files' modification time and size, and when
// either changed it loads the new pair. A new pair that does not load (half
// written, key not matching) is logged and the old pair stays in use, so a
// rotation never breaks the listener; a later change is tried again.
//
// A server's client CA bundle is re-read the same way. A client's CA bundle
// and certificate are re-read when they change by the http.RoundTripper of
// Client (new connections use the new files). Reload re-reads every file of
// every config in use whether or not it changed (garner's SIGHUP).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// MinVersion is the oldest TLS version garner speaks, as server and client.
const MinVersion = tls.VersionTLS12

// ServerOptions names the files of a TLS server. The zero value means plain
// TCP (no TLS).
type ServerOptions struct {
	// CertFile and KeyFile are the PEM certificate (chain, leaf first) and
	// private key the server presents. Both or neither. Default "" (no TLS).
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, is a PEM bundle of the CAs whose certificates
	// clients must present: a client without one is refused at the handshake.
	// Default "" (clients are not asked for a certificate).
	ClientCAFile string
}

// Enabled reports whether any file is set, that is whether TLS is wanted.
func (o ServerOptions) Enabled() bool {
	return o.CertFile != "" || o.KeyFile != "" || o.ClientCAFile != ""
}

// ClientOptions names the files of a TLS client. The zero value verifies the
// server against the system roots and presents no certificate.
type ClientOptions struct {
	// CAFile is a PEM bundle of the CAs the server's certificate must chain
	// to. Default "" (the system roots).
	CAFile string
	// CertFile and KeyFile are the PEM certificate and key the client
	// presents when the server asks (mutual TLS). Both or neither. Default "".
	CertFile string
	KeyFile  string
	// ServerName is the name the server's certificate must hold, when it is
	// not the host of the URL dialled. Default "" (the host dialled).
	ServerName string
}

// Enabled reports whether any option is set.
func (o ClientOptions) Enabled() bool {
	return o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.ServerName != ""
}

// Which file of the options a FileError is about.
const (
	FieldCert     = "cert"
	FieldKey      = "key"
	FieldCA       = "ca"
	FieldClientCA = "client-ca"
)

// FileError is a file of the options that is missing, unreadable or does not
// hold what it should. Field is one of the Field constants, so the config
// layer can name its key.
type FileError struct {
	Field string
	Path  string
	Err   error
}

func (e *FileError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s file: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s file %q: %v", e.Field, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ServerConfig builds a server config from o, loading every file now, so a
// bad file fails at start. The certificate is re-read when its files change.
// log receives one line per rotation and per broken new pair.
func ServerConfig(o ServerOptions, log logrus.FieldLogger) (*tls.Config, error) {
	if err := serverPairSet(o); err != nil {
		return nil, err
	}
	kp, err := newKeyPair(o.CertFile, o.KeyFile, log)
	if err != nil {
		return nil, err
	}
	track(kp)
	cfg := &tls.Config{
		MinVersion: MinVersion,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.current(), nil
		},
	}
	if o.ClientCAFile != "" {
		ca, err := newCAFile(FieldClientCA, o.ClientCAFile, log)
		if err != nil {
			return nil, err
		}
		track(ca)
		cfg.ClientCAs = ca.pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		// Each handshake gets the client CAs as they are on disk now.
		base := cfg.Clone()
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			c.ClientCAs = ca.current()
			return c, nil
		}
	}
	return cfg, nil
}

// ClientConfig builds a client config from o, loading every file now. The
// client certificate, if any, is re-read when its files change; the CA
// bundle is the one read now (a Client's RoundTripper follows its changes).
func ClientConfig(o ClientOptions, log logrus.FieldLogger) (*tls.Config, error) {
	c, err := NewClient(o, log)
	if err != nil {
		return nil, err
	}
	return c.Config(), nil
}

// serverPairSet says which of a server's certificate and key is missing.
func serverPairSet(o ServerOptions) error {
	switch {
	case o.CertFile == "":
		return &FileError{Field: FieldCert, Err: errors.New("a TLS server needs a certificate and a key: set both")}
	case o.KeyFile == "":
		return &FileError{Field: FieldKey, Err: errors.New("a TLS server needs a certificate and a key: set both")}
	}
	return nil
}

// CheckServer loads the files of o as ServerConfig would, and returns its
// error; nothing is kept (for validating a configuration).
func CheckServer(o ServerOptions) error {
	if err := serverPairSet(o); err != nil {
		return err
	}
	if _, err := load(o.CertFile, o.KeyFile); err != nil {
		return err
	}
	if o.ClientCAFile != "" {
		if _, err := loadPool(FieldClientCA, o.ClientCAFile); err != nil {
			return err
		}
	}
	return nil
}

// CheckClient loads the files of o as ClientConfig would, and returns its
// error; nothing is kept.
func CheckClient(o ClientOptions) error {
	_, err := loadClient(o, nil)
	return err
}

func loadPool(field, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Field: field, Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, &FileError{Field: field, Path: path, Err: errors.New("no PEM certificate in it")}
	}
	return pool, nil
}

// stamp is what tells a rewritten file from the one loaded.
type stamp struct {
	mod  time.Time
	size int64
}

func stat(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// keyPair is a certificate and key loaded from two files, reloaded when
// either file's stamp changes. Safe for concurrent use.
type keyPair struct {
	certFile, keyFile string
	log               logrus.FieldLogger

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp stamp         // of the cert file last tried, loaded or not
	keyStamp  stamp         // of the key file last tried
	gen       atomic.Uint64 // pairs loaded after the first
}

func newKeyPair(certFile, keyFile string, log logrus.FieldLogger) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile, log: log}
	cs, ks, err := kp.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	kp.cert, kp.certStamp, kp.keyStamp = cert, cs, ks
	return kp, nil
}

// stamps returns the stamps of the cert and key files; an error is a
// FileError naming the file.
func (kp *keyPair) stamps() (cs, ks stamp, err error) {
	if cs, err = stat(kp.certFile); err != nil {
		return cs, ks, &FileError{Field: FieldCert, Path: kp.certFile, Err: err}
	}
	if ks, err = stat(kp.keyFile); err != nil {
		return cs, ks, &FileError{Field: FieldKey, Path: kp.keyFile, Err: err}
	}
	return cs, ks, nil
}

// load reads a pair and parses its leaf, so NotAfter is at hand.
func load(certFile, keyFile string) (*tls.Certificate, error) {
	if _, err := os.ReadFile(certFile); err != nil {
		return nil, &FileError{Field: FieldCert, Path: certFile, Err: err}
	}
	if _, err := os.ReadFile(keyFile); err != nil {
		return nil, &FileError{Field: FieldKey, Path: keyFile, Err: err}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &FileError{Field: FieldCert, Path: certFile, Err: fmt.Errorf("with key %q: %w", keyFile, err)}
	}
	return &cert, nil
}

// current returns the pair to use for a handshake, loading the files first
// if they changed since they were last tried.
func (kp *keyPair) current() *tls.Certificate {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	cs, ks, err := kp.stamps()
	if err != nil || (cs == kp.certStamp && ks == kp.keyStamp) {
		// A file gone for a moment (being replaced) keeps the pair in use.
		return kp.cert
	}
	kp.certStamp, kp.keyStamp = cs, ks
	cert, err := load(kp.certFile, kp.keyFile)
	if err != nil {
		kp.log.WithError(err).WithField("cert_file", kp.certFile).
			Error("tls: cannot load the changed certificate and key; still using the previous pair")
		return kp.cert
	}
	swap(&kp.cert, cert, &kp.gen)
	kp.log.WithFields(logrus.Fields{"cert_file": kp.certFile, "not_after": cert.Leaf.NotAfter.UTC().Format(time.RFC3339)}).
		Info("tls: loaded the changed certificate and key")
	return kp.cert
}

// Leaf returns the certificate a config built by ServerConfig or
// ClientConfig serves or presents now (checking its files for a change
// first, as a handshake does), or nil when it has none.
func Leaf(cfg *tls.Config) *x509.Certificate {
	var c *tls.Certificate
	switch {
	case cfg.GetCertificate != nil:
		c, _ = cfg.GetCertificate(&tls.ClientHelloInfo{})
	case cfg.GetClientCertificate != nil:
		c, _ = cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
	}
	if c == nil {
		return nil
	}
	return c.Leaf
}

// caFile is a CA bundle (a server's client CAs, field FieldClientCA, or a
// client's, FieldCA), reloaded when the file's stamp changes; a bundle that
// does not load keeps the previous pool (logged). Safe for concurrent use.
type caFile struct {
	field, path string
	log         logrus.FieldLogger

	mu    sync.Mutex
	pool  *x509.CertPool
	stamp stamp         // of the file last tried
	gen   atomic.Uint64 // bundles loaded after the first
}

func newCAFile(field, path string, log logrus.FieldLogger) (*caFile, error) {
	st, err := stat(path)
	if err != nil {
		return nil, &FileError{Field: field, Path: path, Err: err}
	}
	pool, err := loadPool(field, path)
	if err != nil {
		return nil, err
	}
	return &caFile{field: field, path: path, log: log, pool: pool, stamp: st}, nil
}

func (c *caFile) current() *x509.CertPool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := stat(c.path)
	if err != nil || st == c.stamp {
		return c.pool
	}
	c.stamp = st
	pool, err := loadPool(c.field, c.path)
	if err != nil {
		c.log.WithError(err).Error("tls: cannot load the changed CA bundle; still using the previous one")
		return c.pool
	}
	swap(&c.pool, pool, &c.gen)
	c.log.WithField("ca_file", c.path).Info("tls: loaded the changed CA bundle")
	return c.pool
}
