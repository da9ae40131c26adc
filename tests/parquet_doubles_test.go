package tests

import (
	"slices"
	"strconv"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

// TestIngestCUR2ParquetRoundsTinyDoubles ingests a CUR 2.0 Parquet export
// whose cost doubles include values with more than 18 fractional digits.
// The month is not failed: each such value is rounded half-even to 18
// digits, the result counts them, and the table reconciles exactly with
// the source rounded by the same rule (here with shopspring's RoundBank,
// not costlake's code).
func TestIngestCUR2ParquetRoundsTinyDoubles(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "exports")
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	cost := column(t, records[0], "lineItem/UnblendedCost")
	tiny := map[int]float64{5: 1e-19, 50: 1.2345678901234567e-10, 500: 5e-324, 700: -2.5e-18}
	expected := slices.Clone(records)
	for row, f := range tiny {
		text := strconv.FormatFloat(f, 'g', -1, 64)
		records[row] = slices.Clone(records[row])
		records[row][cost] = text
		expected[row] = slices.Clone(records[row])
		expected[row][cost] = decimal.RequireFromString(text).RoundBank(18).String()
	}
	tbl := cur2FromLegacy(t, records)
	n := len(tbl.rows)
	columns := append(slices.Clone(tbl.columns), "product", "resource_tags")
	uploadExport(t, bucket, "exports", "cur2", "tiny", "2023-11", "exec-tiny",
		map[string][]byte{"tiny-00001.snappy.parquet": tbl.parquetFile(t, 0, n/2), "tiny-00002.snappy.parquet": tbl.parquetFile(t, n/2, n)}, columns)

	res, err := s.ingest("s3://exports/cur2/tiny", "2023-11")
	require.NoError(t, err)
	require.Equal(t, int64(n), res.Rows)
	require.EqualValues(t, len(tiny), res.RoundedValues, "every rounded double is counted, and only those")
	wantRows, wantCosts := sourceTotals(t, expected)
	gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
}
