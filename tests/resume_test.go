package tests

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/lakehouse"
)

// TestConvertChunkResumes retries a conversion from the progress an
// earlier attempt heartbeated (two finished files, a half-written third):
// the retry skips the rows already converted, leaves the finished files
// alone, rewrites the third, and the committed result reconciles exactly.
func TestConvertChunkResumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "bucket")
	gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "resume", Period: "2026-10", Rows: 5000, Files: 1, Seed: 41})
	require.NoError(t, err)
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(t, dir), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	defer lake.Close()
	acts := &activities.Ingest{Lake: lake, PartRows: 1000, AWS: activities.AWS{Blobs: blob.Opener{FileRoots: testFileRoots}}}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	newEnv := func() *testsuite.TestActivityEnvironment {
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		return env
	}
	source := "file://" + filepath.Join(root, "cur", "resume")
	v, err := newEnv().ExecuteActivity(ingest.LocateDeliveryActivity, ingest.LocateDeliveryInput{Source: source, Period: billingPeriod("2026-10")})
	require.NoError(t, err)
	var loc ingest.LocateDeliveryResult
	require.NoError(t, v.Get(&loc))
	in := ingest.ConvertChunkInput{Source: source, Period: billingPeriod("2026-10"), Format: loc.Format, ManifestKey: loc.ManifestKey,
		AssemblyID: loc.AssemblyID, ChunkKey: loc.ChunkKeys[0], PayerAccountID: loc.PayerAccountID, FilePrefix: "run"}

	v, err = newEnv().ExecuteActivity(ingest.ConvertChunkActivity, in)
	require.NoError(t, err)
	var full ingest.ConvertChunkResult
	require.NoError(t, v.Get(&full))
	require.Len(t, full.DataFiles, 5)

	// What the first attempt had heartbeated after two files, computed
	// from the source CSV itself.
	progress := activities.ChunkProgress{Parts: full.DataFiles[:2], Rows: 2000, Written: 2000, Totals: firstRowsTotals(t, loc.ChunkKeys[0], 2000)}
	local := func(f string) string { return strings.TrimPrefix(f, "file://") }
	for _, f := range full.DataFiles[3:] {
		require.NoError(t, os.Remove(local(f)))
	}
	require.NoError(t, os.WriteFile(local(full.DataFiles[2]), []byte("half a parquet file"), 0o644))
	kept, err := os.Stat(local(full.DataFiles[0]))
	require.NoError(t, err)

	env := newEnv()
	env.SetHeartbeatDetails(progress)
	v, err = env.ExecuteActivity(ingest.ConvertChunkActivity, in)
	require.NoError(t, err)
	var resumed ingest.ConvertChunkResult
	require.NoError(t, v.Get(&resumed))
	require.Equal(t, full.DataFiles, resumed.DataFiles)
	require.Equal(t, int64(5000), resumed.Rows)
	require.Empty(t, billing.DiffTotals(full.Totals, resumed.Totals))
	again, err := os.Stat(local(full.DataFiles[0]))
	require.NoError(t, err)
	require.Equal(t, kept.ModTime(), again.ModTime(), "a finished file must not be rewritten")

	// The files on disk hold exactly the source: commit and reconcile.
	v, err = newEnv().ExecuteActivity(ingest.CommitPeriodActivity, ingest.CommitPeriodInput{PayerAccountID: loc.PayerAccountID, Period: billingPeriod("2026-10"),
		AssemblyID: loc.AssemblyID, RunID: "run", DataFiles: resumed.DataFiles, Rows: resumed.Rows})
	require.NoError(t, err)
	var committed ingest.CommitPeriodResult
	require.NoError(t, v.Get(&committed))
	_, err = newEnv().ExecuteActivity(ingest.ReconcilePeriodActivity, ingest.ReconcilePeriodInput{PayerAccountID: loc.PayerAccountID, Period: billingPeriod("2026-10"),
		SnapshotID: committed.SnapshotID, Expected: resumed.Totals})
	require.NoError(t, err)
	sum := decimal.Zero
	for _, a := range gen.Accounts {
		sum = sum.Add(decimal.RequireFromString(a.UnblendedCost))
	}
	got := decimal.Zero
	for _, tot := range resumed.Totals {
		got = got.Add(decimal.RequireFromString(tot.UnblendedCost.String()))
	}
	require.True(t, sum.Equal(got), "resumed total %s, source %s", got, sum)
}

// firstRowsTotals sums the first n rows of a generated chunk per account
// and line item type, straight from the CSV.
func firstRowsTotals(t *testing.T, key string, n int) []billing.Total {
	t.Helper()
	f, err := os.Open("/" + key) // file:// sources are keys under the root folder
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	r := csv.NewReader(gz)
	header, err := r.Read()
	require.NoError(t, err)
	acct, typ, cost := column(t, header, "lineItem/UsageAccountId"), column(t, header, "lineItem/LineItemType"), column(t, header, "lineItem/UnblendedCost")
	sums := map[[2]string]*billing.Total{}
	for i := 0; i < n; i++ {
		row, err := r.Read()
		require.NoError(t, err)
		k := [2]string{row[acct], row[typ]}
		if sums[k] == nil {
			sums[k] = &billing.Total{Account: k[0], LineItemType: k[1]}
		}
		sums[k].Rows++
		if row[cost] != "" {
			sums[k].UnblendedCost = sums[k].UnblendedCost.Add(money.MustParse(decimal.RequireFromString(row[cost]).String()))
		}
	}
	var out []billing.Total
	for _, s := range sums {
		out = append(out, *s)
	}
	return billing.MergeTotals(out)
}
