package rebilling

import (
	"context"
	"io"
	"slices"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
)

// columns are the line item columns a closed cycle reads: what pricing
// needs (pricing.Columns) and what export.FromRecord prints.
var columns = func() []string {
	cols := slices.Clone(pricing.Columns)
	for _, c := range []string{
		billing.ColBillInvoiceID, billing.ColPayerAccountID, billing.ColLineItemID, billing.ColProduct,
		"pricing_rate_id", "reservation_subscription_id", "line_item_operation", "line_item_availability_zone",
		"line_item_line_item_description", billing.ColUsageStartDate, "line_item_usage_end_date",
		"line_item_usage_amount", "line_item_blended_rate", "line_item_blended_cost", "line_item_unblended_rate",
		"line_item_resource_id", billing.ColResourceTags,
	} {
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	return cols
}()

var (
	ciAccount    = billing.LineItems.MustIndex(billing.ColUsageAccountID)
	ciType       = billing.LineItems.MustIndex(billing.ColLineItemType)
	ciProduct    = billing.LineItems.MustIndex(billing.ColProductCode)
	ciService    = billing.LineItems.MustIndex("product_servicecode")
	ciUsageType  = billing.LineItems.MustIndex("line_item_usage_type")
	ciCost       = billing.LineItems.MustIndex(billing.ColUnblendedCost)
	ciLineItemID = billing.LineItems.MustIndex(billing.ColLineItemID)
	ciOperation  = billing.LineItems.MustIndex(billing.ColOperation)
	ciRegion     = billing.LineItems.MustIndex(billing.ColRegion)
	ciEntity     = billing.LineItems.MustIndex(billing.ColBillingEntity)
	ciDesc       = billing.LineItems.MustIndex(billing.ColDescription)
	ciCurrency   = billing.LineItems.MustIndex(billing.ColCurrency)
	ciUnblRate   = billing.LineItems.MustIndex(billing.ColUnblendedRate)
	ciAmortized  = billing.LineItems.MustIndex(billing.ColAmortizedCost)
	ciOnDemand   = billing.LineItems.MustIndex(billing.ColPublicOnDemandCost)
)

// lineItemOf reads what pricing needs from a canonical record.
func lineItemOf(rec *billing.Record) (pricing.LineItem, error) {
	v := rec.Values
	item := pricing.LineItem{AccountID: v[ciAccount], LineItemType: v[ciType], ProductCode: v[ciProduct], ServiceCode: v[ciService], UsageType: v[ciUsageType],
		Operation: v[ciOperation], Region: v[ciRegion], BillingEntity: v[ciEntity], Description: v[ciDesc], Currency: v[ciCurrency]}
	for _, a := range []struct {
		col  int
		name string
		to   *money.Amount
		has  *bool
	}{
		{ciCost, billing.ColUnblendedCost, &item.UnblendedCost, nil},
		{ciAmortized, billing.ColAmortizedCost, &item.AmortizedCost, &item.HasAmortizedCost},
		{ciOnDemand, billing.ColPublicOnDemandCost, &item.PublicOnDemandCost, &item.HasPublicOnDemandCost},
	} {
		s := v[a.col]
		if s == "" {
			continue
		}
		c, err := money.Parse(s)
		if err != nil {
			return item, fail(ErrBadLineItem, "line item %s: %s is not a decimal: %v", v[ciLineItemID], a.name, err)
		}
		*a.to = c
		if a.has != nil {
			*a.has = true
		}
	}
	return item, nil
}

// accountFilter lists the accounts of payer a customer owns, or nil when
// it owns the whole payer (rows are then checked one by one with
// reseller.Owner, since accounts assigned to others stay theirs).
func accountFilter(owners map[[2]string]string, payerID, customer string) []string {
	if owners[[2]string{payerID, reseller.AllAccounts}] == customer {
		return nil
	}
	accts := []string{}
	for k, c := range owners {
		if k[0] == payerID && c == customer && k[1] != reseller.AllAccounts {
			accts = append(accts, k[1])
		}
	}
	slices.Sort(accts)
	return accts
}

// Destination is an opened export destination.
type Destination struct {
	Store blob.Store
	Loc   blob.Location
}

// URL names a key of the destination as a URL: s3://bucket/key,
// gs://bucket/key or file:///key.
func (d Destination) URL(key string) string {
	if d.Loc.Scheme == "file" {
		return "file:///" + key
	}
	return d.Loc.Scheme + "://" + d.Loc.Bucket + "/" + key
}

// Close closes the destination's store when it holds connections.
func (d Destination) Close() {
	if c, ok := d.Store.(io.Closer); ok {
		_ = c.Close()
	}
}

// Target is one export of a payer's line items.
type Target struct {
	Dest     Destination
	Prefix   string // inside the store
	Mode     export.Mode
	Gzip     bool
	Customer string // "" for the reseller's unassigned report
}

func (t Target) spec(payerID, period string, tags []string, tempDir string) export.Spec {
	return export.Spec{AccountID: payerID, Period: period, Mode: t.Mode, Prefix: t.Prefix, Gzip: t.Gzip,
		TagKeys: tags, DropUndeclaredTags: true, TempDir: tempDir}
}

func (t Target) ref(payerID string, m *export.Manifest, key string) ExportRef {
	return ExportRef{URL: t.Dest.URL(key), Store: t.Dest.Store.String(), ManifestKey: key, CustomerID: t.Customer,
		PayerAccountID: payerID, Mode: string(t.Mode), Files: len(m.Files), Rows: m.Totals.Rows, UnblendedCost: m.Totals.UnBlendedCost}
}

// ModeFolder is the folder an export in mode m goes to.
func ModeFolder(m export.Mode) string {
	if m == export.AtCost {
		return ExportFolderAtCost
	}
	return ExportFolderAtResale
}

// pass streams one payer's pinned line items once: every row keep accepts
// is priced (when pr is set) and handed to the resale writer (when set)
// and to each export.
type pass struct {
	payerID  string
	period   string
	snapshot int64
	accounts []string // nil: every account
	keep     func(account string) bool
	pr       *pricing.Pricer
	totals   *pricing.Totals
	resale   ResaleWriter
	customer string
	version  int
	targets  []Target
	progress *Progress
	// withhold keeps the line items pr withholds out of the exports: the
	// customer never sees the reseller's discounts.
	withhold bool
	// currency checks each line item's currency (nil: none).
	currency *currencyCheck

	cost money.Amount // unblended cost of the rows kept
	rows int64
}

func (r *Rebiller) run(ctx context.Context, p *pass) ([]ExportRef, error) {
	scan := Scan{Payer: p.payerID, Period: p.period, SnapshotID: p.snapshot, Accounts: p.accounts, Columns: columns}
	var writers []*export.Writer
	abort := func() {
		for _, w := range writers {
			w.Abort()
		}
	}
	r.report(p.progress)
	var names export.TagNames
	if len(p.targets) > 0 {
		keys, err := r.Lake.TagKeys(ctx, scan)
		if err != nil {
			return nil, err
		}
		names = export.NewTagNames(keys)
		tags := names.Columns(keys)
		for _, t := range p.targets {
			w, err := export.NewWriter(ctx, t.Dest.Store, t.spec(p.payerID, p.period, tags, r.TempDir))
			if err != nil {
				abort()
				return nil, err
			}
			writers = append(writers, w)
		}
	}
	every := r.reportEvery()
	var row export.Row
	err := r.Lake.ScanLineItems(ctx, scan, func(rec *billing.Record) error {
		item, err := lineItemOf(rec)
		if err != nil {
			return err
		}
		if !p.keep(item.AccountID) {
			return nil
		}
		if err := p.currency.check(item); err != nil {
			return err
		}
		if p.pr != nil {
			if err := p.pr.MissingBasis(item); err != nil {
				return fail(ErrNoCostBasis, "line item %s: %v", rec.Values[ciLineItemID], err)
			}
		}
		var resale money.Amount
		var ref pricing.RuleRef
		if p.pr != nil {
			if p.totals != nil {
				resale, ref = p.pr.Add(p.totals, item)
			} else {
				resale, ref = p.pr.Resale(item)
			}
		}
		if p.resale != nil {
			r := ResaleRow{CustomerID: p.customer, Period: p.period, PayerAccountID: p.payerID, UsageAccountID: item.AccountID,
				LineItemID: rec.Values[ciLineItemID], LineItemType: item.LineItemType, ProductCode: item.ProductCode,
				ServiceCode: item.ServiceCode, UsageType: item.UsageType, UnblendedCost: item.UnblendedCost, ResaleCost: resale,
				Rule: string(ref), PricebookVersion: p.version, SourceSnapshotID: p.snapshot}
			if err := p.resale.Append(&r); err != nil {
				return err
			}
		}
		if len(writers) > 0 && !(p.withhold && ref == pricing.RefWithheld) {
			if err := export.FromRecord(rec, &row, names); err != nil {
				return fail(ErrBadLineItem, "line item %s: %v", rec.Values[ciLineItemID], err)
			}
			row.Resale = resale
			if p.pr != nil && rec.Values[ciUnblRate] != "" {
				if rate, ok := p.pr.ResaleRate(item, ref, row.UnBlendedRate); ok {
					row.ResaleRate = &rate
				}
			}
			for _, w := range writers {
				if err := w.Write(&row); err != nil {
					return err
				}
			}
		}
		p.cost = p.cost.Add(item.UnblendedCost)
		p.rows++
		p.progress.Rows++
		if p.progress.Rows%every == 0 {
			r.report(p.progress)
		}
		return nil
	})
	if err != nil {
		abort()
		return nil, err
	}
	var refs []ExportRef
	for i, w := range writers {
		m, err := w.Close()
		if err != nil {
			abort()
			return nil, err
		}
		refs = append(refs, p.targets[i].ref(p.payerID, m, w.Spec().ManifestKey()))
	}
	return refs, nil
}

// currencyCheck holds a cycle to one currency: the pricebook's own and
// the ones it converts, or, without one, the first line item's.
type currencyCheck struct {
	pr   *pricing.Pricer
	seen []string
}

func (c *currencyCheck) check(item pricing.LineItem) error {
	if c == nil || item.Currency == "" || slices.Contains(c.seen, item.Currency) {
		return nil
	}
	next := append(slices.Clone(c.seen), item.Currency)
	if _, err := c.pr.BillCurrency(next); err != nil {
		return fail(ErrCurrency, "usage account %s: %v", item.AccountID, err)
	}
	c.seen = next
	return nil
}

// currency is the bill's currency: the pricebook's, or the line items'.
func (c *currencyCheck) currency() string {
	cur, _ := c.pr.BillCurrency(c.seen)
	return cur
}
