package lakehouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/rebilling"
)

// InvoicesTable is billing.invoices: every line of every closed cycle's
// invoice, with the invoice's totals repeated on each line, so that SQL
// engines read what customers are charged beside the line items it
// comes from. Partitioned by customer and billing period; a cycle's lines
// are replaced together.
const InvoicesTable = "invoices"

// InvoiceLine is one row of billing.invoices.
type InvoiceLine = rebilling.InvoiceLine

var invoicesSchema = func() *iceberg.Schema {
	dec := iceberg.DecimalTypeOf(money.Precision, money.Scale)
	str, i32, i64 := iceberg.PrimitiveTypes.String, iceberg.PrimitiveTypes.Int32, iceberg.PrimitiveTypes.Int64
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "customer_id", Type: str, Required: true, Doc: "the reseller's customer"},
		iceberg.NestedField{ID: 2, Name: billing.ColBillingPeriod, Type: str, Required: true, Doc: "the cycle's billing period, YYYY-MM"},
		iceberg.NestedField{ID: 3, Name: "line", Type: i32, Required: true, Doc: "the line's position on the invoice, from 1"},
		iceberg.NestedField{ID: 4, Name: "kind", Type: str, Required: true, Doc: "usage, aws_support, aws_credits, aws_refunds, support_fee, credit, tax or adjustment"},
		iceberg.NestedField{ID: 5, Name: "description", Type: str, Required: true},
		iceberg.NestedField{ID: 6, Name: "line_items", Type: i64, Required: true, Doc: "how many line items the line sums (0 for others)"},
		iceberg.NestedField{ID: 7, Name: "cost", Type: dec, Required: true, Doc: "what AWS charged for the line, exact"},
		iceberg.NestedField{ID: 8, Name: "amount", Type: dec, Required: true, Doc: "what the customer is charged for the line, exact"},
		iceberg.NestedField{ID: 9, Name: "corrects_period", Type: str, Doc: "for an adjustment, the closed period it corrects"},
		iceberg.NestedField{ID: 10, Name: "currency", Type: str, Doc: "ISO 4217 code of every amount of the invoice"},
		iceberg.NestedField{ID: 11, Name: "pricebook_version", Type: i32, Required: true},
		iceberg.NestedField{ID: 12, Name: "invoice_total", Type: dec, Required: true, Doc: "the sum of the invoice's amounts, exact"},
		iceberg.NestedField{ID: 13, Name: "invoice_due", Type: dec, Required: true, Doc: "invoice_total rounded half-even to cents"},
		iceberg.NestedField{ID: 14, Name: "pins", Type: str, Required: true, Doc: "the pricebook version and line_items snapshot per payer the cycle was priced from"},
	)
}()

// InvoicesTableID is the identifier of billing.invoices.
func InvoicesTableID() table.Identifier { return table.Identifier{Namespace, InvoicesTable} }

// Invoices loads billing.invoices, creating it on first use.
func (l *Lake) Invoices(ctx context.Context) (*table.Table, error) {
	id := InvoicesTableID()
	tbl, err := l.cat.LoadTable(ctx, id)
	if err == nil || !errors.Is(err, catalog.ErrNoSuchTable) {
		return tbl, err
	}
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName("customer_id", "customer_id", iceberg.IdentityTransform{}, invoicesSchema, nil),
		iceberg.AddPartitionFieldByName(billing.ColBillingPeriod, billing.ColBillingPeriod, iceberg.IdentityTransform{}, invoicesSchema, nil),
	)
	if err != nil {
		return nil, fmt.Errorf("partition spec of %s: %w", id, err)
	}
	_, err = l.cat.CreateTable(ctx, id, invoicesSchema, catalog.WithPartitionSpec(&spec), catalog.WithProperties(iceberg.Properties{
		"format-version":              "2",
		table.ManifestMergeEnabledKey: "true",
		"comment":                     "closed billing cycles' invoices, one row per invoice line; one partition per customer and billing period",
	}))
	if err != nil && !errors.Is(err, catalog.ErrTableAlreadyExists) {
		return nil, fmt.Errorf("create table %s: %w", id, err)
	}
	return l.cat.LoadTable(ctx, id)
}

// ReplaceInvoice makes lines the whole of customer's period in
// billing.invoices, in one snapshot; a commit that loses a race with
// another customer's is redone.
func (l *Lake) ReplaceInvoice(ctx context.Context, customer, period string, lines []InvoiceLine) error {
	_, err := retryLostRace(ctx, func() (struct{}, error) {
		return struct{}{}, l.replaceInvoiceOnce(ctx, customer, period, lines)
	})
	if err != nil {
		return err
	}
	return l.mirrorCustomer(ctx, InvoicesTableID(), customer, period)
}

func (l *Lake) replaceInvoiceOnce(ctx context.Context, customer, period string, lines []InvoiceLine) error {
	tbl, err := l.Invoices(ctx)
	if err != nil {
		return err
	}
	sc, err := table.SchemaToArrowSchema(invoicesSchema, nil, false, false)
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	dec := func(i int, a money.Amount) { b.Field(i).(*array.Decimal128Builder).Append(a.Num()) }
	for _, ln := range lines {
		str(0, customer)
		str(1, period)
		b.Field(2).(*array.Int32Builder).Append(int32(ln.Line))
		str(3, ln.Kind)
		str(4, ln.Description)
		b.Field(5).(*array.Int64Builder).Append(ln.LineItems)
		dec(6, ln.Cost)
		dec(7, ln.Amount)
		if ln.CorrectsPeriod == "" {
			b.Field(8).AppendNull()
		} else {
			str(8, ln.CorrectsPeriod)
		}
		str(9, ln.Currency)
		b.Field(10).(*array.Int32Builder).Append(int32(ln.PricebookVersion))
		dec(11, ln.Total)
		dec(12, ln.Due)
		str(13, ln.Pins)
	}
	filter := iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("customer_id"), customer), iceberg.EqualTo(iceberg.Reference(billing.ColBillingPeriod), period))
	return l.overwriteRows(ctx, tbl, sc, b, iceberg.Properties{PropCustomer: customer, PropPeriod: period}, filter, "the invoice of "+customer+" "+period)
}

// ScanInvoice reads customer's period's invoice lines from the current
// snapshot, in line order.
func (l *Lake) ScanInvoice(ctx context.Context, customer, period string) ([]InvoiceLine, error) {
	tbl, err := l.Invoices(ctx)
	if err != nil || tbl.CurrentSnapshot() == nil {
		return nil, err
	}
	filter := iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("customer_id"), customer), iceberg.EqualTo(iceberg.Reference(billing.ColBillingPeriod), period))
	at, err := tbl.Scan(table.WithRowFilter(filter)).ToArrowTable(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan the invoice of %s %s: %w", customer, period, err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	var out []InvoiceLine
	for tr.Next() {
		rec := tr.RecordBatch()
		s := func(i, r int) string {
			c := rec.Column(i).(*array.String)
			if c.IsNull(r) {
				return ""
			}
			return c.Value(r)
		}
		d := func(i, r int) money.Amount { return money.FromNum(rec.Column(i).(*array.Decimal128).Value(r)) }
		for r := 0; r < int(rec.NumRows()); r++ {
			out = append(out, InvoiceLine{CustomerID: s(0, r), Period: s(1, r), Line: int(rec.Column(2).(*array.Int32).Value(r)),
				Kind: s(3, r), Description: s(4, r), LineItems: rec.Column(5).(*array.Int64).Value(r), Cost: d(6, r), Amount: d(7, r),
				CorrectsPeriod: s(8, r), Currency: s(9, r), PricebookVersion: int(rec.Column(10).(*array.Int32).Value(r)),
				Total: d(11, r), Due: d(12, r), Pins: s(13, r)})
		}
	}
	slices.SortFunc(out, func(a, b InvoiceLine) int { return cmp.Compare(a.Line, b.Line) })
	return out, nil
}
