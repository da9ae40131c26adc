package reseller

import (
	"context"
	"errors"
	"testing"
)

// TestPayerClaims: the first claim holds the payer, another customer's
// claim conflicts unless it is a takeover, a release frees only the
// releasing customer's own claim, and reopening the store (the schema
// setup runs again) keeps every record.
func TestPayerClaims(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	c, err := s.ClaimPayer(ctx, payerID, "acme", "acme-key", false)
	if err != nil || !c.Created {
		t.Fatalf("first claim: %+v, %v", c, err)
	}
	if c, err := s.ClaimPayer(ctx, payerID, "acme", "op", false); err != nil || c.Created {
		t.Fatalf("own claim again: %+v, %v", c, err)
	}
	if _, err := s.ClaimPayer(ctx, payerID, "globex", "globex-key", false); !errors.Is(err, ErrConflict) {
		t.Fatalf("another customer's claim: %v, want ErrConflict", err)
	}
	if err := s.ReleasePayer(ctx, payerID, "globex"); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.PayerOwner(ctx, payerID); o != "acme" {
		t.Fatalf("owner after another customer's release: %q", o)
	}
	s2, err := Open(ctx, s.db, false)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := s2.PayerOwner(ctx, payerID); o != "acme" {
		t.Fatalf("owner after reopening: %q", o)
	}
	c, err = s.ClaimPayer(ctx, payerID, "globex", "operator", true)
	if err != nil || c.TakenFrom != "acme" || c.Created {
		t.Fatalf("takeover: %+v, %v", c, err)
	}
	if o, _ := s.PayerOwner(ctx, payerID); o != "globex" {
		t.Fatalf("owner after takeover: %q", o)
	}
	if o, err := s.PayerOwner(ctx, "000000000000"); o != "" || err != nil {
		t.Fatalf("a payer nobody registered: %q, %v", o, err)
	}
}

// TestPayerClaimsMigrated: payers a customer owned wholly before the
// record existed are held by that customer once the store opens.
func TestPayerClaimsMigrated(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.SetAccounts(ctx, "initech", "2026-01", []Assignment{{PayerAccountID: payerID, Accounts: []string{AllAccounts}}}, "op"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccounts(ctx, "initech", "2026-01", []Assignment{{PayerAccountID: "310987654321", Accounts: []string{"111111111111"}}}, "op"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM costlake_payer_owners`); err != nil { // as before the record existed
		t.Fatal(err)
	}
	if _, err := Open(ctx, s.db, false); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.PayerOwner(ctx, payerID); o != "" {
		t.Fatalf("a payer whose whole assignment was removed is nobody's: %q", o)
	}
	if err := s.SetAccounts(ctx, "initech", "2026-02", []Assignment{{PayerAccountID: payerID, Accounts: []string{AllAccounts}}}, "op"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM costlake_payer_owners`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, s.db, false); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.PayerOwner(ctx, payerID); o != "initech" {
		t.Fatalf("migrated owner: %q, want initech", o)
	}
	if o, _ := s.PayerOwner(ctx, "310987654321"); o != "" {
		t.Fatalf("a payer owned only in part is not claimed: %q", o)
	}
}
