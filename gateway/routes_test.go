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
