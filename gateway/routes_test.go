package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The route groups refuse a key before the handler runs: with no Temporal
// client behind the gateway, any call that got past its group would fail
// (500), so each refusal here is the group's middleware or customerFor.
func TestRouteGroupsRefuseBeforeTheHandler(t *testing.T) {
	viewer, viewerEntry := NewAPIKey("v", RoleViewer, "")
	scopedOp, scopedOpEntry := NewAPIKey("so", RoleOperator, "acme")
	scopedViewer, scopedViewerEntry := NewAPIKey("sv", RoleViewer, "acme")
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Keys: []APIKey{viewerEntry, scopedOpEntry, scopedViewerEntry}})
	for _, tc := range []struct {
		key, method, path string
		status            int
		code              string
	}{
		// operator group
		{viewer, "POST", "/v1/payers", 403, "forbidden"},
		{viewer, "POST", "/v1/payers/123456789012/crawl", 403, "forbidden"},
		{viewer, "POST", "/v1/payers/123456789012/backfill", 403, "forbidden"},
		{viewer, "PATCH", "/v1/payers/123456789012", 403, "forbidden"},
		{scopedViewer, "PATCH", "/v1/payers/123456789012", 403, "forbidden"},
		// unscoped operator group
		{viewer, "POST", "/v1/ingestions", 403, "forbidden"},
		{scopedOp, "POST", "/v1/ingestions", 403, "forbidden"},
		{scopedOp, "POST", "/v1/exports/verify", 403, "forbidden"},
		{scopedOp, "POST", "/v1/exports/reseller", 403, "forbidden"},
		// deciders
		{viewer, "POST", "/v1/payers/123456789012/approve", 403, "forbidden"},
		{scopedOp, "POST", "/v1/payers/123456789012/approve", 403, "forbidden"},
		{scopedOp, "POST", "/v1/payers/123456789012/reject", 403, "forbidden"},
		{scopedOp, "POST", "/v1/payers/123456789012/request-changes", 403, "forbidden"},
		{scopedOp, "POST", "/v1/payers/123456789012/stack-deployed", 403, "forbidden"},
		{scopedOp, "POST", "/v1/payers/123456789012/pause", 403, "forbidden"},
		{scopedOp, "POST", "/v1/payers/123456789012/resume", 403, "forbidden"},
		{scopedOp, "DELETE", "/v1/payers/123456789012", 403, "forbidden"},
		// unscoped group
		{scopedViewer, "GET", "/v1/ingestions/ingest/x/2026-01", 403, "forbidden"},
		{scopedViewer, "GET", "/v1/reports/unassigned", 403, "forbidden"},
		// customerFor: another customer is 404 before any 403 (no
		// existence oracle), then the role.
		{scopedOp, "PUT", "/v1/customers/globex", 404, "not_found"},
		{scopedViewer, "PUT", "/v1/customers/globex/pricebook", 404, "not_found"},
		{scopedOp, "PUT", "/v1/customers/acme", 403, "forbidden"},
		{viewer, "PUT", "/v1/customers/acme/accounts", 403, "forbidden"},
		{viewer, "POST", "/v1/customers/acme/cycles/2026-01/close", 403, "forbidden"},
		{scopedViewer, "GET", "/v1/customers/acme/pricebook", 403, "forbidden"},
		// month-end: holds and acceptances are the reseller's decisions.
		{scopedOp, "POST", "/v1/customers/acme/hold", 403, "forbidden"},
		{scopedOp, "POST", "/v1/customers/globex/hold", 404, "not_found"},
		{viewer, "DELETE", "/v1/customers/acme/hold", 403, "forbidden"},
		{scopedOp, "POST", "/v1/customers/acme/cycles/2026-01/accept-difference", 403, "forbidden"},
		{scopedOp, "PUT", "/v1/webhook", 403, "forbidden"},
		{viewer, "DELETE", "/v1/webhook", 403, "forbidden"},
		{scopedOp, "POST", "/v1/month-end", 403, "forbidden"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tc.key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var body errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.Error.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
}

// The table gives every kind a status and a code, and keeps the codes
// clients already match on.
func TestStatusTable(t *testing.T) {
	for kind := kindInternal; kind <= kindUnavailable; kind++ {
		st, ok := statusTable[kind]
		if !ok || st.status == 0 || st.code == "" {
			t.Errorf("kind %d has no status and code", kind)
		}
	}
	for kind, want := range map[errKind]int{kindInvalid: http.StatusBadRequest, kindConflict: http.StatusConflict, kindNotFound: http.StatusNotFound} {
		e := &apiError{kind: kind, message: "m"}
		if got, _ := (&Server{}).errorResponse(e, nil); got != want {
			t.Errorf("kind %d: %d, want %d", kind, got, want)
		}
	}
}

// Malformed month-end requests are named field errors before any
// workflow starts (no Temporal client here: reaching it would be a 500).
func TestMonthEndRequestsValidate(t *testing.T) {
	op, opEntry := NewAPIKey("op", RoleOperator, "")
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Keys: []APIKey{opEntry}})
	for _, tc := range []struct {
		method, path, body, field string
	}{
		{"POST", "/v1/customers/acme/hold", `{}`, "reason"},
		{"POST", "/v1/customers/acme/hold", `{"reason":"  "}`, "reason"},
		{"POST", "/v1/customers/acme/hold", `{"reason":"x","until":"never"}`, "until"},
		{"POST", "/v1/customers/acme/cycles/2026-01/accept-difference", `{"reason":"ok"}`, "payer_account_id"},
		{"POST", "/v1/customers/acme/cycles/2026-01/accept-difference", `{"payer_account_id":"123456789012"}`, "reason"},
		{"POST", "/v1/customers/acme/cycles/2026-13/accept-difference", `{"payer_account_id":"123456789012","reason":"ok"}`, "period"},
		{"PUT", "/v1/webhook", `{"url":"ftp://hooks.example.com","secret_ref":"env:HOOK"}`, "url"},
		{"PUT", "/v1/webhook", `{"url":"https://hooks.example.com","secret_ref":"whsec_abc"}`, "secret_ref"},
		{"PUT", "/v1/webhook", `{"url":"https://hooks.example.com","secret_ref":"env:HOOK","events":["cycle.opened"]}`, "events"},
		{"POST", "/v1/month-end", `{"period":"last"}`, "period"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+op)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var body errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != 400 || body.Error.Fields[tc.field] == "" {
			t.Errorf("%s %s %s: %d %s, want 400 naming %s", tc.method, tc.path, tc.body, rec.Code, rec.Body, tc.field)
		}
	}
}

// The console's pages sign in with a session, not a bearer key; the rest
// of the gateway still needs one, and a console page's own API calls are
// the ones audited.
func TestConsoleMountedBesideTheAPI(t *testing.T) {
	var audit strings.Builder
	_, entry := NewAPIKey("op", RoleOperator, "")
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Keys: []APIKey{entry}, Audit: slog.New(slog.NewJSONHandler(&audit, nil))})
	for _, tc := range []struct {
		method, path string
		status       int
		location     string
	}{
		{"GET", "/", http.StatusSeeOther, "/sign-in"},
		{"GET", "/payers/123456789012", http.StatusSeeOther, "/sign-in"},
		{"GET", "/sign-in", http.StatusOK, ""},
		{"GET", "/assets/console.css", http.StatusOK, ""},
		{"POST", "/sign-in", http.StatusForbidden, ""}, // no CSRF token
		{"POST", "/payers/123456789012/approve", http.StatusForbidden, ""},
		{"GET", "/nope", http.StatusUnauthorized, ""},
		{"GET", "/v1/payers/123456789012", http.StatusUnauthorized, ""},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Location"), tc.status, tc.location)
		}
	}
	if audit.Len() != 0 {
		t.Errorf("console forms refused before any API call were audited: %s", audit.String())
	}
}
