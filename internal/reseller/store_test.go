package reseller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/uptrace/bun/driver/sqliteshim"
)

func open(t *testing.T) *Store {
	t.Helper()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	s, err := Open(context.Background(), db, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const payerID = "210987654321"

func TestAccountsMoveAtAPeriodBoundary(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetAccounts(ctx, "acme", "2026-01", []Assignment{{PayerAccountID: payerID, Accounts: []string{"111111111111", "222222222222"}}}, "op"))
	must(s.SetAccounts(ctx, "globex", "2026-01", []Assignment{{PayerAccountID: payerID, Accounts: []string{"333333333333"}}}, "op"))

	// globex cannot take an account acme holds…
	err := s.SetAccounts(ctx, "globex", "2026-03", []Assignment{{PayerAccountID: payerID, Accounts: []string{"333333333333", "222222222222"}}}, "op")
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("taking acme's account: %v, want ErrConflict", err)
	}
	// …until acme lets it go from March.
	must(s.SetAccounts(ctx, "acme", "2026-03", []Assignment{{PayerAccountID: payerID, Accounts: []string{"111111111111"}}}, "op"))
	must(s.SetAccounts(ctx, "globex", "2026-03", []Assignment{{PayerAccountID: payerID, Accounts: []string{"333333333333", "222222222222"}}}, "op"))

	feb, err := s.Owners(ctx, "2026-02")
	must(err)
	mar, err := s.Owners(ctx, "2026-03")
	must(err)
	if got := Owner(feb, payerID, "222222222222"); got != "acme" {
		t.Errorf("February owner = %q, want acme", got)
	}
	if got := Owner(mar, payerID, "222222222222"); got != "globex" {
		t.Errorf("March owner = %q, want globex", got)
	}
	if got := Owner(mar, payerID, "444444444444"); got != "" {
		t.Errorf("unknown account owner = %q, want unassigned", got)
	}
	a, err := s.CustomerAccounts(ctx, "acme", "2026-03")
	must(err)
	if len(a) != 1 || len(a[0].Accounts) != 1 || a[0].Accounts[0] != "111111111111" {
		t.Errorf("acme in March: %+v", a)
	}
}

func TestWholePayer(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.SetAccounts(ctx, "initech", "2026-01", []Assignment{{PayerAccountID: payerID, Accounts: []string{AllAccounts}}}, "op"); err != nil {
		t.Fatal(err)
	}
	o, _ := s.Owners(ctx, "2026-05")
	if got := Owner(o, payerID, "999999999999"); got != "initech" {
		t.Errorf("owner = %q, want initech (whole payer)", got)
	}
}

func TestClosedCycleRefusesChanges(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	v1, err := s.PutPricebook(ctx, "acme", "2026-01", json.RawMessage(`{"global_percent":"5"}`), "op")
	if err != nil || v1 != 1 {
		t.Fatalf("first version: %d, %v", v1, err)
	}
	v2, err := s.PutPricebook(ctx, "acme", "2026-04", json.RawMessage(`{"global_percent":"7"}`), "op")
	if err != nil || v2 != 2 {
		t.Fatalf("second version: %d, %v", v2, err)
	}
	p, err := s.PricebookFor(ctx, "acme", "2026-03")
	if err != nil || p.Version != 1 {
		t.Fatalf("March pricebook: %+v, %v", p, err)
	}
	if p, _ = s.PricebookFor(ctx, "acme", "2026-04"); p.Version != 2 {
		t.Fatalf("April pricebook version %d, want 2", p.Version)
	}
	if _, err := s.PricebookFor(ctx, "acme", "2025-12"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any pricebook: %v", err)
	}

	c := Cycle{CustomerID: "acme", Period: "2026-04", PricebookVersion: 2, Snapshots: map[string]int64{payerID: 42}}
	if err := s.CloseCycle(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseCycle(ctx, c); err != nil {
		t.Fatalf("closing again with the same pins: %v", err)
	}
	c.Snapshots = map[string]int64{payerID: 43}
	if err := s.CloseCycle(ctx, c); !errors.Is(err, ErrClosed) {
		t.Fatalf("closing again with other data: %v, want ErrClosed", err)
	}
	if _, err := s.PutPricebook(ctx, "acme", "2026-04", json.RawMessage(`{}`), "op"); !errors.Is(err, ErrClosed) {
		t.Fatalf("pricebook for a closed period: %v, want ErrClosed", err)
	}
	if _, err := s.PutPricebook(ctx, "acme", "2026-05", json.RawMessage(`{}`), "op"); err != nil {
		t.Fatalf("pricebook for the next period: %v", err)
	}
	if err := s.SetAccounts(ctx, "acme", "2026-02", nil, "op"); !errors.Is(err, ErrClosed) {
		t.Fatalf("accounts of a closed period: %v, want ErrClosed", err)
	}
	got, err := s.CycleOf(ctx, "acme", "2026-04")
	if err != nil || got.Snapshots[payerID] != 42 || got.PricebookVersion != 2 {
		t.Fatalf("closed cycle: %+v, %v", got, err)
	}
}

func TestCustomers(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	c := Customer{ID: "acme", Name: "Acme", Export: &Destination{URL: "gs://acme-billing/aws", Mode: "at_resale", Gzip: true}}
	if err := s.PutCustomer(ctx, c, "op"); err != nil {
		t.Fatal(err)
	}
	c.Name = "Acme Corp"
	if err := s.PutCustomer(ctx, c, "op"); err != nil {
		t.Fatal(err)
	}
	got, err := s.CustomerOf(ctx, "acme")
	if err != nil || got.Name != "Acme Corp" || got.Export.URL != "gs://acme-billing/aws" {
		t.Fatalf("customer %+v, %v", got, err)
	}
	if _, err := s.CustomerOf(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing customer: %v", err)
	}
	all, _ := s.Customers(ctx)
	if len(all) != 1 {
		t.Fatalf("customers: %+v", all)
	}
}
