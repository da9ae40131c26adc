package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
)

// InvoiceFormat names invoice.json's layout.
const InvoiceFormat = "costlake-invoice-1"

// ErrNotReconciled: an invoice's lines, or the line items exported beside
// it, do not add up to its total exactly.
var ErrNotReconciled = errors.New("invoice does not reconcile")

// Invoice is invoice.json: a closed cycle's bill, exported beside the
// cycle's line items, with the proof that they add up to it.
type Invoice struct {
	Format string `json:"format"`
	pricing.Bill
	// Pins are the pricebook version and line_items snapshots the cycle
	// was priced from.
	Pins string `json:"pins"`
	// Mode is the export's: its line items print cost (at_cost) or resale.
	Mode           Mode                  `json:"mode"`
	Reconciliation InvoiceReconciliation `json:"reconciliation"`
}

// InvoiceReconciliation proves the invoice exactly: the line items
// exported beside it (their manifests' totals, in the export's mode)
// equal the invoice's line item lines (their amount at resale, their
// cost at cost), and line items + support fee + credits + adjustments +
// taxes = total, to the last digit.
type InvoiceReconciliation struct {
	// Manifests are the keys of the line item exports' manifests.
	Manifests []string `json:"manifests"`
	// ExportedRows and Exported sum the manifests' rows and unblended cost.
	ExportedRows int64        `json:"exported_rows"`
	Exported     money.Amount `json:"exported"`
	// LineItemRows and LineItemCost sum the invoice's line item lines
	// (usage, AWS support, credits, refunds, tax): rows and cost.
	LineItemRows int64        `json:"line_item_rows"`
	LineItemCost money.Amount `json:"line_item_cost"`
	// LineItems, SupportFee, Credits, Adjustments and Taxes (the
	// reseller's) sum the invoice's amounts by kind; their sum is Total.
	LineItems   money.Amount `json:"line_items"`
	SupportFee  money.Amount `json:"support_fee"`
	Credits     money.Amount `json:"credits"`
	Adjustments money.Amount `json:"adjustments"`
	Taxes       money.Amount `json:"taxes"`
	Total       money.Amount `json:"total"`
}

// lineItemKind reports whether a bill line sums line items.
func lineItemKind(k pricing.LineKind) bool {
	switch k {
	case pricing.LineUsage, pricing.LineAWSSupport, pricing.LineAWSCredits, pricing.LineAWSRefunds, pricing.LineTax:
		return true
	}
	return false
}

// NewInvoice builds invoice.json of bill for an export in mode whose
// line item exports' manifests (under keys) have totals, and checks it:
// an error matching ErrNotReconciled when anything does not add up.
func NewInvoice(bill pricing.Bill, pins string, mode Mode, keys []string, totals []Totals) (Invoice, error) {
	inv := Invoice{Format: InvoiceFormat, Bill: bill, Pins: pins, Mode: mode}
	r := &inv.Reconciliation
	r.Manifests = append([]string{}, keys...)
	for _, t := range totals {
		r.ExportedRows += t.Rows
		r.Exported = r.Exported.Add(t.UnBlendedCost)
	}
	for _, l := range bill.Lines {
		switch {
		case lineItemKind(l.Kind):
			r.LineItemRows += l.LineItems
			r.LineItemCost = r.LineItemCost.Add(l.Cost)
			r.LineItems = r.LineItems.Add(l.Amount)
		case l.Kind == pricing.LineSupportFee:
			r.SupportFee = r.SupportFee.Add(l.Amount)
		case l.Kind == pricing.LineCredit:
			r.Credits = r.Credits.Add(l.Amount)
		case l.Kind == pricing.LineResellerTax:
			r.Taxes = r.Taxes.Add(l.Amount)
		default:
			r.Adjustments = r.Adjustments.Add(l.Amount)
		}
	}
	r.Total = r.LineItems.Add(r.SupportFee).Add(r.Credits).Add(r.Adjustments).Add(r.Taxes)
	return inv, inv.Check()
}

// Check verifies the invoice's arithmetic: its own lines against its
// total and its reconciliation, and the exported line items against its
// line item lines.
func (inv Invoice) Check() error {
	r := inv.Reconciliation
	if r.Total != inv.Total || r.LineItems.Add(r.SupportFee).Add(r.Credits).Add(r.Adjustments).Add(r.Taxes) != inv.Total {
		return fmt.Errorf("%w: line items %s + support fee %s + credits %s + adjustments %s + taxes %s ≠ total %s", ErrNotReconciled,
			r.LineItems, r.SupportFee, r.Credits, r.Adjustments, r.Taxes, inv.Total)
	}
	var sum money.Amount
	for _, l := range inv.Lines {
		sum = sum.Add(l.Amount)
	}
	if sum != inv.Total {
		return fmt.Errorf("%w: its lines sum to %s, its total is %s", ErrNotReconciled, sum, inv.Total)
	}
	invoiced := r.LineItems
	if inv.Mode == AtCost {
		invoiced = r.LineItemCost
	}
	if r.ExportedRows != r.LineItemRows || r.Exported != invoiced {
		return fmt.Errorf("%w: the exported line items (%d rows, %s) are not the invoice's (%d rows, %s)", ErrNotReconciled,
			r.ExportedRows, r.Exported, r.LineItemRows, invoiced)
	}
	return nil
}

// InvoiceKeys are the keys of a customer's invoice of period under prefix.
func InvoiceKeys(prefix, customer, period string) (jsonKey, csvKey string) {
	stem := strings.TrimPrefix(path.Join(prefix, customer+"-invoice-"+period), "/")
	return stem + ".json", stem + ".csv"
}

// WriteInvoice writes invoice.csv, then invoice.json (so the JSON's
// presence means both are complete), under prefix.
func WriteInvoice(ctx context.Context, store blob.Store, prefix string, inv Invoice) (jsonKey string, err error) {
	if err := inv.Check(); err != nil {
		return "", err
	}
	jsonKey, csvKey := InvoiceKeys(prefix, inv.CustomerID, inv.Period)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"Line", "Kind", "Description", "CorrectsPeriod", "LineItems", "Cost", "Amount", "Currency"})
	for i, l := range inv.Lines {
		_ = w.Write([]string{strconv.Itoa(i + 1), string(l.Kind), l.Description, l.CorrectsPeriod,
			strconv.FormatInt(l.LineItems, 10), l.Cost.String(), l.Amount.String(), inv.Currency})
	}
	_ = w.Write([]string{"", "total", "Total", "", "", inv.Cost.String(), inv.Total.String(), inv.Currency})
	_ = w.Write([]string{"", "due", "Due (rounded half-even to cents)", "", "", "", inv.Due.String(), inv.Currency})
	w.Flush()
	if err := store.Put(ctx, csvKey, &buf); err != nil {
		return "", fmt.Errorf("write %s: %w", csvKey, err)
	}
	body, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return "", err
	}
	if err := store.Put(ctx, jsonKey, bytes.NewReader(append(body, '\n'))); err != nil {
		return "", fmt.Errorf("write %s: %w", jsonKey, err)
	}
	return jsonKey, nil
}

// maxInvoiceBytes bounds invoice.json when read back: it has a few lines.
const maxInvoiceBytes = 8 << 20

// ReadInvoice reads invoice.json back; a missing one wraps blob.ErrNotFound.
func ReadInvoice(ctx context.Context, store blob.Store, key string) (Invoice, error) {
	rc, err := store.Open(ctx, key)
	if err != nil {
		return Invoice{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxInvoiceBytes+1))
	if err != nil {
		return Invoice{}, fmt.Errorf("read %s: %w", key, err)
	}
	if len(b) > maxInvoiceBytes {
		return Invoice{}, fmt.Errorf("%w: %s is over %d bytes", ErrNotReconciled, key, maxInvoiceBytes)
	}
	var inv Invoice
	if err := json.Unmarshal(b, &inv); err != nil || inv.Format != InvoiceFormat {
		return Invoice{}, fmt.Errorf("%w: %s is not a costlake invoice", ErrNotReconciled, key)
	}
	return inv, nil
}
