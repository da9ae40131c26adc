package lakehouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
)

// ErrSnapshotNotFound reports a snapshot the table no longer (or never)
// had: a pinned snapshot that was expired.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// LineItemScan selects one payer's billing period of billing.line_items as
// it was in one snapshot (time travel: later commits are not seen).
type LineItemScan struct {
	Payer      string
	Period     period.Period
	SnapshotID int64 // required
	// Accounts keeps only these usage accounts; nil keeps all.
	Accounts []string
	// Columns are the canonical columns read; the others stay empty in
	// the records.
	Columns []string
	// Concurrency bounds the data files decoded at once; 0 means 2.
	Concurrency int
}

// ScanLineItems streams the selected line items into fn, one record at a
// time, in a stable order (data files by path, rows in file order), so
// two scans of the same snapshot see the same sequence. The record is
// reused: fn must not keep it. Memory stays bounded by a few Arrow batches
// per file being decoded, whatever the period's size. Values are the
// canonical text of each column: decimals exactly (money.Amount.String),
// timestamps in RFC 3339 (UTC), maps as entries.
func (l *Lake) ScanLineItems(ctx context.Context, s LineItemScan, fn func(*billing.Record) error) error {
	tbl, err := l.LineItems(ctx)
	if err != nil {
		return err
	}
	if s.SnapshotID == 0 || tbl.SnapshotByID(s.SnapshotID) == nil {
		return fmt.Errorf("%w: billing.line_items has no snapshot %d (expired?)", ErrSnapshotNotFound, s.SnapshotID)
	}
	bs := billing.LineItems
	filter := periodFilter(bs, s.Payer, s.Period)
	if s.Accounts != nil {
		if len(s.Accounts) == 0 {
			return nil
		}
		filter = iceberg.NewAnd(filter, iceberg.IsIn(iceberg.Reference(bs.Account), s.Accounts...))
	}
	for _, c := range s.Columns {
		if bs.Index(c) < 0 {
			return fmt.Errorf("billing.line_items has no column %s", c)
		}
	}
	s.Columns = inSnapshotSchema(tbl, s.SnapshotID, s.Columns, bs.Payer)
	conc := s.Concurrency
	if conc <= 0 {
		conc = 2
	}
	scan := tbl.Scan(table.WithSnapshotID(s.SnapshotID), table.WithRowFilter(filter),
		table.WithSelectedFields(s.Columns...), table.WithMaxConcurrency(conc))
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return fmt.Errorf("plan %s %s at snapshot %d: %w", s.Payer, s.Period, s.SnapshotID, err)
	}
	slices.SortFunc(tasks, func(a, b table.FileScanTask) int {
		return cmp.Or(cmp.Compare(a.File.FilePath(), b.File.FilePath()), cmp.Compare(a.Start, b.Start))
	})
	_, batches, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return fmt.Errorf("scan %s %s at snapshot %d: %w", s.Payer, s.Period, s.SnapshotID, err)
	}
	rec := bs.NewRecord()
	for batch, err := range batches {
		if err != nil {
			return fmt.Errorf("scan %s %s at snapshot %d: %w", s.Payer, s.Period, s.SnapshotID, err)
		}
		err := eachRecord(batch, bs, rec, fn)
		batch.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// eachRecord converts every row of an Arrow batch into rec and calls fn.
func eachRecord(batch arrow.RecordBatch, bs *billing.Schema, rec *billing.Record, fn func(*billing.Record) error) error {
	sc := batch.Schema()
	convs := make([]func(int), 0, sc.NumFields())
	for i, f := range sc.Fields() {
		idx := bs.Index(f.Name)
		if idx < 0 {
			continue
		}
		conv, err := columnReader(batch.Column(i), rec, idx)
		if err != nil {
			return fmt.Errorf("column %s: %w", f.Name, err)
		}
		convs = append(convs, conv)
	}
	for row := 0; row < int(batch.NumRows()); row++ {
		rec.Reset()
		for _, c := range convs {
			c(row)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// inSnapshotSchema keeps the columns a snapshot's schema has: a snapshot
// taken before a column was added (a pinned cycle, before an upgrade)
// is read with its own schema, which iceberg-go refuses to select the new
// column from; the column is null in every row of it anyway. When none
// is left it reads fallback, so the scan still counts rows.
func inSnapshotSchema(tbl *table.Table, snapshotID int64, cols []string, fallback string) []string {
	snap := tbl.SnapshotByID(snapshotID)
	if len(cols) == 0 || snap == nil || snap.SchemaID == nil {
		return cols
	}
	var schema *iceberg.Schema
	for _, sc := range tbl.Metadata().Schemas() {
		if sc.ID == *snap.SchemaID {
			schema = sc
		}
	}
	if schema == nil {
		return cols
	}
	kept := make([]string, 0, len(cols))
	for _, c := range cols {
		if _, ok := schema.FindFieldByName(c); ok {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		kept = append(kept, fallback)
	}
	return kept
}

type stringValues interface {
	arrow.Array
	Value(int) string
}

// columnReader returns what sets column idx of rec from row i of col.
func columnReader(col arrow.Array, rec *billing.Record, idx int) (func(int), error) {
	switch a := col.(type) {
	case stringValues:
		return func(i int) {
			if a.IsValid(i) {
				rec.Values[idx] = a.Value(i)
			}
		}, nil
	case *array.Decimal128:
		return func(i int) {
			if a.IsValid(i) {
				rec.Values[idx] = money.FromNum(a.Value(i)).String()
			}
		}, nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return func(i int) {
			if a.IsValid(i) {
				rec.Values[idx] = a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano)
			}
		}, nil
	case *array.Map:
		keys, ok1 := a.Keys().(stringValues)
		items, ok2 := a.Items().(stringValues)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("map of %s to %s: want strings", a.Keys().DataType(), a.Items().DataType())
		}
		return func(i int) {
			if !a.IsValid(i) {
				return
			}
			start, end := a.ValueOffsets(i)
			for j := start; j < end; j++ {
				if items.IsValid(int(j)) {
					rec.Entries[idx] = append(rec.Entries[idx], billing.Entry{Key: keys.Value(int(j)), Value: items.Value(int(j))})
				}
			}
		}, nil
	}
	return nil, fmt.Errorf("no reader for arrow type %s", col.DataType())
}

// TagKeys returns the distinct resource_tags keys of the selected line
// items, sorted: an export's tag columns, known before its first row.
func (l *Lake) TagKeys(ctx context.Context, s LineItemScan) ([]string, error) {
	s.Columns = []string{billing.ColResourceTags}
	col := billing.LineItems.MustIndex(billing.ColResourceTags)
	seen := map[string]bool{}
	err := l.ScanLineItems(ctx, s, func(r *billing.Record) error {
		for _, e := range r.Entries[col] {
			seen[e.Key] = true
		}
		return nil
	})
	return slices.Sorted(maps.Keys(seen)), err
}

// PeriodInvoiced reports whether payer's period in a snapshot has line
// items and every one of them carries bill_invoice_id, which AWS writes
// only in a month's final delivery.
func (l *Lake) PeriodInvoiced(ctx context.Context, payer string, p period.Period, snapshotID int64) (bool, error) {
	tbl, err := l.LineItems(ctx)
	if err != nil {
		return false, err
	}
	snap := tbl.SnapshotByID(snapshotID)
	if snap == nil {
		return false, fmt.Errorf("%w: billing.line_items has no snapshot %d", ErrSnapshotNotFound, snapshotID)
	}
	if snap.Summary != nil {
		if n, err := strconv.ParseInt(snap.Summary.Properties[PropRows], 10, 64); err == nil && n == 0 {
			return false, nil
		}
	}
	bs := billing.LineItems
	inv := iceberg.Reference(billing.ColBillInvoiceID)
	missing := iceberg.NewAnd(periodFilter(bs, payer, p), iceberg.NewOr(iceberg.IsNull(inv), iceberg.EqualTo(inv, "")))
	_, batches, err := tbl.Scan(table.WithSnapshotID(snapshotID), table.WithRowFilter(missing),
		table.WithSelectedFields(billing.ColBillInvoiceID), table.WithLimit(1)).ToArrowRecords(ctx)
	if err != nil {
		return false, fmt.Errorf("scan invoice IDs of %s %s: %w", payer, p, err)
	}
	found := false
	for batch, err := range batches {
		if err != nil {
			return false, fmt.Errorf("scan invoice IDs of %s %s: %w", payer, p, err)
		}
		found = found || batch.NumRows() > 0
		batch.Release()
	}
	return !found, nil
}
