package lakehouse

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/money"
)

// CostExplorerTable is billing.ce_daily_costs: daily costs from Cost
// Explorer per payer, linked account, service and record type, for payers
// that grant only ce:GetCostAndUsage. Like line_items it is partitioned by
// payer and billing period (identity), so a crawl's days rewrite only
// their months.
const CostExplorerTable = "ce_daily_costs"

// Columns of billing.ce_daily_costs.
const (
	ColCEPayer        = "payer_account_id"
	ColCEPeriod       = "billing_period" // YYYY-MM of usage_date
	ColCEDate         = "usage_date"
	ColCEAccount      = "linked_account_id"
	ColCEService      = "service"
	ColCERecordType   = "record_type"
	ColCEUnblended    = "unblended_cost"
	ColCEAmortized    = "amortized_cost"
	ColCENetUnblended = "net_unblended_cost"
	ColCECurrency     = "currency"
	ColCEEstimated    = "estimated"
)

// Snapshot summary properties of a Cost Explorer commit, besides
// PropPayer, PropRunID, PropRows and PropSource.
const (
	PropRangeStart = "costlake.range-start" // first day replaced, YYYY-MM-DD
	PropRangeEnd   = "costlake.range-end"   // day after the last, YYYY-MM-DD
	PropDigest     = "costlake.rows-sha256" // digest of the rows committed
	// SourceCostExplorer is PropSource of Cost Explorer commits.
	SourceCostExplorer = "cost-explorer:GetCostAndUsage"
)

// ErrCostRows reports rows that do not belong to the range they replace.
var ErrCostRows = errors.New("invalid Cost Explorer rows")

// CostExplorerTableID is the identifier of billing.ce_daily_costs.
func CostExplorerTableID() table.Identifier { return table.Identifier{Namespace, CostExplorerTable} }

// CostExplorerSchema is the Iceberg schema of billing.ce_daily_costs;
// amounts have the precision and scale of every money column.
func CostExplorerSchema() *iceberg.Schema {
	dec := iceberg.DecimalTypeOf(money.Precision, money.Scale)
	str := iceberg.PrimitiveTypes.String
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: ColCEPayer, Type: str, Required: true, Doc: "the payer (management) account"},
		iceberg.NestedField{ID: 2, Name: ColCEPeriod, Type: str, Required: true, Doc: "billing period of usage_date, YYYY-MM"},
		iceberg.NestedField{ID: 3, Name: ColCEDate, Type: iceberg.PrimitiveTypes.Date, Required: true, Doc: "the day of usage (UTC)"},
		iceberg.NestedField{ID: 4, Name: ColCEAccount, Type: str, Required: true, Doc: "Cost Explorer LINKED_ACCOUNT"},
		iceberg.NestedField{ID: 5, Name: ColCEService, Type: str, Required: true, Doc: "Cost Explorer SERVICE"},
		iceberg.NestedField{ID: 6, Name: ColCERecordType, Type: str, Required: true, Doc: "Cost Explorer RECORD_TYPE (Usage, Tax, Credit, …)"},
		iceberg.NestedField{ID: 7, Name: ColCEUnblended, Type: dec, Required: true, Doc: "UnblendedCost"},
		iceberg.NestedField{ID: 8, Name: ColCEAmortized, Type: dec, Required: true, Doc: "AmortizedCost"},
		iceberg.NestedField{ID: 9, Name: ColCENetUnblended, Type: dec, Required: true, Doc: "NetUnblendedCost"},
		iceberg.NestedField{ID: 10, Name: ColCECurrency, Type: str, Required: true, Doc: "unit of the amounts, e.g. USD"},
		iceberg.NestedField{ID: 11, Name: ColCEEstimated, Type: iceberg.PrimitiveTypes.Bool, Required: true, Doc: "Cost Explorer had not finalized the day"},
	)
}

// ensureCostExplorerTable creates billing.ce_daily_costs when missing.
func (l *Lake) ensureCostExplorerTable(ctx context.Context) error {
	id := CostExplorerTableID()
	exists, err := l.cat.CheckTableExists(ctx, id)
	if err != nil {
		return fmt.Errorf("check table %s: %w", id, err)
	}
	if exists {
		return nil
	}
	schema := CostExplorerSchema()
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(ColCEPayer, ColCEPayer, iceberg.IdentityTransform{}, schema, nil),
		iceberg.AddPartitionFieldByName(ColCEPeriod, ColCEPeriod, iceberg.IdentityTransform{}, schema, nil),
	)
	if err != nil {
		return fmt.Errorf("partition spec of %s: %w", id, err)
	}
	_, err = l.cat.CreateTable(ctx, id, schema,
		catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(iceberg.Properties{
			"format-version":                  "2",
			"write.parquet.compression-codec": "zstd",
			table.ManifestMergeEnabledKey:     "true", // appends merge small manifests: scans open few
			"comment":                         "AWS Cost Explorer daily costs per linked account, service and record type; one partition per payer and billing period",
		}))
	if err != nil && !errors.Is(err, catalog.ErrTableAlreadyExists) {
		return fmt.Errorf("create table %s: %w", id, err)
	}
	return nil
}

// CostExplorerDaily loads the current metadata of billing.ce_daily_costs.
func (l *Lake) CostExplorerDaily(ctx context.Context) (*table.Table, error) {
	return l.cat.LoadTable(ctx, CostExplorerTableID())
}

// CostExplorerCommit describes a snapshot that replaced days of a payer.
type CostExplorerCommit struct {
	SnapshotID int64
	Start, End string
	RunID      string
	Digest     string
	Rows       int64
}

// LatestCostExplorerCommit reads the newest commit of payer whose range
// overlaps [start, end), from its record (costlake_commits).
func (l *Lake) LatestCostExplorerCommit(ctx context.Context, payer, start, end string) (c CostExplorerCommit, ok bool, err error) {
	r, ok, err := l.latestOverlapping(ctx, CostExplorerTable, payer, start, end)
	if !ok || err != nil {
		return c, false, err
	}
	p := r.Props
	rows, _ := strconv.ParseInt(p[PropRows], 10, 64)
	return CostExplorerCommit{SnapshotID: r.SnapshotID, Start: p[PropRangeStart], End: p[PropRangeEnd],
		RunID: p[PropRunID], Digest: p[PropDigest], Rows: rows}, true, nil
}

func costRangeFilter(payer, start, end string) (iceberg.BooleanExpression, error) {
	s, err := epochDays(start)
	if err != nil {
		return nil, err
	}
	e, err := epochDays(end)
	if err != nil {
		return nil, err
	}
	return iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(ColCEPayer), payer),
		iceberg.GreaterThanEqual(iceberg.Reference(ColCEDate), s),
		iceberg.LessThan(iceberg.Reference(ColCEDate), e),
	), nil
}

func epochDays(day string) (iceberg.Date, error) {
	t, err := time.Parse(costexplorer.DateLayout, day)
	if err != nil {
		return 0, fmt.Errorf("%w: date %q: want YYYY-MM-DD", ErrCostRows, day)
	}
	return iceberg.Date(t.Unix() / 86400), nil
}

// ReplaceCostExplorerDays makes rows the whole of payer's Cost Explorer
// costs for the days in [start, end) (YYYY-MM-DD, end exclusive), in one
// snapshot: the payer's earlier rows of those days leave the table (files
// holding other days too are rewritten without them) and rows enter it,
// atomically. The snapshot summary records the payer, the range, runID,
// the row count and a digest of the rows. When the newest commit touching
// the range is this run's with the same rows (a retried activity), nothing
// changes and its snapshot is returned; anything else is replaced, never
// added twice. Every row must fall in the range.
func (l *Lake) ReplaceCostExplorerDays(ctx context.Context, payer, start, end string, rows []costexplorer.DailyCost, runID string) (snapshotID int64, err error) {
	if payer == "" {
		return 0, fmt.Errorf("%w: no payer", ErrCostRows)
	}
	if err := costexplorer.CheckRange(start, end); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCostRows, err)
	}
	filter, err := costRangeFilter(payer, start, end)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		if r.Date < start || r.Date >= end {
			return 0, fmt.Errorf("%w: a row of %s is outside %s to %s", ErrCostRows, r.Date, start, end)
		}
		if _, err := time.Parse(costexplorer.DateLayout, r.Date); err != nil {
			return 0, fmt.Errorf("%w: date %q: want YYYY-MM-DD", ErrCostRows, r.Date)
		}
	}
	digest := costDigest(rows)
	props := iceberg.Properties{
		PropSource:     SourceCostExplorer,
		PropPayer:      payer,
		PropRangeStart: start,
		PropRangeEnd:   end,
		PropRunID:      runID,
		PropRows:       strconv.Itoa(len(rows)),
		PropDigest:     digest,
	}
	return retryLostRace(ctx, func() (int64, error) {
		tbl, err := l.CostExplorerDaily(ctx)
		if err != nil {
			return 0, err
		}
		prev, ok, err := l.LatestCostExplorerCommit(ctx, payer, start, end)
		if err != nil {
			return 0, err
		}
		if ok &&
			prev.Start == start && prev.End == end && prev.RunID == runID && prev.Digest == digest {
			return prev.SnapshotID, nil // our own commit, retried
		}
		id, err := l.overwriteCostDays(ctx, tbl, filter, rows, props)
		if err != nil {
			return 0, fmt.Errorf("replace Cost Explorer days %s to %s of %s: %w", start, end, payer, err)
		}
		return id, nil
	})
}

func (l *Lake) overwriteCostDays(ctx context.Context, tbl *table.Table, filter iceberg.BooleanExpression, rows []costexplorer.DailyCost, props iceberg.Properties) (int64, error) {
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return 0, fmt.Errorf("arrow schema: %w", err)
	}
	rec, err := costRecord(sc, props[PropPayer], rows)
	if err != nil {
		return 0, err
	}
	defer rec.Release()
	rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	if err != nil {
		return 0, err
	}
	defer rdr.Release()
	tx := tbl.NewTransaction()
	if err := tx.Overwrite(ctx, rdr, props, table.WithOverwriteFilter(filter)); err != nil {
		return 0, fmt.Errorf("stage overwrite: %w", err)
	}
	committed, err := l.commit(ctx, tx, tbl)
	if err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	if committed.CurrentSnapshot() == nil {
		return 0, errors.New("commit left no snapshot")
	}
	return committed.CurrentSnapshot().SnapshotID, nil
}

// costRecord builds one Arrow batch of rows in the table's schema.
func costRecord(sc *arrow.Schema, payer string, rows []costexplorer.DailyCost) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	col := func(name string) array.Builder {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			panic(fmt.Sprintf("lakehouse: %s has no column %s", CostExplorerTable, name))
		}
		return b.Field(idx[0])
	}
	var (
		payerB     = col(ColCEPayer).(*array.StringBuilder)
		periodB    = col(ColCEPeriod).(*array.StringBuilder)
		dateB      = col(ColCEDate).(*array.Date32Builder)
		accountB   = col(ColCEAccount).(*array.StringBuilder)
		serviceB   = col(ColCEService).(*array.StringBuilder)
		typeB      = col(ColCERecordType).(*array.StringBuilder)
		unblendedB = col(ColCEUnblended).(*array.Decimal128Builder)
		amortB     = col(ColCEAmortized).(*array.Decimal128Builder)
		netB       = col(ColCENetUnblended).(*array.Decimal128Builder)
		currencyB  = col(ColCECurrency).(*array.StringBuilder)
		estB       = col(ColCEEstimated).(*array.BooleanBuilder)
	)
	for _, r := range rows {
		day, err := time.Parse(costexplorer.DateLayout, r.Date)
		if err != nil {
			return nil, fmt.Errorf("%w: date %q", ErrCostRows, r.Date)
		}
		payerB.Append(payer)
		periodB.Append(day.Format("2006-01"))
		dateB.Append(arrow.Date32FromTime(day))
		accountB.Append(r.LinkedAccount)
		serviceB.Append(r.Service)
		typeB.Append(r.RecordType)
		unblendedB.Append(r.Unblended.Num())
		amortB.Append(r.Amortized.Num())
		netB.Append(r.NetUnblended.Num())
		currencyB.Append(r.Currency)
		estB.Append(r.Estimated)
	}
	return b.NewRecordBatch(), nil
}

// costDigest identifies a set of rows regardless of their order.
func costDigest(rows []costexplorer.DailyCost) string {
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = fmt.Sprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%t\n", r.Date, r.LinkedAccount, r.Service, r.RecordType,
			r.Unblended, r.Amortized, r.NetUnblended, r.Currency, r.Estimated)
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CostTotal is one linked account's sums over a range of days.
type CostTotal struct {
	LinkedAccount string
	Rows          int64
	Unblended     money.Amount
	Amortized     money.Amount
	NetUnblended  money.Amount
}

// CostExplorerTotals reads payer's rows of the days in [start, end) from a
// snapshot (0 for the current one) and returns, per linked account sorted
// by account, the row count and the exact sums of the three costs, for
// reconciliation with what Cost Explorer returned.
func (l *Lake) CostExplorerTotals(ctx context.Context, payer, start, end string, snapshotID int64) ([]CostTotal, error) {
	filter, err := costRangeFilter(payer, start, end)
	if err != nil {
		return nil, err
	}
	tbl, err := l.CostExplorerDaily(ctx)
	if err != nil {
		return nil, err
	}
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	opts := []table.ScanOption{
		table.WithRowFilter(filter),
		table.WithSelectedFields(ColCEAccount, ColCEUnblended, ColCEAmortized, ColCENetUnblended),
	}
	if snapshotID != 0 {
		opts = append(opts, table.WithSnapshotID(snapshotID))
	}
	_, records, err := tbl.Scan(opts...).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %s %s to %s: %w", payer, start, end, err)
	}
	sums := map[string]*CostTotal{}
	for rec, err := range records {
		if err != nil {
			return nil, fmt.Errorf("scan %s %s to %s: %w", payer, start, end, err)
		}
		sc := rec.Schema()
		acct := rec.Column(sc.FieldIndices(ColCEAccount)[0]).(*array.String)
		amounts := []*array.Decimal128{
			rec.Column(sc.FieldIndices(ColCEUnblended)[0]).(*array.Decimal128),
			rec.Column(sc.FieldIndices(ColCEAmortized)[0]).(*array.Decimal128),
			rec.Column(sc.FieldIndices(ColCENetUnblended)[0]).(*array.Decimal128),
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			t := sums[acct.Value(i)]
			if t == nil {
				t = &CostTotal{LinkedAccount: acct.Value(i)}
				sums[t.LinkedAccount] = t
			}
			t.Rows++
			for j, dst := range []*money.Amount{&t.Unblended, &t.Amortized, &t.NetUnblended} {
				if amounts[j].IsValid(i) {
					*dst = dst.Add(money.FromNum(amounts[j].Value(i)))
				}
			}
		}
		rec.Release()
	}
	out := make([]CostTotal, 0, len(sums))
	for _, t := range sums {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b CostTotal) int { return cmp.Compare(a.LinkedAccount, b.LinkedAccount) })
	return out, nil
}

// SumCostsByAccount sums rows per linked account, the same way
// CostExplorerTotals sums the table, so the two compare exactly.
func SumCostsByAccount(rows []costexplorer.DailyCost) []CostTotal {
	sums := map[string]*CostTotal{}
	for _, r := range rows {
		t := sums[r.LinkedAccount]
		if t == nil {
			t = &CostTotal{LinkedAccount: r.LinkedAccount}
			sums[r.LinkedAccount] = t
		}
		t.Rows++
		t.Unblended = t.Unblended.Add(r.Unblended)
		t.Amortized = t.Amortized.Add(r.Amortized)
		t.NetUnblended = t.NetUnblended.Add(r.NetUnblended)
	}
	out := make([]CostTotal, 0, len(sums))
	for _, t := range sums {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b CostTotal) int { return cmp.Compare(a.LinkedAccount, b.LinkedAccount) })
	return out
}
