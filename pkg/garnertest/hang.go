package garnertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// HangingServer is an HTTP server on loopback that reads each request's
// body and never answers: a handler returns only when its client gives up
// (the request's context ends) or the test ends, when the server is closed.
func HangingServer(t testing.TB) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for the handlers
	return srv
}
