package gateway

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/costlake/costlake/gateway/console"
)

// mountConsole serves the operator console at "/" beside the API: its
// pages call this same Echo instance in process with the signed-in key,
// so they go through the API's authentication, roles, scoping, rate
// limit and audit like any client.
func (s *Server) mountConsole(e *echo.Echo, cfg Config) error {
	con, err := console.New(console.Config{
		API:           e,
		Identify:      s.identify,
		TemporalUI:    cfg.TemporalUI,
		Namespace:     cfg.TemporalNamespace,
		SecureCookies: cfg.SecureCookies,
		Log:           s.log,
		Now:           s.clock.Now,
	})
	if err != nil {
		return err
	}
	h := echo.WrapHandler(con)
	for path := range consoleRoutes {
		// Pages are read with GET and forms posted; the console's own
		// mux refuses other methods on them.
		e.GET(path, h)
		e.POST(path, h)
	}
	return nil
}

// consoleRoutes are the Echo patterns of console.Mounts: the console's
// pages, outside the API (and its OpenAPI document).
var consoleRoutes = func() map[string]bool {
	r := map[string]bool{}
	for _, m := range console.Mounts {
		if m != "/" && strings.HasSuffix(m, "/") {
			m += "*"
		}
		r[m] = true
	}
	return r
}()

// identify tells the console who a key is: the key in force now, unexpired.
func (s *Server) identify(key string) (console.Identity, error) {
	k := s.lookup(strings.TrimSpace(key))
	if k == nil || (k.ExpiresAt != nil && !s.clock.Now().Before(*k.ExpiresAt)) {
		return console.Identity{}, console.ErrUnknownKey
	}
	return console.Identity{Name: k.Name, Role: k.Role, CustomerID: k.CustomerID}, nil
}

// consolePage reports whether a request is for the console, which signs
// in with its own session instead of a bearer key.
func (s *Server) consolePage(c echo.Context) bool {
	return consoleRoutes[c.Path()] && !strings.HasPrefix(c.Request().URL.Path, "/v1/")
}
