package tlsconf

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// HandshakeTimeout bounds the TLS handshake of a client of a Listener.
const HandshakeTimeout = 10 * time.Second

// Listener wraps inner so that Accept returns only connections whose TLS
// handshake (with cfg) succeeded. Each handshake runs in its own goroutine,
// bounded by HandshakeTimeout, so a slow or hostile client holds up nobody.
// A failed one is passed to onError (with the raw connection, still open,
// and the error; HandshakeReason classifies it), then its connection is
// closed. Close closes inner and every connection not yet accepted; the
// handshake goroutines end within HandshakeTimeout of it. Safe for
// concurrent use.
func Listener(inner net.Listener, cfg *tls.Config, onError func(c net.Conn, err error)) net.Listener {
	l := &listener{Listener: inner, cfg: cfg, onError: onError, ready: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

type listener struct {
	net.Listener
	cfg     *tls.Config
	onError func(net.Conn, error)
	ready   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func (l *listener) acceptLoop() {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			select { // out of file descriptors and the like: wait and retry
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		go l.handshake(c)
	}
}

func (l *listener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	err := tc.Handshake()
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		if l.onError != nil {
			l.onError(c, err)
		}
		_ = c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		_ = tc.Close()
	}
}

// Accept returns the next client that completed its handshake, or
// net.ErrClosed once the listener is closed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener; it may be called more than once.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}
