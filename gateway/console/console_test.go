package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// contractAPI answers as the list routes' contract says ({"items",
// "next_cursor"}), for keys "op" (unscoped operator) and "gx" (scoped to
// globex); lists reports whether it has the list routes at all. It is the
// contract's shape, for the pages that read it before the routes exist
// here; the Chromium test runs the real gateway.
func contractAPI(t *testing.T, lists bool, seen *[]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		*seen = append(*seen, key+" "+r.Method+" "+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		write := func(status int, v any) {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(v)
		}
		switch {
		case r.URL.Path == "/v1/payers" && !lists:
			write(405, map[string]any{"error": map[string]string{"code": "method_not_allowed", "message": "Method Not Allowed"}})
		case r.URL.Path == "/v1/customers" && !lists:
			write(404, map[string]any{"error": map[string]string{"code": "not_found", "message": "Not Found"}})
		case r.URL.Path == "/v1/payers" && r.URL.Query().Get("status") == "waiting_for_approval":
			// A list that names the statuses as the onboarding does: the
			// console asks again with that name.
			write(400, map[string]any{"error": map[string]any{"code": "invalid_request", "message": "the request has invalid fields", "fields": map[string]string{"status": "unknown"}}})
		case r.URL.Path == "/v1/payers":
			write(200, map[string]any{"items": []map[string]any{{
				"payer_account_id": "123456789012", "customer_id": "acme", "name": "<script>alert(1)</script>", "status": r.URL.Query().Get("status"),
				"status_since": "2026-10-15T09:30:00Z", "checks": map[string]int{"passed": 4, "failed": 1, "pending": 0}, "last_crawl": "2026-10-15T08:00:00Z", "stale": true,
			}}, "next_cursor": "c2"})
		case r.URL.Path == "/v1/customers":
			write(200, map[string]any{"items": []map[string]any{
				{"id": "acme", "name": "Acme", "accounts": 3, "pricebook_version": 2, "last_closed_period": "2026-09", "on_hold": false},
				{"id": "wayne", "name": "Wayne", "accounts": []string{"111111111111"}, "pricebook_version": 1, "last_closed_period": "2026-08", "on_hold": true},
			}, "next_cursor": ""})
		case r.URL.Path == "/v1/customers/globex" || (r.URL.Path == "/v1/customers/acme" && key == "op"):
			write(200, map[string]any{"id": strings.TrimPrefix(r.URL.Path, "/v1/customers/"), "period": "2026-10", "accounts": []any{}})
		case strings.HasPrefix(r.URL.Path, "/v1/customers/acme") && key != "op":
			write(404, map[string]any{"error": map[string]string{"code": "not_found", "message": `no customer "acme"`}})
		case strings.HasSuffix(r.URL.Path, "/pricebook"):
			write(200, map[string]any{"version": 2, "effective_from": "2026-09", "created_by": "op", "created_at": "2026-10-01T00:00:00Z"})
		case strings.HasSuffix(r.URL.Path, "/cycles") && lists:
			write(200, map[string]any{"items": []map[string]any{{"period": "2026-09", "status": "closed", "closed_at": "2026-10-11T00:00:00Z", "pricebook_version": 2, "currency": "USD", "total": "1234.50", "due": "1234.50"}}, "next_cursor": ""})
		default:
			write(404, map[string]any{"error": map[string]string{"code": "not_found", "message": "Not Found"}})
		}
	})
}

func identify(key string) (Identity, error) {
	switch key {
	case "op":
		return Identity{Name: "op", Role: "operator"}, nil
	case "gx":
		return Identity{Name: "gx", Role: "operator", CustomerID: "globex"}, nil
	}
	return Identity{}, ErrUnknownKey
}

type client struct {
	t    *testing.T
	http *http.Client
	base string
}

func newClient(t *testing.T, api http.Handler) *client {
	t.Helper()
	c, err := New(Config{API: api, Identify: identify, TemporalUI: "http://ui:8233"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &client{t: t, http: &http.Client{Jar: jar}, base: srv.URL}
}

func (c *client) get(path string) (int, string, http.Header) {
	c.t.Helper()
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (c *client) post(path string, form url.Values) (int, string) {
	c.t.Helper()
	resp, err := c.http.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (c *client) csrf(body string) string {
	c.t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF field in %s", body)
	}
	return m[1]
}

func (c *client) signIn(key string) string {
	c.t.Helper()
	_, body, _ := c.get("/sign-in")
	code, body := c.post("/sign-in", url.Values{"csrf": {c.csrf(body)}, "key": {key}})
	if code != 200 {
		c.t.Fatalf("sign-in answered %d: %s", code, body)
	}
	return body
}

func TestSignInSessionAndCSRF(t *testing.T) {
	var seen []string
	c := newClient(t, contractAPI(t, true, &seen))
	code, body, h := c.get("/payers")
	if code != 200 || !strings.Contains(body, `id="sign-in"`) {
		t.Fatalf("signed out: %d %s", code, body)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", h)
	}
	// The sign-in form needs its own token.
	if code, _ := c.post("/sign-in", url.Values{"key": {"op"}}); code != http.StatusForbidden {
		t.Errorf("sign-in without its token: %d", code)
	}
	_, form, _ := c.get("/sign-in")
	if code, body := c.post("/sign-in", url.Values{"csrf": {c.csrf(form)}, "key": {"nope"}}); code != http.StatusUnauthorized || !strings.Contains(body, "not accepted") {
		t.Errorf("unknown key: %d %s", code, body)
	}
	body = c.signIn("op")
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if strings.Contains(ck.Value, "op") && len(ck.Value) < 10 {
			t.Errorf("cookie %s holds the key", ck.Name)
		}
	}
	// Escaped, from the contract's list shape.
	if strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the payer's name is not escaped")
	}
	if !strings.Contains(body, "4 passed") || !strings.Contains(body, "stale") || !strings.Contains(body, "cursor=c2") {
		t.Errorf("the payers page: %s", body)
	}
	token := c.csrf(body)
	// A POST without the session's token, or with another, is refused and
	// reaches no API.
	before := len(seen)
	for _, f := range []url.Values{{}, {"csrf": {strings.Repeat("0", 64)}}} {
		f.Set("reason", "x")
		if code, body := c.post("/payers/123456789012/reject", f); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("POST without the token: %d %s", code, body)
		}
	}
	if len(seen) != before {
		t.Errorf("a refused form called the API: %v", seen[before:])
	}
	// A reject needs its reason, before any API call.
	if code, _ := c.post("/payers/123456789012/reject", url.Values{"csrf": {token}, "reason": {"  "}}); code != http.StatusBadRequest {
		t.Errorf("reject without reason: %d", code)
	}
	// Oversized forms are refused.
	if code, _ := c.post("/payers/123456789012/reject", url.Values{"csrf": {token}, "reason": {strings.Repeat("x", 64<<10)}}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d", code)
	}
	// The approval queue asks for the statuses, with the signed-in key.
	code, body, _ = c.get("/approvals")
	if code != 200 || !strings.Contains(body, `action="/payers/123456789012/approve"`) {
		t.Errorf("approvals: %d %s", code, body)
	}
	if !contains(seen, "op GET /v1/payers?limit=100&status=waiting_for_approval") || !contains(seen, "op GET /v1/payers?limit=100&status=awaiting_approval") {
		t.Errorf("calls: %v", seen)
	}
	code, body, _ = c.get("/customers")
	if code != 200 || !strings.Contains(body, "v2") || !strings.Contains(body, "/customers/acme/cycles/2026-09") || !strings.Contains(body, ">yes<") {
		t.Errorf("customers: %d %s", code, body)
	}
	code, body, _ = c.get("/customers/acme")
	if code != 200 || !strings.Contains(body, "1234.50 USD") || !strings.Contains(body, "version 2") {
		t.Errorf("customer: %d %s", code, body)
	}
	code, body, _ = c.get("/month-end")
	if code != 200 || !strings.Contains(body, `id="run-month-end"`) || !strings.Contains(body, "held") {
		t.Errorf("month-end: %d %s", code, body)
	}
	// Sign-out needs the token too, then the session is gone.
	if code, _ := c.post("/sign-out", url.Values{"csrf": {token}}); code != 200 {
		t.Errorf("sign-out: %d", code)
	}
	if _, body, _ := c.get("/payers"); !strings.Contains(body, `id="sign-in"`) {
		t.Errorf("after sign-out: %s", body)
	}
}

func TestListsMissingAndScopedKeys(t *testing.T) {
	var seen []string
	c := newClient(t, contractAPI(t, false, &seen))
	body := c.signIn("gx")
	if !strings.Contains(body, `id="list-unavailable"`) || !strings.Contains(body, "GET /v1/payers answered 405") {
		t.Errorf("payers without the list route: %s", body)
	}
	if strings.Contains(body, `href="/customers"`) {
		t.Errorf("a scoped key's navigation lists every customer")
	}
	code, body, _ := c.get("/customers/acme")
	if code != http.StatusNotFound || !strings.Contains(body, `no customer &#34;acme&#34;`) {
		t.Errorf("another customer's page: %d %s", code, body)
	}
	code, body, _ = c.get("/customers/globex")
	if code != 200 || !strings.Contains(body, `id="list-unavailable"`) {
		t.Errorf("own customer without the cycles list: %d %s", code, body)
	}
	code, body, _ = c.get("/month-end")
	if code != 200 || strings.Contains(body, `id="run-month-end"`) {
		t.Errorf("a scoped key's month-end: %d %s", code, body)
	}
	if code, _, _ := c.get("/payers/not-a-payer"); code != http.StatusNotFound {
		t.Errorf("a malformed payer ID: %d", code)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// Over TLS the cookies are Secure and the console asks for HTTPS from then
// on; every cookie is HttpOnly and SameSite=Strict, and none holds the key.
func TestCookiesOverTLS(t *testing.T) {
	var seen []string
	con, err := New(Config{API: contractAPI(t, true, &seen), Identify: identify})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(con)
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(srv.URL + "/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS")
	}
	signin := resp.Cookies()
	token := csrfField.FindStringSubmatch(string(body))[1]
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sign-in", strings.NewReader(url.Values{"csrf": {token}, "key": {"op"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range signin {
		req.AddCookie(ck)
	}
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in answered %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range append(signin, resp.Cookies()...) {
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v", ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
		}
		if ck.Name == sessionCookie && ck.MaxAge >= 0 {
			session = ck
		}
	}
	if session == nil || len(session.Value) != 64 || session.Value == "op" {
		t.Errorf("session cookie: %+v", session)
	}
}

// A session ends when its key is revoked, and when it is unused too long.
func TestSessionEnds(t *testing.T) {
	var seen []string
	revoked := false
	now := time.Date(2026, 10, 15, 9, 0, 0, 0, time.UTC)
	con, err := New(Config{API: contractAPI(t, true, &seen), Now: func() time.Time { return now }, IdleTimeout: time.Minute,
		Identify: func(key string) (Identity, error) {
			if revoked {
				return Identity{}, ErrUnknownKey
			}
			return identify(key)
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, http: &http.Client{Jar: jar}, base: srv.URL}
	signedIn := func() bool {
		_, body, _ := c.get("/payers")
		return !strings.Contains(body, `id="sign-in"`)
	}
	c.signIn("op")
	now = now.Add(50 * time.Second)
	if !signedIn() {
		t.Fatal("signed out within the idle timeout")
	}
	now = now.Add(61 * time.Second)
	if signedIn() {
		t.Error("still signed in after the idle timeout")
	}
	c.signIn("op")
	revoked = true
	if signedIn() {
		t.Error("still signed in with a revoked key")
	}
	revoked = false
	if signedIn() {
		t.Error("the revoked key's session came back")
	}
}

func TestAssets(t *testing.T) {
	var seen []string
	c := newClient(t, contractAPI(t, true, &seen))
	if code, body, h := c.get("/assets/console.css"); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/css") || !strings.Contains(body, "--accent") {
		t.Errorf("stylesheet: %d %s", code, h.Get("Content-Type"))
	}
	if code, _, _ := c.get("/assets/"); code != http.StatusNotFound {
		t.Errorf("the assets folder is listed: %d", code)
	}
	if code, _, _ := c.get("/assets/../console.go"); code == 200 {
		t.Error("a file outside the assets is served")
	}
}
