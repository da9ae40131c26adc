package tests

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/workflows"
)

// TestIngestNothingKept ingests a delivery whose rows all belong to
// accounts that are not connected: nothing is written, every row is
// counted as left out, and ingesting it again changes nothing.
func TestIngestNothingKept(t *testing.T) {
	s := newStack(t, false)
	root := filepath.Join(t.TempDir(), "bucket")
	gen, err := synth.Generate(context.Background(), blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "none", Period: "2026-10", Rows: 500, Files: 2, Seed: 51})
	require.NoError(t, err)
	in := workflows.IngestBillingPeriodInput{Source: "file://" + filepath.Join(root, "cur", "none"), Period: billingPeriod("2026-10"),
		Accounts: payer.AccountPolicy{ConnectedOnly: true, Connected: []string{"999999999999"}}}
	for i := 0; i < 2; i++ {
		run, err := workflows.StartIngestion(context.Background(), s.client, in)
		require.NoError(t, err)
		var res workflows.IngestBillingPeriodResult
		require.NoError(t, run.Get(context.Background(), &res))
		require.Zero(t, res.Rows)
		require.Equal(t, int64(gen.Rows), res.ExcludedRows)
		require.Equal(t, i == 1, res.Unchanged)
	}
	require.Empty(t, s.dataFiles())
}
