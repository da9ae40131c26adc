package lakehouse

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
)

// addedByEvolution are the columns a table created before them lacks:
// newer CUR 2.0 columns and costlake's cost measures.
var addedByEvolution = []string{billing.ColTags, "line_item_iam_principal", "line_item_user_identifier",
	billing.ColAmortizedCost, billing.ColNetUnblendedCost, billing.ColNetAmortizedCost}

// createOldLineItems creates billing.line_items as an older costlake did,
// without addedByEvolution, and appends rows to it with iceberg-go's own
// writer: payer, period, account and cost per row.
func createOldLineItems(t *testing.T, cfg Config, rows [][4]string) (oldMaxID int) {
	t.Helper()
	ctx := context.Background()
	db, dialect, err := openCatalogDB(cfg.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	warehouse, err := normalizeWarehouse(cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := sqlcat.NewCatalog(catalogName, db, dialect, iceberg.Properties{"warehouse": warehouse})
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{Namespace}, nil); err != nil {
		t.Fatal(err)
	}
	var fields []iceberg.NestedField
	for _, f := range IcebergSchema(billing.LineItems).Fields() {
		if !slices.Contains(addedByEvolution, f.Name) {
			fields = append(fields, f)
		}
	}
	old := iceberg.NewSchema(0, fields...)
	spec, err := partitionSpec(billing.LineItems, old)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.CreateTable(ctx, TableID(billing.LineItems), old, catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(iceberg.Properties{"format-version": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	oldMaxID = tbl.Schema().HighestFieldID()

	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	idx := func(name string) int { return sc.FieldIndices(name)[0] }
	for _, r := range rows {
		for i := range sc.Fields() {
			switch i {
			case idx(billing.ColPayerAccountID):
				b.Field(i).(*array.StringBuilder).Append(r[0])
			case idx(billing.ColBillingPeriod):
				b.Field(i).(*array.StringBuilder).Append(r[1])
			case idx(billing.ColUsageAccountID):
				b.Field(i).(*array.StringBuilder).Append(r[2])
			case idx(billing.ColUnblendedCost):
				b.Field(i).(*array.Decimal128Builder).Append(money.MustParse(r[3]).Num())
			default:
				b.Field(i).AppendNull()
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	tx := tbl.NewTransaction()
	if err := tx.AppendTable(ctx, at, int64(len(rows)), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return oldMaxID
}

// scanAll reads every line item of a payer's period at the current
// snapshot with the given columns.
func scanAll(t *testing.T, l *Lake, payer, month string, cols ...string) []*billing.Record {
	t.Helper()
	tbl, err := l.LineItems(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*billing.Record
	err = l.ScanLineItems(context.Background(), LineItemScan{Payer: payer, Period: period.MustParse(month), SnapshotID: tbl.CurrentSnapshot().SnapshotID, Columns: cols},
		func(r *billing.Record) error {
			c := billing.NewRecord()
			copy(c.Values, r.Values)
			for i := range r.Entries {
				c.Entries[i] = slices.Clone(r.Entries[i])
			}
			out = append(out, c)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenEvolvesOlderTable: a table created without the newer CUR 2.0
// columns gains them when costlake opens it, with new field IDs and the
// old IDs untouched; rows written before read them as null and keep their
// costs to the last digit; new rows carry them; opening again changes
// nothing.
func TestOpenEvolvesOlderTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")}
	oldRows := [][4]string{
		{"111111111111", "2026-09", "222222222222", "1.000000000000000001"},
		{"111111111111", "2026-09", "222222222222", "2.5"},
		{"111111111111", "2026-09", "333333333333", "-0.000000000000000007"},
	}
	oldMaxID := createOldLineItems(t, cfg, oldRows)

	l, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tbl, err := l.LineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.Metadata().Schemas()); n != 2 {
		t.Errorf("%d schemas, want the old one and the evolved one", n)
	}
	for _, name := range addedByEvolution {
		f, ok := tbl.Schema().FindFieldByName(name)
		if !ok {
			t.Fatalf("no column %s after Open", name)
		}
		if f.ID <= oldMaxID || f.Required {
			t.Errorf("%s: id %d (old highest %d), required %v: want a new optional field", name, f.ID, oldMaxID, f.Required)
		}
	}
	if f, _ := tbl.Schema().FindFieldByName(billing.ColTags); f.Type.String() != "map<string, string>" {
		t.Errorf("tags is %s", f.Type)
	}
	if f, _ := tbl.Schema().FindFieldByName(billing.ColNetAmortizedCost); f.Type.String() != "decimal(38, 18)" {
		t.Errorf("%s is %s", billing.ColNetAmortizedCost, f.Type)
	}

	// Rows written before: new columns null, costs exact.
	cols := []string{billing.ColUsageAccountID, billing.ColUnblendedCost, billing.ColTags, "line_item_iam_principal", billing.ColAmortizedCost}
	checkOld := func(when string) {
		t.Helper()
		got := scanAll(t, l, "111111111111", "2026-09", cols...)
		if len(got) != len(oldRows) {
			t.Fatalf("%s: %d old rows, want %d", when, len(got), len(oldRows))
		}
		sums := map[string]money.Amount{}
		for _, r := range got {
			// Rows written before the cost measures have none: the
			// period's next delivery fills them.
			if r.Values[billing.MustIndex("line_item_iam_principal")] != "" || len(r.Entries[billing.MustIndex(billing.ColTags)]) != 0 ||
				r.Values[billing.MustIndex(billing.ColAmortizedCost)] != "" {
				t.Errorf("%s: old row has new values: %v", when, r.Values[billing.MustIndex("line_item_iam_principal")])
			}
			a := r.Values[billing.MustIndex(billing.ColUsageAccountID)]
			sums[a] = sums[a].Add(money.MustParse(r.Values[billing.MustIndex(billing.ColUnblendedCost)]))
		}
		want := map[string]money.Amount{}
		for _, r := range oldRows {
			want[r[2]] = want[r[2]].Add(money.MustParse(r[3]))
		}
		for a, w := range want {
			if sums[a].Cmp(w) != 0 {
				t.Errorf("%s: account %s: %s, want %s", when, a, sums[a], w)
			}
		}
	}
	checkOld("snapshot of the old schema")

	// New rows carry the new columns.
	rec := billing.NewRecord()
	rec.Values[billing.MustIndex(billing.ColPayerAccountID)] = "111111111111"
	rec.Values[billing.MustIndex(billing.ColBillingPeriod)] = "2026-10"
	rec.Values[billing.MustIndex(billing.ColUsageAccountID)] = "222222222222"
	rec.Values[billing.MustIndex(billing.ColUnblendedCost)] = "3.25"
	rec.Values[billing.MustIndex("line_item_iam_principal")] = "arn:aws:iam::222222222222:role/app"
	rec.Values[billing.MustIndex(billing.ColAmortizedCost)] = "3.000000000000000001"
	rec.Entries[billing.MustIndex(billing.ColTags)] = []billing.Entry{{Key: "user:CostCenter", Value: "a"}, {Key: "user:cost_center", Value: "b"}}
	path := DataFilePath(tbl, billing.LineItems, "111111111111", period.MustParse("2026-10"), "new")
	w, err := NewDataFileWriter(ctx, tbl, billing.LineItems, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReplacePeriod(ctx, billing.LineItems, PeriodReplacement{Payer: "111111111111", Period: period.MustParse("2026-10"),
		RunID: "r1", Reports: []ReportFiles{{AssemblyID: "a1", DataFiles: []string{path}, Rows: 1}}}); err != nil {
		t.Fatal(err)
	}
	checkOld("snapshot of the evolved schema")
	got := scanAll(t, l, "111111111111", "2026-10", cols...)
	if len(got) != 1 || got[0].Values[billing.MustIndex("line_item_iam_principal")] != "arn:aws:iam::222222222222:role/app" ||
		got[0].Values[billing.MustIndex(billing.ColAmortizedCost)] != "3.000000000000000001" ||
		!slices.Equal(got[0].Entries[billing.MustIndex(billing.ColTags)], rec.Entries[billing.MustIndex(billing.ColTags)]) {
		t.Errorf("new row read back as %+v", got)
	}
	l.Close()

	// Opening the evolved table again adds nothing.
	l2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	tbl2, err := l2.LineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tbl2.Schema().ID != tbl.Schema().ID || len(tbl2.Metadata().Schemas()) != 2 {
		t.Errorf("second open changed the schema: id %d → %d", tbl.Schema().ID, tbl2.Schema().ID)
	}
}
