package web

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/garner-metrics/garner/pkg/ratelog"
	"github.com/garner-metrics/garner/pkg/tlsconf"
)

// tlsListener makes ln serve TLS with l.TLS: only clients that complete the
// handshake reach net/http. A failed handshake is counted in
// garner_tls_handshake_errors_total{listener=<server name>,reason} and logged
// with a rate limit; a plain HTTP request gets a 400 saying to use https.
func (s *Server) tlsListener(l Listener, ln net.Listener) net.Listener {
	counts := make(map[string]prometheus.Counter, len(tlsconf.Reasons))
	var vec *prometheus.CounterVec
	if s.deps.Registerer != nil {
		vec = tlsconf.HandshakeErrors(s.deps.Registerer)
	} else {
		vec = tlsconf.HandshakeErrors(prometheus.NewRegistry())
	}
	for _, r := range tlsconf.Reasons {
		counts[r] = vec.WithLabelValues(l.Name, r)
	}
	lim := ratelog.Every(time.Minute, 10)
	log := s.log.WithField("http_server", l.Name)
	return tlsconf.Listener(ln, l.TLS, func(c net.Conn, err error) {
		reason := tlsconf.HandshakeReason(err)
		counts[reason].Inc()
		if e := lim.Entry(log); e != nil {
			e.WithError(err).WithFields(logrus.Fields{"remote": c.RemoteAddr().String(), "reason": reason}).
				Warn("tls handshake with an http client failed; closing it")
		}
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && looksLikeHTTP(rh.RecordHeader) {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\nThis server speaks HTTPS only: use an https:// URL.\n")
		}
	})
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}
