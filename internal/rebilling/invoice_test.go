package rebilling

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/reseller"
)

// withCurrency sets a line item's currency.
func withCurrency(r *billing.Record, c string) *billing.Record {
	r.Values[billing.LineItems.MustIndex(billing.ColCurrency)] = c
	return r
}

// A closed cycle's invoice is a record: stored, in billing.invoices, and
// exported beside the line items, reconciling exactly; SPP and EDP
// discounts stay with the reseller.
func TestPriceCycleKeepsTheInvoiceAndWithholdsDiscounts(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []export.Mode{export.AtResale, export.AtCost} {
		t.Run(string(mode), func(t *testing.T) {
			s := newStand(t)
			recs := []*billing.Record{
				item(payerID, acct1, "li-1", "Usage", "AmazonEC2", "BoxUsage:m5.large", "100.00"),  // 10% → 110
				item(payerID, acct1, "li-2", "Usage", "AmazonS3", "TimedStorage-ByteHrs", "50.00"), // -20% → 40
				item(payerID, acct1, "li-spp", "SppDiscount", "AmazonEC2", "BoxUsage:m5.large", "-2.50"),
				item(payerID, acct2, "li-edp", "EdpDiscount", "AmazonEC2", "BoxUsage:m5.large", "-6.00"),
				item(payerID, acct2, "li-4", "Tax", "AmazonEC2", "", "3.00"), // at cost
			}
			for _, r := range recs {
				withCurrency(r, "USD")
				r.Values[billing.LineItems.MustIndex(billing.ColUnblendedRate)] = "0.5"
			}
			pinned := s.lake.commit(payerID, period, recs...)
			s.close("acme", map[string]int64{payerID: pinned})

			res, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(mode)})
			s.must(err)
			// Independently: 110 + 40 + 3; the discounts are not the customer's.
			equal(t, "bill total", res.Bill.Total, "153")
			equal(t, "bill cost", res.Bill.Cost, "153")
			if res.Bill.Currency != "USD" || res.Rows != 5 || len(res.Invoices) != 1 {
				t.Fatalf("currency %q rows %d invoices %v; want USD, 5 priced, one invoice", res.Bill.Currency, res.Rows, res.Invoices)
			}
			for _, r := range s.lake.resale[[2]string{"acme", period}].rows {
				if strings.HasSuffix(r.LineItemType, "Discount") && (r.Rule != "withheld" || !r.ResaleCost.IsZero()) {
					t.Errorf("%s: resale %s by %s, want 0 withheld", r.LineItemID, r.ResaleCost, r.Rule)
				}
			}

			// The record outlives any workflow history.
			rec, err := s.recs.InvoiceOf(ctx, "acme", period)
			s.must(err)
			stored, err := DecodeInvoice(rec)
			s.must(err)
			if stored.Bill.Total != res.Bill.Total || rec.Due != "153.00" && rec.Due != "153" || stored.Withheld.Lines != 2 {
				t.Errorf("stored invoice total %s due %s withheld %+v", stored.Bill.Total, rec.Due, stored.Withheld)
			}
			equal(t, "withheld cost", stored.Withheld.Cost, "-8.5")
			lines := s.lake.invoices[[2]string{"acme", period}]
			var sum money.Amount
			for _, l := range lines {
				sum = sum.Add(l.Amount)
			}
			if len(lines) != len(res.Bill.Lines) || sum != res.Bill.Total {
				t.Errorf("billing.invoices has %d lines summing to %s, want %d summing to %s", len(lines), sum, len(res.Bill.Lines), res.Bill.Total)
			}

			// The export: no discount row, and the invoice reconciles
			// with the line items beside it.
			folder := filepath.Join(s.dir, "acme", ModeFolder(mode))
			csvName := payerID + "-aws-billing-detailed-line-items-with-resources-and-tags-" + period + ".csv"
			data, err := os.ReadFile(filepath.Join(folder, csvName))
			s.must(err)
			if strings.Contains(string(data), "li-spp") || strings.Contains(string(data), "li-edp") {
				t.Error("the customer's export shows the reseller's discounts")
			}
			if mode == export.AtResale && !strings.Contains(string(data), `"0.55"`) {
				t.Errorf("the resale rate of li-1 (0.5 +10%%) is not in the export:\n%s", data)
			}
			jsonKey, _ := export.InvoiceKeys(filepath.ToSlash(filepath.Join("acme", ModeFolder(mode))), "acme", period)
			inv, err := export.ReadInvoice(ctx, blob.NewLocal(s.dir), jsonKey)
			s.must(err)
			s.must(inv.Check())
			if inv.Reconciliation.ExportedRows != 3 || inv.Total != res.Bill.Total {
				t.Errorf("invoice.json: %+v", inv.Reconciliation)
			}
			if _, err := os.Stat(filepath.Join(folder, "acme-invoice-"+period+".csv")); err != nil {
				t.Error(err)
			}

			// Pricing again reads the record back and writes nothing.
			again, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(mode)})
			s.must(err)
			if !again.Replayed || again.Bill.Total != res.Bill.Total || again.Rows != res.Rows {
				t.Errorf("again: replayed %v total %s rows %d", again.Replayed, again.Bill.Total, again.Rows)
			}
		})
	}
}

// A tampered invoice.json no longer reconciles with its line items.
func TestInvoiceCheckFindsATamperedTotal(t *testing.T) {
	ctx := context.Background()
	s := newStand(t)
	pinned := s.september()
	s.close("acme", map[string]int64{payerID: pinned})
	_, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(export.AtResale)})
	s.must(err)
	key, _ := export.InvoiceKeys("acme/at-resale", "acme", period)
	inv, err := export.ReadInvoice(ctx, blob.NewLocal(s.dir), key)
	s.must(err)
	inv.Lines[0].Amount = inv.Lines[0].Amount.Add(amount(t, "0.000000000000000001"))
	if err := inv.Check(); !errors.Is(err, export.ErrNotReconciled) {
		t.Errorf("Check after one unit changed: %v, want ErrNotReconciled", err)
	}
	body, _ := json.Marshal(map[string]any{"format": "something else"})
	s.must(os.WriteFile(filepath.Join(s.dir, key), body, 0o600))
	if _, err := export.ReadInvoice(ctx, blob.NewLocal(s.dir), key); !errors.Is(err, export.ErrNotReconciled) {
		t.Errorf("ReadInvoice of a foreign file: %v", err)
	}
}

// One customer, two payers billed in different currencies: refused by
// name unless the pricebook converts.
func TestPriceCycleRefusesMixedCurrencies(t *testing.T) {
	ctx := context.Background()
	s := newStand(t)
	const payer2 = "999999999999"
	s.must(s.recs.SetAccounts(ctx, "acme", period, []reseller.Assignment{
		{PayerAccountID: payerID, Accounts: []string{acct1, acct2}}, {PayerAccountID: payer2, Accounts: []string{reseller.AllAccounts}}}, "op"))
	usd := s.lake.commit(payerID, period, withCurrency(item(payerID, acct1, "li-1", "Usage", "AmazonEC2", "BoxUsage", "100"), "USD"))
	eur := s.lake.commit(payer2, period, withCurrency(item(payer2, "555555555555", "li-9", "Usage", "AmazonEC2", "BoxUsage", "100"), "EUR"))
	s.close("acme", map[string]int64{payerID: usd, payer2: eur})
	_, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(export.AtResale)})
	if !errors.Is(err, ErrCurrency) || !strings.Contains(err.Error(), "EUR") {
		t.Fatalf("PriceCycle of USD and EUR payers: %v, want ErrCurrency naming them", err)
	}
	if _, err := s.recs.InvoiceOf(ctx, "acme", period); !errors.Is(err, reseller.ErrNotFound) {
		t.Errorf("an invoice was stored for a refused cycle: %v", err)
	}
}

// A retried pricing pass resumes after the last payer an earlier attempt
// finished, and ends exactly where a pass that never failed does.
func TestPriceCycleResumesAfterItsLastFinishedPayer(t *testing.T) {
	ctx := context.Background()
	const payer2 = "999999999999"
	setup := func() (*stand, map[string]int64) {
		s := newStand(t)
		s.must(s.recs.SetAccounts(ctx, "acme", period, []reseller.Assignment{
			{PayerAccountID: payerID, Accounts: []string{acct1, acct2}}, {PayerAccountID: payer2, Accounts: []string{reseller.AllAccounts}}}, "op"))
		snaps := map[string]int64{
			payerID: s.september(),
			payer2: s.lake.commit(payer2, period,
				item(payer2, "555555555555", "li-7", "Usage", "AmazonEC2", "BoxUsage:m5.large", "20.00"),
				item(payer2, "555555555555", "li-8", "Usage", "AmazonS3", "TimedStorage-ByteHrs", "5.00")),
		}
		s.close("acme", snaps)
		return s, snaps
	}
	clean, _ := setup()
	want, err := clean.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: clean.targets(export.AtResale)})
	clean.must(err)

	s, _ := setup()
	lost := errors.New("worker lost")
	s.lake.failScan = func(sc Scan) error {
		if sc.Payer == payer2 {
			return lost
		}
		return nil
	}
	var ck *PriceCheckpoint
	job := CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(export.AtResale),
		Checkpoint: func(c PriceCheckpoint) { ck = &c }}
	if _, err := s.r.PriceCycle(ctx, job); !errors.Is(err, lost) {
		t.Fatalf("first attempt: %v, want the lost worker", err)
	}
	if ck == nil || len(ck.Done) != 1 || ck.Done[0] != payerID || len(ck.ResaleFiles) != 1 {
		t.Fatalf("checkpoint after the first payer: %+v", ck)
	}
	// The checkpoint crosses a heartbeat as JSON.
	body, err := json.Marshal(ck)
	s.must(err)
	var resume PriceCheckpoint
	s.must(json.Unmarshal(body, &resume))

	s.lake.failScan = nil
	scanned := s.lake.scans[payerID]
	job.Resume = &resume
	got, err := s.r.PriceCycle(ctx, job)
	s.must(err)
	if s.lake.scans[payerID] != scanned {
		t.Errorf("the retry scanned payer %s again (%d scans, %d before)", payerID, s.lake.scans[payerID], scanned)
	}
	if got.Bill.Total != want.Bill.Total || got.Rows != want.Rows || len(got.Exports) != len(want.Exports) {
		t.Errorf("resumed: total %s rows %d exports %d; clean: %s, %d, %d", got.Bill.Total, got.Rows, len(got.Exports), want.Bill.Total, want.Rows, len(want.Exports))
	}
	if n, m := len(s.lake.resale[[2]string{"acme", period}].rows), len(clean.lake.resale[[2]string{"acme", period}].rows); n != m || n != 6 {
		t.Errorf("resale rows after the resumed pass %d, clean pass %d; want 6", n, m)
	}
}
