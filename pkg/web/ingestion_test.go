package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Mounted ingestion handlers: started and stopped with the Server.

func TestIngestion(t *testing.T) {
	env := start(t, Options{
		Listeners:   []Listener{adminListener(), {Name: "in", Ingestion: true}, {Name: "noin", Healthcheck: true}},
		MaxBodySize: 1024,
	}, nil)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	env.srv.HandleIngestion("POST /v2/raw", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.URL.Query().Get("slow") != "" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(strconv.FormatInt(n, 10)))
	}))
	if !env.srv.IngestionEnabled() {
		t.Fatal("IngestionEnabled = false")
	}
	post := func(addr, query string, size int) answer {
		return do(t, "POST", "http://"+addr+"/v2/raw"+query, "", strings.NewReader(strings.Repeat("x", size)))
	}
	if a := post(env.addrs["admin"], "", 10); a.code != 202 || a.body != "10" {
		t.Fatalf("admin: %d %q", a.code, a.body)
	}
	if a := post(env.addrs["in"], "", 1024); a.code != 202 {
		t.Fatalf("named ingestion server: %d", a.code)
	}
	if a := post(env.addrs["noin"], "", 10); a.code != 404 {
		t.Fatalf("server without ingestion: %d", a.code)
	}
	if a := post(env.addrs["in"], "", 1025); a.code != 413 {
		t.Fatalf("body over the limit: %d", a.code)
	}
	if a := do(t, "GET", "http://"+env.addrs["in"]+"/v2/raw", "", nil); a.code != 405 {
		t.Fatalf("GET on a POST route: %d", a.code)
	}

	// StopIngestion waits for the request in flight, then refuses.
	slow := make(chan answer, 1)
	go func() { slow <- post(env.addrs["admin"], "?slow=1", 5) }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- env.srv.StopIngestion(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("StopIngestion returned (%v) while a request was in its handler", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if a := <-slow; a.code != 202 {
		t.Fatalf("request in flight during StopIngestion: %d", a.code)
	}
	a := post(env.addrs["in"], "", 5)
	if a.code != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "shutting_down") {
		t.Fatalf("after StopIngestion: %d %q %v", a.code, a.body, a.header)
	}
}

func TestStopIngestionTimeout(t *testing.T) {
	env := start(t, Options{Listeners: []Listener{{Name: "in", Ingestion: true}}}, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	env.srv.HandleIngestion("/v2/raw", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	go func() {
		req, _ := http.NewRequest("POST", "http://"+env.addrs["in"]+"/v2/raw", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := env.srv.StopIngestion(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StopIngestion = %v, want a deadline error", err)
	}
}
