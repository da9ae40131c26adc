package tests

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/billing"
)

// TestIngestFOCUSFromMinIO ingests the AWS rows of the public FOCUS 1.0
// sample as a Data Exports FOCUS delivery from MinIO; they land in
// billing.focus_line_items under their FOCUS names, and BilledCost per
// sub-account reconciles exactly with the CSV ("NULL" is an empty value).
func TestIngestFOCUSFromMinIO(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "focus")
	all := readCSV(t, sharedData(t, "focus-1.0-sample/focus_sample.csv"))
	header := all[0]
	provider, payerCol := column(t, header, "ProviderName"), column(t, header, "BillingAccountId")
	records := [][]string{header}
	for _, r := range all[1:] {
		if r[provider] == "AWS" { // an AWS export holds one billing account
			records = append(records, r)
		}
	}
	payer := records[1][payerCol]
	sub, cost := column(t, header, "SubAccountId"), column(t, header, "BilledCost")
	wantRows, wantCosts := map[string]int{}, map[string]decimal.Decimal{}
	for _, r := range records[1:] {
		wantRows[r[sub]]++
		if r[cost] != "NULL" && r[cost] != "" {
			wantCosts[r[sub]] = wantCosts[r[sub]].Add(decimal.RequireFromString(r[cost]))
		}
	}

	chunks := csvChunks(t, records, 2)
	uploadExport(t, bucket, "focus", "exports", "focus-export", "2024-09", "exec-focus-1",
		map[string][]byte{"focus-export-00001.csv.gz": chunks[0], "focus-export-00002.csv.gz": chunks[1]}, header)
	res, err := s.ingest("s3://focus/exports/focus-export", "2024-09")
	require.NoError(t, err)
	require.Equal(t, "focus_line_items", res.Table)
	require.Equal(t, payer, res.PayerAccountID)
	require.Equal(t, int64(len(records)-1), res.Rows)

	gotRows, gotCosts := s.tableSums(billing.FOCUS, payer, "2024-09")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	lineItems, _ := s.tableTotals(payer, "2024-09")
	require.Empty(t, lineItems, "FOCUS rows must not land in line_items")
}
