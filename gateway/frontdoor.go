package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/costlake/costlake/internal/telemetry"
)

// limiters holds one token bucket per API key (by its hash), so one key's
// burst never slows another's.
type limiters struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(2*perSecond)))
	}
	return &limiters{limit: rate.Limit(perSecond), burst: burst, byKey: map[string]*rate.Limiter{}}
}

// limit takes one token of the key's bucket, or refuses with 429 and how
// many seconds until one is free.
func (s *Server) limit(c echo.Context, k *APIKey) error {
	l := s.limiters
	if l == nil {
		return nil
	}
	l.mu.Lock()
	lim := l.byKey[k.SHA256]
	if lim == nil {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byKey[k.SHA256] = lim
	}
	l.mu.Unlock()
	now := s.clock.Now()
	if lim.AllowN(now, 1) {
		return nil
	}
	wait := (1 - lim.TokensAt(now)) / float64(l.limit)
	secs := max(1, int(math.Ceil(wait)))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return errorf(kindRateLimited, "key %q is over its rate limit of %g requests per second (bursts of %d); retry after %d s", k.Name, float64(l.limit), l.burst, secs)
}

// auditCall writes one audit record per mutating call once its response
// is decided, refusals included: who (key name and ID, never the key),
// what (method, route, target) and the status.
func (s *Server) auditCall(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if s.consolePage(c) {
			// The console's own API call is audited, with the key.
			return next(c)
		}
		if err := next(c); err != nil {
			c.Error(err) // writes the response, so its status is known
		}
		attrs := []any{"method", c.Request().Method, "route", c.Path(), "target", target(c), "status", c.Response().Status, "remote", c.RealIP()}
		if k := principal(c); k != nil {
			attrs = append(attrs, "key", k.Name, "key_id", k.ID())
		} else {
			attrs = append(attrs, "key", "", "key_id", "")
		}
		s.audit.Info("audit", attrs...)
		return nil
	}
}

// target is what a call acts on: its route parameters, or else where a
// created resource lives.
func target(c echo.Context) string {
	var parts []string
	for i, name := range c.ParamNames() {
		if i < len(c.ParamValues()) {
			parts = append(parts, cmp.Or(strings.TrimPrefix(name, "*"), "path")+"="+c.ParamValues()[i])
		}
	}
	if len(parts) == 0 {
		return c.Response().Header().Get(echo.HeaderLocation)
	}
	return strings.Join(parts, " ")
}

// ServeOptions is how the gateway listens.
type ServeOptions struct {
	Addr string
	// Timeouts; zero takes the defaults below. WriteTimeout bounds the
	// longest request, so it exceeds Config.RegisterWait.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// TLSCert and TLSKey are PEM files; both set serves HTTPS (TLS 1.2 or
	// later), neither plain HTTP.
	TLSCert, TLSKey string
}

// Default timeouts of the gateway's HTTP server.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// ErrTLSConfig reports a TLS certificate and key the gateway cannot use.
var ErrTLSConfig = errors.New("invalid TLS settings")

// HTTPServer is the gateway's http.Server: timeouts set, so a slow or idle
// client cannot hold a connection open, and TLS loaded when asked for.
func HTTPServer(h http.Handler, o ServeOptions) (*http.Server, error) {
	write := cmp.Or(o.WriteTimeout, DefaultWriteTimeout)
	srv := &http.Server{
		Addr:              o.Addr,
		Handler:           withDeadline(h, write),
		ReadHeaderTimeout: cmp.Or(o.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(o.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      write,
		IdleTimeout:       cmp.Or(o.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
	}
	switch {
	case o.TLSCert == "" && o.TLSKey == "":
	case o.TLSCert == "" || o.TLSKey == "":
		return nil, fmt.Errorf("%w: set both --tls-cert and --tls-key, or neither", ErrTLSConfig)
	default:
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			// The error names the problem, not the PEM content.
			return nil, fmt.Errorf("%w: certificate %s, key %s: %v", ErrTLSConfig, o.TLSCert, o.TLSKey, err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	return srv, nil
}

// withDeadline ends a request's context when its answer could no longer be
// written, so a handler waiting on Temporal gives up instead of working
// for a client that is gone.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Serve runs h as configured until ctx ends, then shuts it down
// gracefully.
func Serve(ctx context.Context, h http.Handler, o ServeOptions) error {
	srv, err := HTTPServer(h, o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("gateway on %s: %w", o.Addr, err)
	}
	return ServeOn(ctx, srv, ln)
}

// ServeOn is Serve on a listener the caller opened.
func ServeOn(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// countRequests counts each request under its route's pattern (c.Path(),
// "/v1/payers/:id"), never its path, with the status it was answered.
func countRequests(m *telemetry.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if m == nil {
			return next
		}
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err) // writes the response, so its status is known
			}
			m.Request(c.Path(), c.Request().Method, c.Response().Status, time.Since(start))
			return nil
		}
	}
}
