package tests

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
)

// newerColumns are the billing.line_items columns an older costlake's
// table does not have: newer CUR 2.0 columns and the cost measures.
var newerColumns = []string{billing.ColTags, "line_item_iam_principal", "line_item_user_identifier",
	billing.ColAmortizedCost, billing.ColNetUnblendedCost, billing.ColNetAmortizedCost}

// createOlderLineItems makes billing.line_items the way a costlake
// without newerColumns did, in the catalog (SQLite or PostgreSQL) and local warehouse of
// cfg, and appends rows (account, cost) of samplePayer's period with
// iceberg-go's own writer. It returns the highest field ID it used.
func createOlderLineItems(t *testing.T, cfg lakehouse.Config, period string, rows [][2]string) int {
	t.Helper()
	ctx := context.Background()
	warehouse, ok := strings.CutPrefix(cfg.Warehouse, "file://")
	require.True(t, ok, "a local warehouse")
	require.NoError(t, os.MkdirAll(warehouse, 0o755))
	driver, dsn, dialect := sqliteshim.ShimName, "file:"+cfg.Catalog, sqlcat.SQLite
	if strings.HasPrefix(cfg.Catalog, "postgres://") {
		driver, dsn, dialect = "pgx", cfg.Catalog, sqlcat.Postgres
	}
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	defer db.Close()
	// "costlake" is the catalog name costlake's lakehouse registers tables under.
	cat, err := sqlcat.NewCatalog("costlake", db, dialect, iceberg.Properties{"warehouse": cfg.Warehouse})
	require.NoError(t, err)
	require.NoError(t, cat.CreateNamespace(ctx, table.Identifier{lakehouse.Namespace}, nil))
	var fields []iceberg.NestedField
	for _, f := range lakehouse.IcebergSchema(billing.LineItems).Fields() {
		if !slices.Contains(newerColumns, f.Name) {
			fields = append(fields, f)
		}
	}
	old := iceberg.NewSchema(0, fields...)
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(billing.ColPayerAccountID, billing.ColPayerAccountID, iceberg.IdentityTransform{}, old, nil),
		iceberg.AddPartitionFieldByName(billing.ColBillingPeriod, billing.ColBillingPeriod, iceberg.IdentityTransform{}, old, nil))
	require.NoError(t, err)
	tbl, err := cat.CreateTable(ctx, lakehouse.TableID(billing.LineItems), old, catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(iceberg.Properties{"format-version": "2"}))
	require.NoError(t, err)

	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	require.NoError(t, err)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	idx := func(name string) int { return sc.FieldIndices(name)[0] }
	for _, r := range rows {
		cost := decimal.RequireFromString(r[1]).Shift(18).BigInt()
		for i := range sc.Fields() {
			switch i {
			case idx(billing.ColPayerAccountID):
				b.Field(i).(*array.StringBuilder).Append(samplePayer)
			case idx(billing.ColBillingPeriod):
				b.Field(i).(*array.StringBuilder).Append(period)
			case idx(billing.ColUsageAccountID):
				b.Field(i).(*array.StringBuilder).Append(r[0])
			case idx(billing.ColUnblendedCost):
				b.Field(i).(*array.Decimal128Builder).Append(decimal128.FromBigInt(cost))
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
	require.NoError(t, tx.AppendTable(ctx, at, int64(len(rows)), nil))
	_, err = tx.Commit(ctx)
	require.NoError(t, err)
	return tbl.Schema().HighestFieldID()
}

// TestIngestIntoTableOfOlderSchema: a worker opening a table that an
// older costlake created (without tags, line_item_iam_principal,
// line_item_user_identifier and the cost measures) adds those columns by
// schema evolution; a CUR 2.0 delivery carrying them is ingested through
// the real workflow with their values and its measures, and the rows
// written before still read, with the new columns null and their costs
// exact.
func TestIngestIntoTableOfOlderSchema(t *testing.T) {
	oldRows := [][2]string{{samplePayer, "10.000000000000000001"}, {"210987654321", "0.5"}, {"210987654321", "-0.25"}}
	var oldMaxID int
	s := newStackWith(t, true, func(s *stack) lakehouse.Config {
		cfg := lakehouse.Config{Catalog: testCatalog(s.t, s.dir), Warehouse: "file://" + filepath.Join(s.dir, "warehouse")}
		oldMaxID = createOlderLineItems(t, cfg, "2023-10", oldRows)
		return cfg
	})
	ctx := context.Background()
	tbl, err := s.lake.LineItems(ctx)
	require.NoError(t, err)
	for _, name := range newerColumns {
		f, ok := tbl.Schema().FindFieldByName(name)
		require.True(t, ok, "no %s after opening the older table", name)
		require.Greater(t, f.ID, oldMaxID, "%s gets a new field ID", name)
	}

	bucket := s.minio.CreateBucket(t, "evolve")
	records := taggedSample(t, nil, false)
	c2 := cur2FromLegacy(t, records)
	x := taggedCUR2(c2)
	n := len(c2.rows)
	uploadExport(t, bucket, "evolve", "exports", "cur2", "2023-11", "exec-1",
		map[string][]byte{"cur2-00001.snappy.parquet": x.parquetFile(t, c2, 0, n)}, append(slices.Clone(c2.columns), cur2ExtraColumns...))
	_, err = s.ingest("s3://evolve/exports/cur2", "2023-11")
	require.NoError(t, err)
	requireTotals(t, s, records)
	require.Equal(t, sigs(x.expected(t, records)), sigs(readTableRows(t, s.lake, samplePayer, "2023-11")))

	// The rows the older costlake wrote: new columns null, costs exact.
	wantRows, wantCosts := map[string]int{}, map[string]decimal.Decimal{}
	for _, r := range oldRows {
		wantRows[r[0]]++
		wantCosts[r[0]] = wantCosts[r[0]].Add(decimal.RequireFromString(r[1]))
	}
	gotRows, gotCosts := s.tableTotals(samplePayer, "2023-10")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	for _, r := range readTableRows(t, s.lake, samplePayer, "2023-10") {
		require.Nil(t, r.AWSTags)
		require.Empty(t, r.IAM)
	}
	// The cost measures: null in the rows written before (the period's
	// next delivery fills them), present in the new ones, where usage and
	// tax amortize to their unblended cost.
	_, nulls := measureSums(t, s.lake, samplePayer, "2023-10")
	require.Equal(t, 3*len(oldRows), nulls, "the old rows have no measures")
	sums, nulls := measureSums(t, s.lake, samplePayer, "2023-11")
	require.Zero(t, nulls)
	for acct, m := range sums {
		for _, col := range []string{billing.ColAmortizedCost, billing.ColNetUnblendedCost, billing.ColNetAmortizedCost} {
			require.Truef(t, m[col].Equal(m[billing.ColUnblendedCost]), "%s %s: %s, unblended %s", acct, col, m[col], m[billing.ColUnblendedCost])
		}
	}
}
