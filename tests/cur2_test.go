package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
)

// cur2Table turns the legacy sample into a CUR 2.0 table, with the test's
// own renaming (not costlake's): camelCase to snake_case, kept when AWS's
// CUR 2.0 column list has the name, product attributes and tags gathered
// into the product and resource_tags maps.
type cur2Table struct {
	columns []string            // top-level CUR 2.0 columns, in order
	rows    [][]string          // values of columns
	product []map[string]string // per row
	tags    []map[string]string
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		if r == ':' {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func cur2FromLegacy(t *testing.T, records [][]string) cur2Table {
	t.Helper()
	f, err := os.Open(sharedData(t, "column-lists/cur2_COST_AND_USAGE_REPORT_columns.txt"))
	require.NoError(t, err)
	defer f.Close()
	known := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.Fields(sc.Text()); len(line) > 0 && !strings.HasPrefix(line[0], "#") {
			known[line[0]] = true
		}
	}
	prefix := map[string]string{"identity": "identity", "bill": "bill", "lineItem": "line_item", "pricing": "pricing",
		"product": "product", "reservation": "reservation", "savingsPlan": "savings_plan"}
	var tbl cur2Table
	type source struct {
		idx  int
		kind string // "col", "product", "tag"
		name string
	}
	var sources []source
	for i, h := range records[0] {
		cat, name, _ := strings.Cut(h, "/")
		switch {
		case cat == "resourceTags":
			sources = append(sources, source{i, "tag", snake(name)})
		case known[prefix[cat]+"_"+snake(name)] && prefix[cat]+"_"+snake(name) != "product":
			sources = append(sources, source{i, "col", prefix[cat] + "_" + snake(name)})
			tbl.columns = append(tbl.columns, prefix[cat]+"_"+snake(name))
		case cat == "product":
			sources = append(sources, source{i, "product", snake(name)})
		}
	}
	for _, r := range records[1:] {
		row := make([]string, 0, len(tbl.columns))
		product, tags := map[string]string{}, map[string]string{}
		for _, s := range sources {
			v := r[s.idx]
			switch s.kind {
			case "col":
				row = append(row, v)
			case "product":
				if v != "" {
					product[strings.TrimPrefix(s.name, "product_")] = v
				}
			case "tag":
				if v != "" {
					tags[s.name] = v
				}
			}
		}
		tbl.rows = append(tbl.rows, row)
		tbl.product = append(tbl.product, product)
		tbl.tags = append(tbl.tags, tags)
	}
	return tbl
}

// csvGz writes rows lo..hi as a CUR 2.0 csv.gz (maps as JSON).
func (c cur2Table) csvGz(t *testing.T, lo, hi int) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	w := csv.NewWriter(gz)
	require.NoError(t, w.Write(append(slices.Clone(c.columns), "product", "resource_tags")))
	for i := lo; i < hi; i++ {
		p, _ := json.Marshal(c.product[i])
		tg, _ := json.Marshal(c.tags[i])
		require.NoError(t, w.Write(append(slices.Clone(c.rows[i]), string(p), string(tg))))
	}
	w.Flush()
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

// doubleColumns are written as double, the way AWS's CUR 2.0 Parquet does.
var doubleColumns = map[string]bool{"line_item_unblended_cost": true, "line_item_blended_cost": true,
	"line_item_usage_amount": true, "pricing_public_on_demand_cost": true, "line_item_unblended_rate": true}

// arrowFields types the table's columns the way AWS's CUR 2.0 Parquet
// does: doubles for costs, a timestamp for the usage start, text for the
// rest.
func (c cur2Table) arrowFields() []arrow.Field {
	var fields []arrow.Field
	for _, name := range c.columns {
		typ := arrow.DataType(arrow.BinaryTypes.String)
		switch {
		case doubleColumns[name]:
			typ = arrow.PrimitiveTypes.Float64
		case name == "line_item_usage_start_date":
			typ = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
		}
		fields = append(fields, arrow.Field{Name: name, Type: typ, Nullable: true})
	}
	return fields
}

// parquetFile writes rows lo..hi as CUR 2.0 Parquet: doubles for costs, a
// timestamp for the usage start, maps for product and tags.
func (c cur2Table) parquetFile(t *testing.T, lo, hi int) []byte {
	mem := memory.DefaultAllocator
	fields := c.arrowFields()
	mapType := arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	fields = append(fields, arrow.Field{Name: "product", Type: mapType, Nullable: true}, arrow.Field{Name: "resource_tags", Type: mapType, Nullable: true})
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := lo; i < hi; i++ {
		for j, v := range c.rows[i] {
			appendCell(t, b.Field(j), v)
		}
		for k, m := range []map[string]string{c.product[i], c.tags[i]} {
			mb := b.Field(len(c.rows[i]) + k).(*array.MapBuilder)
			mb.Append(true)
			keys := slices.Sorted(func(yield func(string) bool) {
				for key := range m {
					if !yield(key) {
						return
					}
				}
			})
			for _, key := range keys {
				mb.KeyBuilder().(*array.StringBuilder).Append(key)
				mb.ItemBuilder().(*array.StringBuilder).Append(m[key])
			}
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

// uploadExport lays files out as AWS Data Exports does and writes the manifest.
func uploadExport(t *testing.T, store blob.Store, bucket, prefix, export, period, execution string, files map[string][]byte, columns []string) {
	t.Helper()
	ctx := context.Background()
	var dataFiles []string
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		key := fmt.Sprintf("%s/%s/data/BILLING_PERIOD=%s/%s", prefix, export, period, name)
		require.NoError(t, store.Put(ctx, key, bytes.NewReader(files[name])))
		dataFiles = append(dataFiles, "s3://"+bucket+"/"+key)
	}
	var cols []map[string]string
	for _, c := range columns {
		cols = append(cols, map[string]string{"name": c, "type": "string"})
	}
	manifest, err := json.Marshal(map[string]any{"executionId": execution, "dataFiles": dataFiles, "columns": cols, "bucket": bucket})
	require.NoError(t, err)
	key := fmt.Sprintf("%s/%s/metadata/BILLING_PERIOD=%s/%s-Manifest.json", prefix, export, period, export)
	require.NoError(t, store.Put(ctx, key, bytes.NewReader(manifest)))
}

// TestIngestCUR2FromMinIO ingests the sample as a CUR 2.0 Data Export, in
// csv.gz and in Parquet, from MinIO through the real workflow, and
// reconciles each with the legacy source CSV exactly.
func TestIngestCUR2FromMinIO(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "exports")
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	tbl := cur2FromLegacy(t, records)
	n := len(tbl.rows)
	columns := append(slices.Clone(tbl.columns), "product", "resource_tags")
	wantRows, wantCosts := sourceTotals(t, records)

	for _, c := range []struct {
		export string
		files  map[string][]byte
	}{
		{"csv-export", map[string][]byte{"csv-export-00001.csv.gz": tbl.csvGz(t, 0, n/2), "csv-export-00002.csv.gz": tbl.csvGz(t, n/2, n)}},
		{"parquet-export", map[string][]byte{"parquet-export-00001.snappy.parquet": tbl.parquetFile(t, 0, n/3), "parquet-export-00002.snappy.parquet": tbl.parquetFile(t, n/3, n)}},
	} {
		t.Run(c.export, func(t *testing.T) {
			uploadExport(t, bucket, "exports", "cur2", c.export, "2023-11", "exec-"+c.export, c.files, columns)
			res, err := s.ingest("s3://exports/cur2/"+c.export, "2023-11")
			require.NoError(t, err)
			require.Equal(t, samplePayer, res.PayerAccountID, "payer read from the first row")
			require.Equal(t, int64(n), res.Rows)
			gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
			requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
		})
	}
}

// appendCell appends one CSV cell to a Parquet column builder: empty is
// null, costs are doubles as AWS writes them, times RFC 3339.
func appendCell(t *testing.T, b array.Builder, v string) {
	t.Helper()
	switch fb := b.(type) {
	case *array.StringBuilder:
		if v == "" {
			fb.AppendNull()
		} else {
			fb.Append(v)
		}
	case *array.Float64Builder:
		if v == "" {
			fb.AppendNull()
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err)
		fb.Append(f)
	case *array.TimestampBuilder:
		ts, err := time.Parse(time.RFC3339, v)
		require.NoError(t, err)
		fb.Append(arrow.Timestamp(ts.UnixMilli()))
	}
}
