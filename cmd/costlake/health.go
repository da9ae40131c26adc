package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/config"
)

// defaultHealthURL is the gateway's liveness route on its default port.
const defaultHealthURL = "http://127.0.0.1:8080/healthz"

// ErrUnhealthy reports a health endpoint that did not answer 2xx.
var ErrUnhealthy = errors.New("unhealthy")

// runHealth GETs a health endpoint and fails unless it answers 2xx: the
// image's HEALTHCHECK, since the distroless image has no shell or curl.
func runHealth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	url := fs.String("url", config.Env("COSTLAKE_HEALTH_URL", defaultHealthURL), "URL to GET; any 2xx is healthy [COSTLAKE_HEALTH_URL]")
	timeout := fs.Duration("timeout", 3*time.Second, "how long the whole request may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the URL goes in --url", fs.Args())
	}
	if *timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if err := checkHealth(ctx, *url, *timeout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *url)
	return nil
}

// healthClient ignores HTTP(S)_PROXY, which a container may set for its
// outbound calls but which must not carry a check of its own endpoint,
// and reports a redirect instead of following it.
var healthClient = &http.Client{
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// checkHealth GETs url within timeout; only a 2xx answer is healthy.
func checkHealth(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--url %q: %w", url, err)
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnhealthy, url, err)
	}
	defer resp.Body.Close()
	// The start of the body says why (the gateway's 503 names what is
	// unavailable); it is the process's own endpoint, not untrusted input.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	if b := strings.TrimSpace(string(body)); b != "" {
		return fmt.Errorf("%w: GET %s answered %s: %s", ErrUnhealthy, url, resp.Status, b)
	}
	return fmt.Errorf("%w: GET %s answered %s", ErrUnhealthy, url, resp.Status)
}
