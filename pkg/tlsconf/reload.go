package tlsconf

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Every key pair and CA bundle of a config built by ServerConfig,
// ClientConfig or NewClient, for Reload. Weak: a config no longer used
// (one config.Load built to check the files) drops out.
var registry struct {
	mu    sync.Mutex
	pairs []weak.Pointer[keyPair]
	cas   []weak.Pointer[caFile]
}

func track[T keyPair | caFile](p *T) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	switch p := any(p).(type) {
	case *keyPair:
		registry.pairs = append(live(registry.pairs), weak.Make(p))
	case *caFile:
		registry.cas = append(live(registry.cas), weak.Make(p))
	}
}

// live drops the pointers whose value is gone.
func live[T any](ps []weak.Pointer[T]) []weak.Pointer[T] {
	return slices.DeleteFunc(ps, func(p weak.Pointer[T]) bool { return p.Value() == nil })
}

// Reloaded is what Reload did with one certificate and key, or one CA bundle.
type Reloaded struct {
	// File is the certificate file or the CA bundle; KeyFile the
	// certificate's key ("" for a CA bundle).
	File, KeyFile string
	// NotAfter is the expiry of the certificate loaded (zero for a CA
	// bundle, or when Err is set).
	NotAfter time.Time
	// Err is why the files did not load: the previous ones stay in use.
	Err error
}

// Reload re-reads every certificate, key and CA file of every config built
// by ServerConfig, ClientConfig or NewClient that is still in use, whether
// or not the files changed (for SIGHUP: a file replaced with the same
// modification time and size is taken too). Files used by several configs
// are read once. A file that does not load keeps the previous one in use.
// New handshakes use what was loaded; Client round trippers open new
// connections. It returns what it did, sorted by file.
func Reload() []Reloaded {
	registry.mu.Lock()
	registry.pairs, registry.cas = live(registry.pairs), live(registry.cas)
	var pairs []*keyPair
	for _, p := range registry.pairs {
		if v := p.Value(); v != nil {
			pairs = append(pairs, v)
		}
	}
	var cas []*caFile
	for _, p := range registry.cas {
		if v := p.Value(); v != nil {
			cas = append(cas, v)
		}
	}
	registry.mu.Unlock()

	var out []Reloaded
	byFiles := map[[2]string][]*keyPair{}
	for _, kp := range pairs {
		k := [2]string{kp.certFile, kp.keyFile}
		byFiles[k] = append(byFiles[k], kp)
	}
	for files, kps := range byFiles {
		cs, _ := stat(files[0])
		ks, _ := stat(files[1])
		cert, err := load(files[0], files[1])
		r := Reloaded{File: files[0], KeyFile: files[1], Err: err}
		if err == nil {
			r.NotAfter = cert.Leaf.NotAfter
		}
		for _, kp := range kps {
			kp.set(cert, cs, ks)
		}
		out = append(out, r)
	}
	byPath := map[string][]*caFile{}
	for _, ca := range cas {
		byPath[ca.path] = append(byPath[ca.path], ca)
	}
	for path, cs := range byPath {
		st, _ := stat(path)
		pool, err := loadPool(cs[0].field, path)
		for _, c := range cs {
			c.set(pool, st)
		}
		out = append(out, Reloaded{File: path, Err: err})
	}
	slices.SortFunc(out, func(a, b Reloaded) int { return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.KeyFile, b.KeyFile)) })
	return out
}

// set puts a pair loaded by Reload in use (nil: it did not load, keep the
// one in use), with the stamps of the files it was read from.
func (kp *keyPair) set(cert *tls.Certificate, cs, ks stamp) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	kp.certStamp, kp.keyStamp = cs, ks
	swap(&kp.cert, cert, &kp.gen)
}

// set puts a bundle loaded by Reload in use (nil: keep the one in use).
func (c *caFile) set(pool *x509.CertPool, st stamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stamp = st
	swap(&c.pool, pool, &c.gen)
}

// swap puts v in *cur and counts a generation, unless v is nil (it did not
// load: the one in use stays).
func swap[T any](cur **T, v *T, gen *atomic.Uint64) {
	if v != nil {
		*cur = v
		gen.Add(1)
	}
}
