package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go/table"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/workflows"
)

// variantTags are tag and cost category headers that differ only by case
// or punctuation: four cost center tags, two env tags, two teams. AWS
// writes them as four, two and two distinct columns of a legacy CUR.
var variantTags = []string{
	"resourceTags/user:CostCenter", "resourceTags/user:cost-center", "resourceTags/user:cost_center", "resourceTags/user:costcenter",
	"resourceTags/user:env", "resourceTags/user:Env", "costCategory/Team", "costCategory/team",
}

// unknownLegacyColumn is a column AWS might add that costlake does not know.
const unknownLegacyColumn = "lineItem/BrandNewColumn"

// unknownColumns are the columns costlake does not know that these tests
// deliver: one legacy, two CUR 2.0 (a string and a map).
var unknownColumns = []string{unknownLegacyColumn, "line_item_brand_new", "brand_new_map"}

// taggedSample is the public legacy sample spread over three usage
// accounts, with the variant tag columns and an unknown column: tag j of
// row i holds "v<j>-<i%5>" on two rows out of three, so every row's map
// differs in which keys it has.
func taggedSample(t *testing.T, tags []string, unknown bool) [][]string {
	t.Helper()
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	acct := column(t, records[0], "lineItem/UsageAccountId")
	header := append(slices.Clone(records[0]), tags...)
	if unknown {
		header = append(header, unknownLegacyColumn)
	}
	out := [][]string{header}
	accounts := []string{samplePayer, "210987654321", "333344445555"}
	for i, r := range records[1:] {
		row := slices.Clone(r)
		row[acct] = accounts[i%3]
		for j := range tags {
			v := ""
			if (i+j)%3 != 0 {
				v = fmt.Sprintf("v%d-%d", j, i%5)
			}
			row = append(row, v)
		}
		if unknown {
			row = append(row, fmt.Sprintf("new-%d", i%7))
		}
		out = append(out, row)
	}
	return out
}

// tableRow is one line item read back through iceberg-go's own scan.
type tableRow struct {
	Account string            `json:"a"`
	Cost    string            `json:"c"`
	Tags    map[string]string `json:"t,omitempty"`
	CostCat map[string]string `json:"cc,omitempty"`
	Other   map[string]string `json:"o,omitempty"`
	AWSTags map[string]string `json:"tags,omitempty"` // the CUR 2.0 tags column
	IAM     string            `json:"iam,omitempty"`
}

func (r tableRow) sig() string {
	b, _ := json.Marshal(r) // map keys sorted
	return string(b)
}

// sigs returns the rows' signatures, sorted: equal multisets of rows give
// equal slices.
func sigs(rows []tableRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.sig()
	}
	slices.Sort(out)
	return out
}

func decText(t *testing.T, s string) string {
	if s == "" {
		return ""
	}
	d, err := decimal.NewFromString(s)
	require.NoError(t, err, s)
	return d.String()
}

// expectedRows is what the source records say each row holds: keyOf
// names the map and key a source header lands in ("" skips it).
func expectedRows(t *testing.T, records [][]string, keyOf func(h string) (m, key string)) []tableRow {
	acct := column(t, records[0], "lineItem/UsageAccountId")
	cost := column(t, records[0], "lineItem/UnblendedCost")
	var out []tableRow
	for _, r := range records[1:] {
		row := tableRow{Account: r[acct], Cost: decText(t, r[cost])}
		for i, h := range records[0] {
			m, key := keyOf(h)
			if m == "" || r[i] == "" {
				continue
			}
			dst := map[string]*map[string]string{"tags": &row.Tags, "cc": &row.CostCat, "other": &row.Other}[m]
			if *dst == nil {
				*dst = map[string]string{}
			}
			(*dst)[key] = r[i]
		}
		out = append(out, row)
	}
	return out
}

// legacyKeys is AWS's own legacy CUR: tags and cost categories under the
// key as written, the unknown column in other_columns under its header.
func legacyKeys(h string) (string, string) {
	cat, name, _ := strings.Cut(h, "/")
	switch {
	case cat == "resourceTags":
		return "tags", name
	case cat == "costCategory":
		return "cc", name
	case h == unknownLegacyColumn:
		return "other", h
	}
	return "", ""
}

// readTableRows reads a payer's period from billing.line_items with
// iceberg-go's scan, independently of costlake's readers.
func readTableRows(t *testing.T, lake *lakehouse.Lake, payer, period string) []tableRow {
	t.Helper()
	ctx := context.Background()
	tbl, err := lake.Catalog().LoadTable(ctx, lakehouse.TableID(billing.LineItems))
	require.NoError(t, err)
	cols := []string{billing.ColPayerAccountID, billing.ColBillingPeriod, billing.ColUsageAccountID, billing.ColUnblendedCost,
		billing.ColResourceTags, billing.ColCostCategory, billing.ColOtherColumns, billing.ColTags, "line_item_iam_principal"}
	at, err := tbl.Scan(table.WithSelectedFields(cols...)).ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	var out []tableRow
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		str := func(name string, i int) string {
			a := col(name).(*array.String)
			if a.IsNull(i) {
				return ""
			}
			return a.Value(i)
		}
		mapOf := func(name string, i int) map[string]string {
			m := col(name).(*array.Map)
			if m.IsNull(i) {
				return nil
			}
			start, end := m.ValueOffsets(i)
			if start == end {
				return nil
			}
			keys, items := m.Keys().(*array.String), m.Items().(*array.String)
			out := map[string]string{}
			for j := int(start); j < int(end); j++ {
				_, dup := out[keys.Value(j)]
				require.False(t, dup, "key %q twice in %s", keys.Value(j), name)
				out[keys.Value(j)] = items.Value(j)
			}
			return out
		}
		costs := col(billing.ColUnblendedCost).(*array.Decimal128)
		for i := 0; i < int(rec.NumRows()); i++ {
			if str(billing.ColPayerAccountID, i) != payer || str(billing.ColBillingPeriod, i) != period {
				continue
			}
			r := tableRow{Account: str(billing.ColUsageAccountID, i), Tags: mapOf(billing.ColResourceTags, i),
				CostCat: mapOf(billing.ColCostCategory, i), AWSTags: mapOf(billing.ColTags, i), IAM: str("line_item_iam_principal", i)}
			// Of other_columns, the columns these tests add (the sample has
			// some of its own there).
			for k, v := range mapOf(billing.ColOtherColumns, i) {
				if slices.Contains(unknownColumns, k) || k == activities.DeliveredBillPayerKey {
					if r.Other == nil {
						r.Other = map[string]string{}
					}
					r.Other[k] = v
				}
			}
			if costs.IsValid(i) {
				r.Cost = decimal.NewFromBigInt(costs.Value(i).BigInt(), -18).String()
			}
			out = append(out, r)
		}
	}
	require.NoError(t, tr.Err())
	return out
}

// cur2Columns are the extra CUR 2.0 columns of taggedCUR2: maps, the
// columns costlake has made first-class, and two it does not know.
type cur2Extra struct {
	tags, costCat, awsTags, unknownMap []map[string]string
	iam, unknown                       []string
}

// variantCUR2Keys are map keys as a CUR 2.0 export may hold them: they
// differ only by case or punctuation and must stay six keys.
var variantCUR2Keys = []string{"user_CostCenter", "user_cost-center", "user_cost_center", "user_costcenter", "user_env", "user_Env"}

func taggedCUR2(tbl cur2Table) cur2Extra {
	var x cur2Extra
	for i := range tbl.rows {
		tags, cc, aws, um := map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}
		for j, k := range variantCUR2Keys {
			if (i+j)%3 != 0 {
				tags[k] = fmt.Sprintf("v%d-%d", j, i%5)
			}
		}
		if i%2 == 0 {
			cc["Team"], cc["team"] = fmt.Sprintf("T%d", i%3), fmt.Sprintf("t%d", i%4)
		}
		if i%4 != 3 {
			aws["user:CostCenter"], aws["aws:createdBy"] = fmt.Sprintf("v0-%d", i%5), "IAMUser:x"
			um["k"] = strconv.Itoa(i % 6)
		}
		x.tags, x.costCat, x.awsTags, x.unknownMap = append(x.tags, tags), append(x.costCat, cc), append(x.awsTags, aws), append(x.unknownMap, um)
		x.iam = append(x.iam, fmt.Sprintf("arn:aws:iam::%s:role/r%d", samplePayer, i%3))
		x.unknown = append(x.unknown, fmt.Sprintf("new-%d", i%7))
	}
	return x
}

// expected is what the table holds for records delivered with x.
func (x cur2Extra) expected(t *testing.T, records [][]string) []tableRow {
	var want []tableRow
	for i, r := range expectedRows(t, records, func(string) (string, string) { return "", "" }) {
		r.Tags, r.CostCat, r.AWSTags, r.IAM = x.tags[i], x.costCat[i], x.awsTags[i], x.iam[i]
		for _, m := range []*map[string]string{&r.Tags, &r.CostCat, &r.AWSTags} {
			if len(*m) == 0 {
				*m = nil
			}
		}
		um, _ := json.Marshal(x.unknownMap[i])
		r.Other = map[string]string{"line_item_brand_new": x.unknown[i], "brand_new_map": string(um)}
		want = append(want, r)
	}
	return want
}

// cur2ExtraColumns are the columns taggedCUR2 adds, in file order.
var cur2ExtraColumns = []string{"product", "resource_tags", "cost_category", "tags", "line_item_iam_principal", "line_item_brand_new", "brand_new_map"}

func (x cur2Extra) maps(c cur2Table, i int) []map[string]string {
	return []map[string]string{c.product[i], x.tags[i], x.costCat[i], x.awsTags[i]}
}

// csvGz writes rows lo..hi as a CUR 2.0 csv.gz with the extra columns
// (maps as JSON, as AWS writes them in CSV).
func (x cur2Extra) csvGz(t *testing.T, c cur2Table, lo, hi int) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	w := csv.NewWriter(gz)
	require.NoError(t, w.Write(append(slices.Clone(c.columns), cur2ExtraColumns...)))
	for i := lo; i < hi; i++ {
		row := slices.Clone(c.rows[i])
		for _, m := range x.maps(c, i) {
			js, _ := json.Marshal(m)
			row = append(row, string(js))
		}
		um, _ := json.Marshal(x.unknownMap[i])
		row = append(row, x.iam[i], x.unknown[i], string(um))
		require.NoError(t, w.Write(row))
	}
	w.Flush()
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

// parquetFile writes rows lo..hi as CUR 2.0 Parquet: doubles for costs,
// a timestamp for the usage start, real maps for the map columns and for
// the unknown map column.
func (x cur2Extra) parquetFile(t *testing.T, c cur2Table, lo, hi int) []byte {
	fields := c.arrowFields()
	mapType := arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	for _, name := range cur2ExtraColumns {
		typ := arrow.DataType(mapType)
		if name == "line_item_iam_principal" || name == "line_item_brand_new" {
			typ = arrow.BinaryTypes.String
		}
		fields = append(fields, arrow.Field{Name: name, Type: typ, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	appendMap := func(mb *array.MapBuilder, m map[string]string) {
		mb.Append(true)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			mb.KeyBuilder().(*array.StringBuilder).Append(k)
			mb.ItemBuilder().(*array.StringBuilder).Append(m[k])
		}
	}
	for i := lo; i < hi; i++ {
		for j, v := range c.rows[i] {
			appendCell(t, b.Field(j), v)
		}
		n := len(c.rows[i])
		for k, m := range x.maps(c, i) {
			appendMap(b.Field(n+k).(*array.MapBuilder), m)
		}
		b.Field(n + 4).(*array.StringBuilder).Append(x.iam[i])
		b.Field(n + 5).(*array.StringBuilder).Append(x.unknown[i])
		appendMap(b.Field(n+6).(*array.MapBuilder), x.unknownMap[i])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// athenaPhysical is how the Athena layout names these tag and cost
// category columns: AWS's snake case, one underscore per word.
var athenaPhysical = map[string]string{
	"resourceTags/user:CostCenter": "resource_tags_user_cost_center", "resourceTags/user:costcenter": "resource_tags_user_costcenter",
	"resourceTags/user:env": "resource_tags_user_env", "costCategory/Team": "cost_category_team",
}

// athenaParquet writes the legacy records as the Athena layout's Parquet:
// top-level columns as cur2FromLegacy names them, tag and cost category
// columns under their snake-case physical names, as strings.
func athenaParquet(t *testing.T, c cur2Table, records [][]string, tagHeaders []string, lo, hi int) []byte {
	var fields []arrow.Field
	for _, name := range c.columns {
		fields = append(fields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	var idx []int
	for _, h := range tagHeaders {
		fields = append(fields, arrow.Field{Name: athenaPhysical[h], Type: arrow.BinaryTypes.String, Nullable: true})
		idx = append(idx, column(t, records[0], h))
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	str := func(j int, v string) {
		if v == "" {
			b.Field(j).AppendNull()
		} else {
			b.Field(j).(*array.StringBuilder).Append(v)
		}
	}
	for i := lo; i < hi; i++ {
		for j, v := range c.rows[i] {
			str(j, v)
		}
		for k, src := range idx {
			str(len(c.columns)+k, records[i+1][src])
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// requireTotals reconciles the table's rows and cost per account exactly
// with the source records.
func requireTotals(t *testing.T, s *stack, records [][]string) {
	t.Helper()
	wantRows, wantCosts := sourceTotals(t, records)
	require.Len(t, wantRows, 3, "three usage accounts")
	gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
}

// TestTagKeysAsAWSWroteThem ingests tags and cost categories whose keys
// differ only by case or punctuation, in every format, through the real
// workflow: none fails, none merges, each keeps the key its source wrote;
// the same data as CSV and as Parquet gives the same maps; the customer
// export prints the original keys; columns costlake does not know are
// kept under their names. Every delivery reconciles per account exactly.
func TestTagKeysAsAWSWroteThem(t *testing.T) {
	s := newCycleStack(t)
	ctx := context.Background()
	bucket := s.minio.CreateBucket(t, "tagkeys")

	t.Run("legacy csv", func(t *testing.T) {
		records := taggedSample(t, variantTags, true)
		d := delivery{prefix: "cur", report: "legacy", period: "2023-11", assembly: "20231203T000000Z", payer: samplePayer,
			header: records[0], chunks: csvChunks(t, records, 2)}
		d.upload(t, bucket, "tagkeys")
		_, err := s.ingest("s3://tagkeys/cur/legacy", "2023-11")
		require.NoError(t, err, "keys differing by case or punctuation must not fail the month")
		requireTotals(t, s.stack, records)
		want := expectedRows(t, records, legacyKeys)
		got := readTableRows(t, s.stack.lake, samplePayer, "2023-11")
		require.Equal(t, sigs(want), sigs(got))
		require.Contains(t, got[1].Other, unknownLegacyColumn)

		// The customer export (the reseller's unassigned report, through the
		// real workflow) has one tag column per key, named as AWS wrote it.
		dir := t.TempDir()
		rx, err := s.resellerExport(workflows.ExportResellerPeriodInput{Period: billingPeriod("2023-11"), URL: "file://" + dir, AllowOpenCycles: true})
		require.NoError(t, err)
		require.Len(t, rx.Exports, 1)
		header, rows, _ := readExport(t, blob.NewLocal("/"), rx.Exports[0].ManifestKey)
		require.Equal(t, append(slices.Clone(export.Header), "user:CostCenter", "user:Env", "user:cost-center", "user:cost_center", "user:costcenter", "user:env"), header)
		var wantExport, gotExport []string
		for _, r := range want {
			line := []string{r.Account, r.Cost}
			for _, k := range header[len(export.Header):] {
				line = append(line, r.Tags[k])
			}
			wantExport = append(wantExport, strings.Join(line, "|"))
		}
		acct, cost := column(t, header, "LinkedAccountId"), column(t, header, "UnBlendedCost")
		for _, r := range rows {
			line := []string{r[acct], decText(t, r[cost])}
			line = append(line, r[len(export.Header):]...)
			gotExport = append(gotExport, strings.Join(line, "|"))
		}
		slices.Sort(wantExport)
		slices.Sort(gotExport)
		require.Equal(t, wantExport, gotExport, "export rows: account, cost, tags by original key")
	})

	// The same tags as legacy CSV and as the Athena layout's Parquet (whose
	// manifest names the columns in legacy form) give the same maps. Only
	// tags whose snake-case column names are distinct can be in one file.
	sameTags := []string{"resourceTags/user:CostCenter", "resourceTags/user:costcenter", "resourceTags/user:env", "costCategory/Team"}
	records := taggedSample(t, sameTags, false)
	var fromCSV []tableRow
	t.Run("same data as legacy csv", func(t *testing.T) {
		d := delivery{prefix: "cur", report: "same-csv", period: "2023-11", assembly: "20231204T000000Z", payer: samplePayer,
			header: records[0], chunks: csvChunks(t, records, 1)}
		d.upload(t, bucket, "tagkeys")
		_, err := s.ingest("s3://tagkeys/cur/same-csv", "2023-11")
		require.NoError(t, err)
		requireTotals(t, s.stack, records)
		fromCSV = readTableRows(t, s.stack.lake, samplePayer, "2023-11")
		require.Equal(t, sigs(expectedRows(t, records, legacyKeys)), sigs(fromCSV))
	})
	t.Run("same data as athena parquet", func(t *testing.T) {
		tbl := cur2FromLegacy(t, records)
		n := len(tbl.rows)
		d := delivery{prefix: "cur", report: "athena", period: "2023-11", assembly: "20231205T000000Z", payer: samplePayer}
		m := d.manifest(t, "tagkeys")
		m.Compression, m.ContentType = "Parquet", "Parquet"
		for _, c := range tbl.columns {
			m.Columns = append(m.Columns, cur.ManifestColumn{Name: c, Type: "string"})
		}
		for _, h := range sameTags {
			cat, name, _ := strings.Cut(h, "/")
			m.Columns = append(m.Columns, cur.ManifestColumn{Category: cat, Name: name, Type: "OptionalString"})
		}
		for i, f := range [][]byte{athenaParquet(t, tbl, records, sameTags, 0, n/2), athenaParquet(t, tbl, records, sameTags, n/2, n)} {
			key := fmt.Sprintf("cur/athena/athena/year=2023/month=11/athena-%05d.snappy.parquet", i+1)
			require.NoError(t, bucket.Put(ctx, key, bytes.NewReader(f)))
			m.ReportKeys = append(m.ReportKeys, key)
		}
		putManifest(t, bucket, d.folder(t)+"/athena-Manifest.json", m)
		_, err := s.ingest("s3://tagkeys/cur/athena", "2023-11")
		require.NoError(t, err)
		requireTotals(t, s.stack, records)
		require.NotEmpty(t, fromCSV)
		require.Equal(t, sigs(fromCSV), sigs(readTableRows(t, s.stack.lake, samplePayer, "2023-11")), "Parquet gives the maps the CSV gave")
	})

	// A partner's snake_case headers have lost the original key: each
	// distinct header is its own key, the header's own text.
	t.Run("partner snake case", func(t *testing.T) {
		partner := map[string]string{
			"resourceTags/user:CostCenter": "resource_tags_user_CostCenter", "resourceTags/user:cost-center": "resource_tags_user_cost-center",
			"resourceTags/user:cost_center": "resource_tags_user_cost_center", "resourceTags/user:costcenter": "resource_tags_user_costcenter",
			"resourceTags/user:env": "resource_tags_user_env", "resourceTags/user:Env": "resource_tags_user_Env",
			"costCategory/Team": "cost_category_Team", "costCategory/team": "cost_category_team",
		}
		records := taggedSample(t, variantTags, false)
		snakeRecords := [][]string{make([]string, len(records[0]))}
		for i, h := range records[0] {
			if p, ok := partner[h]; ok {
				snakeRecords[0][i] = p
			} else {
				snakeRecords[0][i] = athenaHeader(h)
			}
		}
		snakeRecords = append(snakeRecords, records[1:]...)
		var keys []string
		var cols []map[string]string
		for i, c := range csvChunks(t, snakeRecords, 2) {
			key := fmt.Sprintf("partner/RawCURReports/cur/%s/20231101-20231201/p-1/cur-%05d.csv.gz", samplePayer, i+1)
			require.NoError(t, bucket.Put(ctx, key, bytes.NewReader(c)))
			keys = append(keys, strings.TrimPrefix(key, "partner/"))
		}
		for _, h := range snakeRecords[0] {
			cols = append(cols, map[string]string{"column_name": h})
		}
		js, err := json.Marshal(map[string]any{"assemblyId": "p-1", "account": samplePayer, "columns": cols, "reportKeys": keys})
		require.NoError(t, err)
		require.NoError(t, bucket.Put(ctx, "partner/manifests/20231101-20231201/r-Manifest.json", bytes.NewReader(js)))
		_, err = s.ingest("s3://tagkeys/partner", "2023-11")
		require.NoError(t, err)
		requireTotals(t, s.stack, records)
		want := expectedRows(t, records, func(h string) (string, string) {
			p, ok := partner[h]
			switch {
			case !ok:
				return "", ""
			case strings.HasPrefix(p, "resource_tags_"):
				return "tags", strings.TrimPrefix(p, "resource_tags_")
			}
			return "cc", strings.TrimPrefix(p, "cost_category_")
		})
		require.Equal(t, sigs(want), sigs(readTableRows(t, s.stack.lake, samplePayer, "2023-11")))
	})

	// CUR 2.0 in CSV and in Parquet: map keys as the export wrote them, the
	// same maps from both, first-class tags and line_item_iam_principal,
	// and two columns costlake does not know kept under their names.
	records = taggedSample(t, nil, false)
	tbl := cur2FromLegacy(t, records)
	x := taggedCUR2(tbl)
	n := len(tbl.rows)
	columns := append(slices.Clone(tbl.columns), cur2ExtraColumns...)
	want := x.expected(t, records)
	var fromCUR2CSV []tableRow
	for _, c := range []struct {
		export string
		files  map[string][]byte
	}{
		{"cur2-csv", map[string][]byte{"cur2-csv-00001.csv.gz": x.csvGz(t, tbl, 0, n/2), "cur2-csv-00002.csv.gz": x.csvGz(t, tbl, n/2, n)}},
		{"cur2-parquet", map[string][]byte{"cur2-parquet-00001.snappy.parquet": x.parquetFile(t, tbl, 0, n/3), "cur2-parquet-00002.snappy.parquet": x.parquetFile(t, tbl, n/3, n)}},
	} {
		t.Run(c.export, func(t *testing.T) {
			uploadExport(t, bucket, "tagkeys", "exports", c.export, "2023-11", "exec-"+c.export, c.files, columns)
			_, err := s.ingest("s3://tagkeys/exports/"+c.export, "2023-11")
			require.NoError(t, err)
			requireTotals(t, s.stack, records)
			got := readTableRows(t, s.stack.lake, samplePayer, "2023-11")
			require.Equal(t, sigs(want), sigs(got))
			if fromCUR2CSV == nil {
				fromCUR2CSV = got
			} else {
				require.Equal(t, sigs(fromCUR2CSV), sigs(got), "Parquet gives the maps the CSV gave")
			}
		})
	}
}

// readExport reads an export's manifest, then every file it lists: the
// header and the rows.
func readExport(t *testing.T, store blob.Store, manifestKey string) (header []string, rows [][]string, m export.Manifest) {
	t.Helper()
	ctx := context.Background()
	rc, err := store.Open(ctx, manifestKey)
	require.NoError(t, err, "manifest %s/%s", store, manifestKey)
	require.NoError(t, json.NewDecoder(rc).Decode(&m))
	rc.Close()
	for _, f := range m.Files {
		rc, err := store.Open(ctx, f.Key)
		require.NoError(t, err)
		var r io.Reader = rc
		if strings.HasSuffix(f.Key, ".gz") {
			gz, err := gzip.NewReader(rc)
			require.NoError(t, err)
			r = gz
		}
		records, err := csv.NewReader(r).ReadAll()
		require.NoError(t, err)
		rc.Close()
		header = records[0]
		rows = append(rows, records[1:]...)
	}
	return header, rows, m
}
