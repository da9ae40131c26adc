package tests

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/lakehouse"
)

// TestEveryCellRoundTrips ingests the public sample in one chunk and reads
// every cell of billing.line_items back: each source value is in its
// column (or map) with the same text, decimal value or instant.
func TestEveryCellRoundTrips(t *testing.T) {
	s := newStack(t, false)
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	root := filepath.Join(t.TempDir(), "bucket")
	d := delivery{prefix: "cur", report: "cells", period: "2023-11", assembly: "20231203T000000Z", payer: samplePayer,
		header: records[0], chunks: csvChunks(t, records, 1)}
	d.upload(t, blob.NewLocal(root), "local")
	_, err := s.ingest("file://"+filepath.Join(root, "cur", "cells"), "2023-11")
	require.NoError(t, err)

	ctx := context.Background()
	tbl, err := s.lake.LineItems(ctx)
	require.NoError(t, err)
	got, err := tbl.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	defer got.Release()
	require.Equal(t, int64(len(records)-1), got.NumRows())

	mapping, err := billing.MapLegacyHeader(records[0])
	require.NoError(t, err)
	cells := 0
	for i, h := range records[0] {
		target := mapping.Targets[i]
		col := billing.Columns[target.Column]
		chunked := got.Column(got.Schema().FieldIndices(col.Name)[0]).Data()
		require.Len(t, chunked.Chunks(), 1, "one chunk, one file: rows keep their order")
		arr := chunked.Chunk(0)
		for r, rec := range records[1:] {
			want := rec[i]
			if want == "" {
				continue
			}
			cells++
			switch a := arr.(type) {
			case *array.String:
				require.Equal(t, want, a.Value(r), "%s row %d", h, r+2)
			case *array.Decimal128:
				v := decimal.NewFromBigInt(a.Value(r).BigInt(), -18)
				require.True(t, decimal.RequireFromString(want).Equal(v), "%s row %d: %s != %s", h, r+2, v, want)
			case *array.Timestamp:
				w, err := lakehouse.ParseTimestamp(want)
				require.NoError(t, err)
				require.Equal(t, w, a.Value(r).ToTime(arrow.Microsecond).UTC(), "%s row %d", h, r+2)
			case *array.Map:
				start, end := a.ValueOffsets(r)
				keys, items := a.Keys().(*array.String), a.Items().(*array.String)
				found := false
				for j := start; j < end; j++ {
					if keys.Value(int(j)) == target.Key {
						require.Equal(t, want, items.Value(int(j)), "%s row %d", h, r+2)
						found = true
					}
				}
				require.True(t, found, "%s row %d: key %q missing from %s", h, r+2, target.Key, col.Name)
			default:
				t.Fatalf("%s: unexpected column type %s", col.Name, arr.DataType())
			}
		}
	}
	require.Greater(t, cells, 30000, "the sample has tens of thousands of non-empty cells")
}
