package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// health passes on 2xx only; a failure names the status (and why, from
// the body) or the connection error, so `docker inspect` says what is wrong.
func TestHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			io.WriteString(w, `{"status":"ok"}`)
		case "/readyz":
			http.Error(w, `{"error":{"code":"unavailable","message":"Temporal is not answering"}}`, http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	var out strings.Builder
	if err := runHealth(ctx, []string{"--url", srv.URL + "/healthz"}, &out); err != nil {
		t.Fatalf("a 200 answer: %v", err)
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("a 200 answer printed %q, want ok", out.String())
	}

	err := runHealth(ctx, []string{"--url", srv.URL + "/readyz"}, io.Discard)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "503 Service Unavailable") || !strings.Contains(err.Error(), "Temporal is not answering") {
		t.Errorf("a 503 answer: %v, want ErrUnhealthy naming 503 and the body's reason", err)
	}
	if err := runHealth(ctx, []string{"--url", srv.URL + "/moved"}, io.Discard); !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "302") {
		t.Errorf("a redirect: %v, want ErrUnhealthy naming 302 (not followed)", err)
	}

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()
	if err := runHealth(ctx, []string{"--url", closed}, io.Discard); !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), closed) {
		t.Errorf("an unreachable endpoint: %v, want ErrUnhealthy naming the URL", err)
	}
}

// A server that never answers fails within --timeout.
func TestHealthTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	err := runHealth(context.Background(), []string{"--url", srv.URL, "--timeout", "200ms"}, io.Discard)
	if !errors.Is(err, ErrUnhealthy) {
		t.Errorf("a server that never answers: %v, want ErrUnhealthy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with --timeout 200ms", d)
	}
}

// The default URL comes from COSTLAKE_HEALTH_URL.
func TestHealthURLFromEnv(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/custom" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("COSTLAKE_HEALTH_URL", srv.URL+"/custom")
	if err := runHealth(context.Background(), nil, io.Discard); err != nil {
		t.Errorf("with COSTLAKE_HEALTH_URL set to a healthy endpoint: %v", err)
	}
}
