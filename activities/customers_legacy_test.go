package activities

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// A request of the previous release reads into the typed operation its
// Kind names, its body as strictly as that release decoded it; what it
// cannot say is refused.
func TestLegacyCustomerRequests(t *testing.T) {
	for _, tc := range []struct {
		lr customerops.LegacyRequest
		op string // "" when refused
	}{
		{customerops.LegacyRequest{Kind: "put_customer", Body: json.RawMessage(`{"name":"Acme"}`)}, "put_customer"},
		{customerops.LegacyRequest{Kind: "put_customer", Body: json.RawMessage(`{"name":"Acme","surprise":1}`)}, ""},
		{customerops.LegacyRequest{Kind: "get_customer", Period: "2026-10"}, "get_customer"},
		{customerops.LegacyRequest{Kind: "get_customer", Period: "2026-13"}, ""},
		{customerops.LegacyRequest{Kind: "set_accounts", Body: json.RawMessage(`{"effective_from":"2026-10","payers":[{"payer_account_id":"111122223333","accounts":["*"]}]}`)}, "set_accounts"},
		{customerops.LegacyRequest{Kind: "set_accounts", Body: json.RawMessage(`{"effective_from":"26-10","payers":[]}`)}, ""},
		{customerops.LegacyRequest{Kind: "put_pricebook", Body: json.RawMessage(`{"effective_from":"2026-10"}`)}, "put_pricebook"},
		{customerops.LegacyRequest{Kind: "get_pricebook", Period: "2026-10"}, "get_pricebook"},
		{customerops.LegacyRequest{Kind: "verify_export", Body: json.RawMessage(`{"url":"s3://b/p"}`)}, "verify_export"},
		{customerops.LegacyRequest{Kind: "unassigned_cost", Period: "2026-10"}, "unassigned_cost"},
		{customerops.LegacyRequest{Kind: "claim_payer", Body: json.RawMessage(`{"payer_account_id":"111122223333","takeover":true}`)}, "claim_payer"},
		{customerops.LegacyRequest{Kind: "release_payer", Body: json.RawMessage(`{"payer_account_id":"111122223333"}`)}, "release_payer"},
		{customerops.LegacyRequest{Kind: "drop_tables"}, ""},
	} {
		r, err := typedRequest(tc.lr)
		switch {
		case tc.op == "" && err == nil:
			t.Errorf("%s %s: accepted, want refused", tc.lr.Kind, tc.lr.Body)
		case tc.op != "" && err != nil:
			t.Errorf("%s %s: %v", tc.lr.Kind, tc.lr.Body, err)
		case tc.op != "" && r.Op() != tc.op:
			t.Errorf("%s: op %q", tc.lr.Kind, r.Op())
		}
	}
	r, _ := typedRequest(customerops.LegacyRequest{Kind: "claim_payer", Body: json.RawMessage(`{"payer_account_id":"111122223333","takeover":true}`)})
	if !r.ClaimPayer.Takeover || r.ClaimPayer.PayerAccountID != "111122223333" {
		t.Errorf("claim %+v", r.ClaimPayer)
	}
}

// A request naming no operation, or two, is refused by name and writes
// nothing: the activity never guesses which one was meant.
func TestCustomerRequestNeedsOneOperation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{Lake: lake, Reseller: store}).Customers
	for _, r := range []customerops.Request{
		{CustomerID: "acme"},
		{CustomerID: "acme", PutCustomer: &reseller.Customer{Name: "Acme"}, ClaimPayer: &customerops.PayerClaim{PayerAccountID: "111122223333"}},
	} {
		_, err := a.ApplyCustomerOperation(ctx, r)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != customerops.ErrTypeInvalid || !app.NonRetryable() {
			t.Errorf("%+v: %v, want a non-retryable %s", r, err, customerops.ErrTypeInvalid)
		}
	}
	if _, err := store.CustomerOf(ctx, "acme"); !errors.Is(err, reseller.ErrNotFound) {
		t.Errorf("a refused request saved the customer: %v", err)
	}
}
