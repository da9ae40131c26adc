package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/costlake/costlake/internal/restcatalog"
)

// Catalog tokens: issued for a key (form or HTTP Basic), refreshed by
// token exchange, refused once expired (419, so clients fetch another),
// when tampered with, or on costlake's own routes. The config route reads
// no catalog, so none is behind the server here.
func TestIcebergTokens(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	key, entry := NewAPIKey("acme-reader", RoleViewer, "acme")
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Keys: []APIKey{entry},
		Clock: func() time.Time { return now }, Iceberg: restcatalog.New(nil, nil)})
	call := func(method, path, bearer, form string, basic ...string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if len(basic) == 2 {
			req.SetBasicAuth(basic[0], basic[1])
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	token := func(form string, basic ...string) string {
		t.Helper()
		status, body := call(http.MethodPost, icebergTokenPath, "", form, basic...)
		var tok TokenResponse
		if status != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok.ExpiresIn != 3600 || tok.TokenType != "bearer" {
			t.Fatalf("token %s: %d %s", form, status, body)
		}
		return tok.AccessToken
	}
	tok := token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {key}}.Encode())
	token("grant_type=client_credentials", "acme-reader", key)
	if status, body := call(http.MethodGet, "/iceberg/v1/config", tok, ""); status != http.StatusOK || !strings.Contains(body, `"endpoints"`) {
		t.Fatalf("config with a token: %d %s", status, body)
	}
	refreshed := token(url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok}}.Encode())

	for _, tc := range []struct {
		name, method, path, bearer, form string
		status                           int
		want                             string
	}{
		{"tampered", http.MethodGet, "/iceberg/v1/config", tok[:len(tok)-2] + "xx", "", 401, restcatalog.TypeNotAuthorized},
		{"not on costlake's routes", http.MethodGet, "/v1/customers/acme", tok, "", 401, "unauthorized"},
		{"wrong grant", http.MethodPost, icebergTokenPath, "", "grant_type=password&password=" + key, 400, "unsupported_grant_type"},
		{"wrong secret", http.MethodPost, icebergTokenPath, "", "grant_type=client_credentials&client_secret=clk_guess", 401, "invalid_client"},
		{"unknown endpoint", http.MethodGet, "/iceberg/v1/namespaces/customer_acme/views", key, "", 404, "NotFoundException"},
		{"read-only", http.MethodPut, "/iceberg/v1/namespaces/customer_acme", key, "", 405, restcatalog.TypeUnsupported},
	} {
		status, body := call(tc.method, tc.path, tc.bearer, tc.form)
		if status != tc.status || !strings.Contains(body, tc.want) || strings.Contains(body, key) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.want)
		}
	}

	now = now.Add(TokenLifetime)
	for _, tk := range []string{tok, refreshed} {
		status, body := call(http.MethodGet, "/iceberg/v1/config", tk, "")
		var eb restcatalog.ErrorBody
		if status != 419 || json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Code != 419 || eb.Error.Type != restcatalog.TypeNotAuthorized {
			t.Errorf("expired token: %d %s", status, body)
		}
	}
	if status, body := call(http.MethodPost, icebergTokenPath, "", url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok}}.Encode()); status != 401 {
		t.Errorf("exchange of an expired token: %d %s", status, body)
	}
	// The key itself still opens the catalog.
	if status, body := call(http.MethodGet, "/iceberg/v1/config", key, ""); status != http.StatusOK {
		t.Errorf("config with the key: %d %s", status, body)
	}
}
