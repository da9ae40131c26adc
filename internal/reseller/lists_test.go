package reseller

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestListPayers: payers with a status record and those only held
// (status unknown) are listed by ID, page by page, filtered by customer
// and status; an older status never replaces a newer one.
func TestListPayers(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.RecordPayerStatus(ctx, PayerStatus{PayerAccountID: "111111111111", CustomerID: "acme", Name: "Acme", Status: "active", Since: t0}))
	must(s.RecordPayerStatus(ctx, PayerStatus{PayerAccountID: "333333333333", CustomerID: "globex", Status: "checks_failed", Since: t0,
		Checks: &CheckCounts{Passed: 2, Failed: 1, Pending: 2}}))
	// An older record (a late retry) changes nothing.
	must(s.RecordPayerStatus(ctx, PayerStatus{PayerAccountID: "333333333333", CustomerID: "globex", Status: "validating", Since: t0.Add(-time.Hour)}))
	_, err := s.ClaimPayer(ctx, "222222222222", "acme", "op", false)
	must(err)
	_, err = s.ClaimPayer(ctx, "111111111111", "acme", "op", false)
	must(err)
	must(s.RecordCrawl(ctx, Crawl{PayerAccountID: "111111111111", SucceededAt: t0.Add(time.Hour)}))

	all, err := s.ListPayers(ctx, PayerFilter{Limit: 10})
	must(err)
	if len(all) != 3 || all[0].PayerAccountID != "111111111111" || all[1].PayerAccountID != "222222222222" || all[2].PayerAccountID != "333333333333" {
		t.Fatalf("all payers: %+v", all)
	}
	if p := all[0]; p.Status != "active" || !p.Since.Equal(t0) || !p.LastCrawl.Equal(t0.Add(time.Hour)) || p.Name != "Acme" || p.Checks != nil {
		t.Errorf("active payer: %+v", p)
	}
	if p := all[1]; p.Status != PayerStatusUnknown || p.Recorded || p.CustomerID != "acme" {
		t.Errorf("held payer: %+v", p)
	}
	if p := all[2]; p.Status != "checks_failed" || p.Checks == nil || *p.Checks != (CheckCounts{2, 1, 2}) {
		t.Errorf("checks_failed payer: %+v", p)
	}
	page, err := s.ListPayers(ctx, PayerFilter{After: "111111111111", Limit: 1})
	must(err)
	if len(page) != 1 || page[0].PayerAccountID != "222222222222" {
		t.Errorf("second page: %+v", page)
	}
	acme, err := s.ListPayers(ctx, PayerFilter{Customer: "acme", Statuses: []string{"active", PayerStatusUnknown}, Limit: 10})
	must(err)
	if len(acme) != 2 {
		t.Errorf("acme's active or unknown: %+v", acme)
	}
	// A payer held, with no status recorded, that its schedule crawls is
	// active, since when unknown; a status its onboarding records wins.
	must(s.RecordCrawl(ctx, Crawl{PayerAccountID: "222222222222", SucceededAt: t0}))
	held, err := s.ListPayers(ctx, PayerFilter{After: "111111111111", Limit: 1})
	must(err)
	if p := held[0]; p.Status != "active" || !p.Recorded || !p.Since.IsZero() || p.CustomerID != "acme" {
		t.Errorf("held payer crawled: %+v", p)
	}
	must(s.RecordPayerStatus(ctx, PayerStatus{PayerAccountID: "222222222222", CustomerID: "acme", Status: "offboarded", Since: t0}))
	must(s.RecordCrawl(ctx, Crawl{PayerAccountID: "222222222222", SucceededAt: t0.Add(time.Minute)}))
	if held, _ := s.ListPayers(ctx, PayerFilter{After: "111111111111", Limit: 1}); held[0].Status != "offboarded" {
		t.Errorf("a crawl replaced the recorded status: %+v", held[0])
	}
	failed, err := s.ListPayers(ctx, PayerFilter{Statuses: []string{"checks_failed"}, Limit: 10})
	must(err)
	if len(failed) != 1 || failed[0].CustomerID != "globex" {
		t.Errorf("checks_failed: %+v", failed)
	}
}

// TestListCustomersAndCycles: customers from any record, with their
// accounts and pricebook in force, last closed cycle and hold; cycles
// newest first, invoiced once their invoice is stored.
func TestListCustomersAndCycles(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutCustomer(ctx, Customer{ID: "acme", Name: "Acme Corp"}, "op"))
	must(s.SetAccounts(ctx, "acme", "2026-01", []Assignment{{PayerAccountID: payerID, Accounts: []string{"111111111111", "222222222222"}}}, "op"))
	must(s.SetAccounts(ctx, "globex", "2026-01", []Assignment{{PayerAccountID: "999999999999", Accounts: []string{AllAccounts}}}, "op"))
	_, err := s.PutPricebook(ctx, "acme", "2026-01", json.RawMessage(`{}`), "op")
	must(err)
	_, err = s.PutPricebook(ctx, "acme", "2026-09", json.RawMessage(`{}`), "op")
	must(err)
	for _, p := range []string{"2026-01", "2026-02", "2026-03"} {
		must(s.CloseCycle(ctx, Cycle{CustomerID: "acme", Period: p, PricebookVersion: 1, Snapshots: map[string]int64{payerID: 1}}))
	}
	_, err = s.SaveInvoice(ctx, Invoice{CustomerID: "acme", Period: "2026-02", Currency: "USD", Total: "12.50", Due: "10.00", Body: []byte(`{}`)})
	must(err)
	_, err = s.PutHold(ctx, Hold{CustomerID: "globex", Reason: "dispute", HeldBy: "op"})
	must(err)

	list, err := s.ListCustomers(ctx, "", "", "2026-04", 10)
	must(err)
	want := []CustomerListing{
		{ID: "acme", Name: "Acme Corp", Accounts: 2, PricebookVersion: 1, LastClosedPeriod: "2026-03"},
		{ID: "globex", Accounts: 1, OnHold: true},
	}
	if len(list) != 2 || list[0] != want[0] || list[1] != want[1] {
		t.Fatalf("customers: %+v, want %+v", list, want)
	}
	if page, err := s.ListCustomers(ctx, "acme", "", "2026-04", 1); err != nil || len(page) != 1 || page[0].ID != "globex" {
		t.Errorf("second page: %+v, %v", page, err)
	}
	if only, err := s.ListCustomers(ctx, "", "globex", "2026-04", 10); err != nil || len(only) != 1 || only[0].ID != "globex" {
		t.Errorf("one customer: %+v, %v", only, err)
	}
	if ok, err := s.CustomerKnown(ctx, "globex"); err != nil || !ok {
		t.Errorf("globex known: %v, %v", ok, err)
	}
	if ok, err := s.CustomerKnown(ctx, "initech"); err != nil || ok {
		t.Errorf("initech known: %v, %v", ok, err)
	}

	cycles, err := s.ListCycles(ctx, "acme", "", 2)
	must(err)
	if len(cycles) != 2 || cycles[0].Period != "2026-03" || cycles[0].Status != CycleClosed || cycles[1].Period != "2026-02" ||
		cycles[1].Status != CycleInvoiced || cycles[1].Total != "12.50" || cycles[1].Due != "10.00" || cycles[1].Currency != "USD" {
		t.Fatalf("first page of cycles: %+v", cycles)
	}
	rest, err := s.ListCycles(ctx, "acme", "2026-02", 2)
	must(err)
	if len(rest) != 1 || rest[0].Period != "2026-01" || rest[0].ClosedAt == "" {
		t.Errorf("second page of cycles: %+v", rest)
	}
}
