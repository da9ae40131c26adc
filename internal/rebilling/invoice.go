package rebilling

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
)

// InvoiceLine is one row of billing.invoices: one line of a closed
// cycle's invoice, with the invoice's own fields repeated.
type InvoiceLine struct {
	CustomerID       string
	Period           string
	Line             int // from 1
	Kind             string
	Description      string
	LineItems        int64
	Cost             money.Amount
	Amount           money.Amount
	CorrectsPeriod   string
	Currency         string
	PricebookVersion int
	Total            money.Amount
	Due              money.Amount
	Pins             string
}

// StoredInvoice is the body of a closed cycle's invoice record: the bill
// the customer is charged, with what the reseller withheld from it and
// how many line items were priced.
type StoredInvoice struct {
	Bill     pricing.Bill `json:"bill"`
	Rows     int64        `json:"rows"`
	Withheld pricing.Sum  `json:"withheld"`
}

// DecodeInvoice reads a stored invoice record's body.
func DecodeInvoice(inv reseller.Invoice) (StoredInvoice, error) {
	var s StoredInvoice
	if err := json.Unmarshal(inv.Body, &s); err != nil {
		return s, fail(ErrBadInvoice, "customer %s's invoice of %s is unreadable: %v", inv.CustomerID, inv.Period, err)
	}
	return s, nil
}

// invoiceLines are the rows of billing.invoices for a bill.
func invoiceLines(b pricing.Bill, pins string) []InvoiceLine {
	out := make([]InvoiceLine, 0, len(b.Lines))
	for i, l := range b.Lines {
		out = append(out, InvoiceLine{CustomerID: b.CustomerID, Period: b.Period, Line: i + 1, Kind: string(l.Kind), Description: l.Description,
			LineItems: l.LineItems, Cost: l.Cost, Amount: l.Amount, CorrectsPeriod: l.CorrectsPeriod, Currency: b.Currency,
			PricebookVersion: b.PricebookVersion, Total: b.Total, Due: b.Due, Pins: pins})
	}
	return out
}

// keepInvoice makes a priced cycle's invoice a record: stored in the
// reseller's records (the first one stored stays: a closed cycle prices
// the same every time), in billing.invoices, and exported beside the
// line items of every target as invoice.csv and invoice.json, checked to
// reconcile with them exactly. It returns the stored invoice and the
// invoice.json URLs.
func (r *Rebiller) keepInvoice(ctx context.Context, pins string, s StoredInvoice, targets []Target, refs []ExportRef) (StoredInvoice, []string, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return s, nil, err
	}
	b := s.Bill
	rec, err := r.Records.SaveInvoice(ctx, reseller.Invoice{CustomerID: b.CustomerID, Period: b.Period, Pins: pins, Currency: b.Currency,
		Total: b.Total.String(), Due: b.Due.String(), Body: body})
	if err != nil {
		return s, nil, err
	}
	if rec.Pins != pins {
		return s, nil, fail(ErrBadInvoice, "customer %s's stored invoice of %s was priced from %s, not the cycle's pins %s", b.CustomerID, b.Period, rec.Pins, pins)
	}
	if s, err = DecodeInvoice(rec); err != nil {
		return s, nil, err
	}
	if err := r.Lake.ReplaceInvoice(ctx, s.Bill.CustomerID, s.Bill.Period, invoiceLines(s.Bill, pins)); err != nil {
		return s, nil, err
	}
	urls := []string{}
	for _, t := range targets {
		var keys []string
		var totals []export.Totals
		for _, ref := range refs {
			if ref.Store == t.Dest.Store.String() && ref.Mode == string(t.Mode) && ref.CustomerID == t.Customer {
				keys = append(keys, ref.ManifestKey)
				totals = append(totals, export.Totals{Rows: ref.Rows, UnBlendedCost: ref.UnblendedCost})
			}
		}
		inv, err := export.NewInvoice(s.Bill, pins, t.Mode, keys, totals)
		if err != nil {
			return s, nil, fail(ErrNotReconciled, "customer %s's invoice of %s: %v", b.CustomerID, b.Period, err)
		}
		key, err := export.WriteInvoice(ctx, t.Dest.Store, t.Prefix, inv)
		if err != nil {
			return s, nil, err
		}
		urls = append(urls, t.Dest.URL(key))
	}
	return s, urls, nil
}

// storedInvoice reads the invoice recorded for the cycle with pins (ok
// false: none yet).
func (r *Rebiller) storedInvoice(ctx context.Context, customer, period, pins string) (StoredInvoice, bool, error) {
	rec, err := r.Records.InvoiceOf(ctx, customer, period)
	if errors.Is(err, reseller.ErrNotFound) {
		return StoredInvoice{}, false, nil
	} else if err != nil {
		return StoredInvoice{}, false, err
	}
	if rec.Pins != pins {
		return StoredInvoice{}, false, fail(ErrBadInvoice, "customer %s's stored invoice of %s was priced from %s, not the cycle's pins %s", customer, period, rec.Pins, pins)
	}
	s, err := DecodeInvoice(rec)
	return s, err == nil, err
}

// invoiceExported reports whether every target holds the cycle's
// invoice.json, and their URLs.
func invoiceExported(ctx context.Context, targets []Target, customer, period string) ([]string, bool) {
	urls := []string{}
	for _, t := range targets {
		key, _ := export.InvoiceKeys(t.Prefix, customer, period)
		if _, err := t.Dest.Store.Stat(ctx, key); err != nil {
			return nil, false // missing, or unreadable: written again
		}
		urls = append(urls, t.Dest.URL(key))
	}
	return urls, true
}

// CycleCurrency returns the currency a customer's bill of period would be
// in, with pricebook p, from the payers' snapshots: an error of kind
// ErrCurrency when the customer's line items are in currencies one bill
// cannot hold. Closing a cycle checks it first, so such a cycle is
// refused before anything is pinned.
func (r *Rebiller) CycleCurrency(ctx context.Context, customer, period string, p pricing.Pricebook, snapshots map[string]int64) (string, error) {
	pr, err := pricing.NewPricer(p)
	if err != nil {
		return "", fail(ErrBadPricebook, "customer %s's pricebook: %v", customer, err)
	}
	owners, err := r.Records.Owners(ctx, period)
	if err != nil {
		return "", err
	}
	check := &currencyCheck{pr: pr}
	for payerID, snap := range snapshots {
		if snap == 0 {
			continue
		}
		scan := Scan{Payer: payerID, Period: period, SnapshotID: snap, Accounts: accountFilter(owners, payerID, customer),
			Columns: []string{billing.ColUsageAccountID, billing.ColCurrency}}
		err := r.Lake.ScanLineItems(ctx, scan, func(rec *billing.Record) error {
			acct := rec.Values[ciAccount]
			if reseller.Owner(owners, payerID, acct) != customer {
				return nil
			}
			return check.check(pricing.LineItem{AccountID: acct, Currency: rec.Values[ciCurrency]})
		})
		if err != nil {
			return "", err
		}
	}
	return check.currency(), nil
}
