package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/costlake/costlake/internal/clock"
)

// A change whose fields are wrong before any payer is looked at (fields
// that cannot change, a malformed cut-over period, an unknown field) is
// refused by field without Temporal: the gateway here has none.
func TestChangePayerRefusedByField(t *testing.T) {
	op, entry := NewAPIKey("op", RoleOperator, "")
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Keys: []APIKey{entry}, Clock: clock.Fixed(time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC))})
	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"access":{"mode":"access_keys","secret_ref":"env:X"},"customer_id":"globex"}`, []string{"access", "customer_id"}},
		{`{"payer_account_id":"111122223333","oidc":{}}`, []string{"payer_account_id", "oidc"}},
		{`{"export":{"type":"cur2","bucket":"b-b-b","name":"x"},"cutover_from":"2026-13"}`, []string{"cutover_from"}},
		{`{"cutover":{"from":"2026-11"}}`, []string{"cutover"}},
		{`{"export":{"type":"cur2","bucket":"b-b-b","name":"x"},"cutover_from":"2036-11"}`, []string{"cutover_from"}},
		{`{"schedul":{}}`, []string{"schedul"}},
		{`{"connected_accounts":"111122223333"}`, []string{"connected_accounts"}},
	} {
		req := httptest.NewRequest("PATCH", "/v1/payers/123456789012", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+op)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", tc.body, rec.Code, rec.Body)
			continue
		}
		for _, f := range tc.fields {
			if _, ok := body.Error.Fields[f]; !ok {
				t.Errorf("%s: fields %v, want %q", tc.body, body.Error.Fields, f)
			}
		}
	}
}
