package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/costlake/costlake/internal/restcatalog"
)

// The Iceberg REST catalog (read-only) lives under IcebergPrefix: its
// catalog URI is http(s)://host:port/iceberg. It follows the Apache
// Iceberg REST catalog specification, not costlake's OpenAPI document,
// and answers errors in that protocol's model. Keys are sent as bearer
// tokens, or exchanged at /iceberg/v1/oauth/tokens (OAuth2 client
// credentials, the key as client_secret) for a short-lived signed token
// that only the Iceberg routes accept.
const (
	IcebergPrefix    = "/iceberg"
	icebergTokenPath = IcebergPrefix + "/v1/oauth/tokens"
	// tokenPrefix marks the catalog tokens this gateway signs.
	tokenPrefix = "clkt."
	// TokenLifetime bounds a catalog token; a key's own expiry comes first.
	TokenLifetime = time.Hour
)

func isIcebergPath(p string) bool { return strings.HasPrefix(p, IcebergPrefix+"/") }

// icebergRoutes installs the catalog's routes when the gateway has one.
func (s *Server) icebergRoutes(e *echo.Echo) {
	if s.iceberg == nil {
		return
	}
	v1 := IcebergPrefix + "/v1"
	e.Add(http.MethodPost, icebergTokenPath, s.handleIcebergToken)
	e.Add(http.MethodGet, v1+"/config", s.handleIcebergConfig)
	e.Add(http.MethodGet, v1+"/namespaces", s.handleIcebergNamespaces)
	e.Add(http.MethodGet, v1+"/namespaces/:ns", s.handleIcebergNamespace)
	e.Add(http.MethodHead, v1+"/namespaces/:ns", s.handleIcebergNamespace)
	e.Add(http.MethodGet, v1+"/namespaces/:ns/tables", s.handleIcebergTables)
	e.Add(http.MethodGet, v1+"/namespaces/:ns/tables/:table", s.handleIcebergTable)
	e.Add(http.MethodHead, v1+"/namespaces/:ns/tables/:table", s.handleIcebergTable)
	// Everything else: writes are refused as read-only, other reads are
	// endpoints this catalog does not serve (views, scan planning, …).
	e.Any(IcebergPrefix+"/*", s.handleIcebergOther)
}

func icebergScope(c echo.Context) restcatalog.Scope {
	return restcatalog.Scope{Customer: principal(c).CustomerID}
}

func (s *Server) handleIcebergConfig(c echo.Context) error {
	return c.JSON(http.StatusOK, s.iceberg.Config())
}

func page(c echo.Context) restcatalog.Page {
	return restcatalog.Page{Token: c.QueryParam("pageToken"), Size: c.QueryParam("pageSize")}
}

func (s *Server) handleIcebergNamespaces(c echo.Context) error {
	out, err := s.iceberg.ListNamespaces(c.Request().Context(), icebergScope(c), c.QueryParam("parent"), page(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleIcebergNamespace(c echo.Context) error {
	out, err := s.iceberg.Namespace(c.Request().Context(), icebergScope(c), c.Param("ns"))
	if err != nil {
		return err
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusNoContent)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleIcebergTables(c echo.Context) error {
	out, err := s.iceberg.ListTables(c.Request().Context(), icebergScope(c), c.Param("ns"), page(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleIcebergTable(c echo.Context) error {
	out, err := s.iceberg.LoadTable(c.Request().Context(), icebergScope(c), c.Param("ns"), c.Param("table"))
	if err != nil {
		return err
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusNoContent)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleIcebergOther(c echo.Context) error {
	r := c.Request()
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return restcatalog.NewError(http.StatusNotFound, "NotFoundException", "%s %s is not an endpoint this catalog serves (GET /iceberg/v1/config lists them)", r.Method, r.URL.Path)
	}
	return restcatalog.ReadOnly(r.Method, r.URL.Path)
}

// TokenResponse is the answer of the OAuth2 token endpoint.
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type"`
}

// OAuthError is the token endpoint's error (RFC 6749 §5.2), the shape
// the Iceberg specification gives it.
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

const (
	grantClientCredentials = "client_credentials"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType        = "urn:ietf:params:oauth:token-type:access_token"
)

// handleIcebergToken exchanges an API key (client_secret, in the form or
// as HTTP Basic) or a token still valid (token exchange, how Java
// clients refresh) for a new token. Public: it authenticates its own
// request. The key's role and scope carry into the token.
func (s *Server) handleIcebergToken(c echo.Context) error {
	r := c.Request()
	oauthErr := func(status int, code, desc string) error {
		if status == http.StatusUnauthorized {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="costlake"`)
		}
		return c.JSON(status, OAuthError{Error: code, Description: desc})
	}
	if err := r.ParseForm(); err != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "the body must be a form (application/x-www-form-urlencoded)")
	}
	var secret string
	switch grant := r.PostForm.Get("grant_type"); grant {
	case grantClientCredentials:
		secret = r.PostForm.Get("client_secret")
		if _, basic, ok := r.BasicAuth(); ok && secret == "" {
			secret = basic
		}
	case grantTokenExchange:
		secret = r.PostForm.Get("subject_token")
	default:
		return oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials (client_secret: an API key) or token exchange")
	}
	k, expired := s.keyOrToken(secret, true)
	if k == nil {
		// Never echo what was sent: it may be a key with a typo.
		return oauthErr(http.StatusUnauthorized, "invalid_client", "unknown API key or token")
	}
	c.Set(principalKey, k) // the audit record names the key
	now := s.clock.Now()
	if expired || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return oauthErr(http.StatusUnauthorized, "invalid_client", "API key "+strconv.Quote(k.Name)+" or its token has expired")
	}
	if err := s.limit(c, k); err != nil {
		return err
	}
	exp := now.Add(TokenLifetime)
	if k.ExpiresAt != nil && k.ExpiresAt.Before(exp) {
		exp = *k.ExpiresAt
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, TokenResponse{AccessToken: s.signToken(k, exp), TokenType: "bearer",
		ExpiresIn: max(1, int64(exp.Sub(now).Seconds())), IssuedTokenType: accessTokenType})
}

// keyOrToken finds the key a bearer value is: an API key, or (where
// tokens count) a catalog token this gateway signed for a key still in
// the keys file. expired is a signed token past its expiry.
func (s *Server) keyOrToken(v string, tokens bool) (k *APIKey, expired bool) {
	if k := s.lookup(v); k != nil || !tokens || !strings.HasPrefix(v, tokenPrefix) {
		return k, false
	}
	hash, exp, ok := s.verifyToken(v)
	if !ok {
		return nil, false
	}
	for _, key := range s.keys.Keys() {
		if key.SHA256 == hash {
			return &key, !s.clock.Now().Before(exp)
		}
	}
	return nil, false // the key was removed: its tokens go with it
}

// signToken is tokenPrefix + payload + "." + HMAC-SHA256(payload), the
// payload naming the key (its SHA-256, which the keys file holds anyway)
// and the expiry.
func (s *Server) signToken(k *APIKey, exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(k.SHA256 + "." + strconv.FormatInt(exp.Unix(), 10)))
	return tokenPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

func (s *Server) verifyToken(tok string) (hash string, exp time.Time, ok bool) {
	body := strings.TrimPrefix(tok, tokenPrefix)
	payload, sig, found := strings.Cut(body, ".")
	if !found || len(tok) > 512 {
		return "", time.Time{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return "", time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", time.Time{}, false
	}
	hash, unix, found := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(unix, 10, 64)
	if !found || err != nil {
		return "", time.Time{}, false
	}
	return hash, time.Unix(n, 0), true
}

func (s *Server) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// newTokenKey is the key catalog tokens are signed with when the
// configuration gives none: random per process, so a restart (or another
// replica) refuses earlier tokens and clients fetch new ones.
func newTokenKey(configured []byte) []byte {
	if len(configured) > 0 {
		return configured
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// icebergError writes err in the Iceberg protocol's error model.
func (s *Server) icebergError(err error, c echo.Context) {
	var re *restcatalog.Error
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &re):
	case errors.As(err, &ae):
		t := statusTable[ae.kind]
		re = &restcatalog.Error{Code: t.status, Message: ae.message, Type: icebergTypes[ae.kind]}
		if ae.kind == kindKeyExpired {
			// 419: the protocol's "credentials have timed out"; clients
			// fetch a new token and retry.
			re.Code = 419
		}
	case errors.As(err, &he):
		re = &restcatalog.Error{Code: he.Code, Message: strings.ToLower(http.StatusText(he.Code)), Type: restcatalog.TypeBadRequest}
		switch he.Code {
		case http.StatusNotFound:
			re.Type = "NotFoundException"
		case http.StatusMethodNotAllowed:
			re = restcatalog.ReadOnly(c.Request().Method, c.Request().URL.Path)
		}
	default:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "error", err)
		re = &restcatalog.Error{Code: http.StatusInternalServerError, Type: restcatalog.TypeServerError, Message: "internal error; see the gateway log"}
	}
	if err := c.JSON(re.Code, restcatalog.ErrorBody{Error: re}); err != nil {
		s.log.Warn("could not write error response", "error", err)
	}
}

// icebergTypes are the protocol's error types of the gateway's kinds.
var icebergTypes = map[errKind]string{
	kindInternal:         restcatalog.TypeServerError,
	kindInvalid:          restcatalog.TypeBadRequest,
	kindUnauthorized:     restcatalog.TypeNotAuthorized,
	kindKeyExpired:       restcatalog.TypeNotAuthorized,
	kindForbidden:        restcatalog.TypeForbidden,
	kindNotFound:         "NotFoundException",
	kindConflict:         restcatalog.TypeBadRequest,
	kindRateLimited:      restcatalog.TypeSlowDown,
	kindOnboardingFailed: restcatalog.TypeUnavailable,
	kindSetupIncomplete:  restcatalog.TypeUnavailable,
	kindUnavailable:      restcatalog.TypeUnavailable,
}
