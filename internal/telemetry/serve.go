package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultAddress is where a worker or gateway serves its metrics unless
// told otherwise (--metrics-address, COSTLAKE_METRICS_ADDRESS).
const DefaultAddress = ":9090"

// Probe answers a readiness check: nil when ready, else why not.
type Probe func(ctx context.Context) error

// probeTimeout bounds one readiness check.
const probeTimeout = 3 * time.Second

// Mux is a metrics listener's handler: GET /metrics always; with a ready
// probe (a worker's) also /healthz, 200 while the process runs, and
// /readyz, 200 when ready answers nil and 503 with the reason otherwise.
func (m *Metrics) Mux(ready Probe) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if ready != nil {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		})
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ready\n")
		})
	}
	return mux
}

// Listen opens the metrics listener on addr; "" disables it (nil, nil).
func Listen(addr string) (net.Listener, error) {
	if strings.TrimSpace(addr) == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s (--metrics-address, COSTLAKE_METRICS_ADDRESS; empty disables it): %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, then shuts down; it returns nil
// after a shutdown ctx asked for.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// Start listens on addr and serves h in the background until ctx ends; a
// serving error after the start is logged. addr "" starts nothing and
// returns "".
func Start(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (string, error) {
	ln, err := Listen(addr)
	if err != nil || ln == nil {
		return "", err
	}
	go func() {
		if err := Serve(ctx, ln, h); err != nil {
			log.Error("metrics listener stopped", "address", ln.Addr().String(), "error", err)
		}
	}()
	return ln.Addr().String(), nil
}
