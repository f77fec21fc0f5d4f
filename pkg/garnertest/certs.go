package garnertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a certificate authority made at test time, for real TLS handshakes
// over loopback. Nothing it signs is valid outside the test that made it.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// Pair names the PEM files of a certificate and its key written by
// CA.WritePair, and the certificate they hold.
type Pair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// NewCA makes a self-signed CA named name, valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, key: key, der: der}
}

// WriteCA writes the CA's certificate as PEM to dir/name and returns the path.
func (ca *CA) WriteCA(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	writePEM(t, path, "CERTIFICATE", ca.der)
	return path
}

// WritePair signs a certificate for name (the common name, and a DNS name;
// it also holds 127.0.0.1 and localhost so a server pair fits loopback),
// good for both server and client authentication, valid until notAfter, and
// writes it and its key to dir/name.crt and dir/name.key.
func (ca *CA) WritePair(t testing.TB, dir, name string, notAfter time.Time) Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Hour)
	if !notAfter.After(notBefore) {
		notBefore = notAfter.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"), Cert: cert}
	writePEM(t, p.CertFile, "CERTIFICATE", der)
	writePEM(t, p.KeyFile, "PRIVATE KEY", keyDER)
	return p
}

// RewritePair writes a new pair over p's files (same name, valid until
// notAfter) keeping their sizes and modification times, as a rotation
// within the same second of a same-size certificate would: only a forced
// re-read (SIGHUP) can tell. It returns the pair now in the files.
func (ca *CA) RewritePair(t testing.TB, p Pair, notAfter time.Time) Pair {
	t.Helper()
	stat := func(path string) os.FileInfo {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	oldCert, oldKey := stat(p.CertFile), stat(p.KeyFile)
	name := strings.TrimSuffix(filepath.Base(p.CertFile), ".crt")
	dir := t.TempDir()
	for range 200 { // ECDSA signatures vary by a few bytes: find a pair of the same sizes
		n := ca.WritePair(t, dir, name, notAfter)
		if stat(n.CertFile).Size() != oldCert.Size() || stat(n.KeyFile).Size() != oldKey.Size() {
			continue
		}
		for from, to := range map[string]os.FileInfo{n.CertFile: oldCert, n.KeyFile: oldKey} {
			if err := os.Chtimes(from, to.ModTime(), to.ModTime()); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(n.CertFile, p.CertFile); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(n.KeyFile, p.KeyFile); err != nil {
			t.Fatal(err)
		}
		return Pair{CertFile: p.CertFile, KeyFile: p.KeyFile, Cert: n.Cert}
	}
	t.Fatal("no new pair of the same sizes in 200 tries")
	return Pair{}
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writePEM writes through a temporary file and a rename, so a reader never
// sees half a file (as cert-manager and Vault agent do).
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
