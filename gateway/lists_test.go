package gateway

import (
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/costlake/costlake/internal/payer"
)

func listContext(query string) echo.Context {
	return echo.New().NewContext(httptest.NewRequest("GET", "/v1/payers?"+query, nil), httptest.NewRecorder())
}

func fieldOf(t *testing.T, err error) string {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.kind != kindInvalid || len(ae.fields) != 1 {
		t.Fatalf("want one field error, got %v", err)
	}
	for f := range ae.fields {
		return f
	}
	return ""
}

// TestPageCursor: a cursor comes back as it was made, for its list and
// filters only; one cut, edited, too long, or naming an invalid key is a
// field error on cursor.
func TestPageCursor(t *testing.T) {
	made := cursor{List: "payers", Filter: "active/acme", After: "123456789012"}.String()
	got, err := pageCursor(listContext("cursor="+made), "payers", "active/acme", payer.ValidAccountID)
	if err != nil || got.After != "123456789012" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got, err := pageCursor(listContext(""), "payers", "", payer.ValidAccountID); err != nil || got.After != "" {
		t.Fatalf("no cursor: %+v, %v", got, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(made)
	edited := append([]byte{}, raw...)
	edited[len(edited)-12] ^= 1
	forged := cursor{List: "payers", Filter: "active/acme", After: "x' OR 1=1 --"}.String()
	for name, q := range map[string]string{
		"another filter": "cursor=" + made + "&x=1",
		"cut":            "cursor=" + made[:len(made)-3],
		"edited":         "cursor=" + base64.RawURLEncoding.EncodeToString(edited),
		"not base64":     "cursor=%21%21",
		"too long":       "cursor=" + strings.Repeat("A", maxCursorLen+1),
		"invalid key":    "cursor=" + forged,
	} {
		filter := "active/acme"
		if name == "another filter" {
			filter = "active/globex"
		}
		_, err := pageCursor(listContext(q), "payers", filter, payer.ValidAccountID)
		if f := fieldOf(t, err); f != "cursor" {
			t.Errorf("%s: field %q", name, f)
		}
	}
	if _, err := pageCursor(listContext("cursor="+made), "customers", "active/acme", payer.ValidCustomerID); fieldOf(t, err) != "cursor" {
		t.Error("another list's cursor was taken")
	}
}

// TestPageSize: 1 to 200, 50 by default, else a field error on limit.
func TestPageSize(t *testing.T) {
	if n, err := pageSize(listContext("")); n != defaultPageSize || err != nil {
		t.Errorf("default: %d, %v", n, err)
	}
	if n, err := pageSize(listContext("limit=200")); n != 200 || err != nil {
		t.Errorf("200: %d, %v", n, err)
	}
	for _, bad := range []string{"0", "201", "-3", "x", "1e2"} {
		if _, err := pageSize(listContext("limit=" + bad)); fieldOf(t, err) != "limit" {
			t.Errorf("limit=%s accepted", bad)
		}
	}
}
