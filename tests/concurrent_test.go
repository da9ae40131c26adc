package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"golang.org/x/sync/errgroup"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/workflows"
)

// Twenty payers' ingestions at once on two workers, each with its own
// lake on the same catalog: every commit to billing.line_items lands
// (Iceberg commit conflicts are retried), none is lost and none doubled,
// so each payer's period equals its delivery exactly. Both workers did
// part of the work.
func TestConcurrentIngestionsOnTwoWorkers(t *testing.T) {
	const payers = 20
	s := newStackOpts(t, stackOptions{workers: 2})
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "bucket")
	store := blob.NewLocal(root)
	gens := make([]*synth.Result, payers)
	sources := make([]string, payers)
	for i := range payers {
		report := fmt.Sprintf("r%02d", i)
		g, err := synth.Generate(ctx, store, synth.Options{Prefix: "cur", Report: report, Period: "2026-10",
			Rows: 300, Files: 2, Seed: int64(i + 1), Payer: fmt.Sprintf("3000000000%02d", i)})
		require.NoError(t, err)
		gens[i], sources[i] = g, "file://"+filepath.Join(root, "cur", report)
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	ids := make([]string, payers)
	var g errgroup.Group
	for i := range payers {
		run, err := workflows.StartIngestion(ctx, s.client, workflows.IngestBillingPeriodInput{Source: sources[i], Period: billingPeriod("2026-10")})
		require.NoError(t, err)
		ids[i] = run.GetID()
		g.Go(func() error {
			var res workflows.IngestBillingPeriodResult
			if err := run.Get(ctx, &res); err != nil {
				return fmt.Errorf("payer %d: %w", i, err)
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())

	for i := range payers {
		requireSynthTotalsFor(t, s, gens[i], fmt.Sprintf("3000000000%02d", i), "2026-10")
	}
	identities := map[string]int{}
	for _, id := range ids {
		it := s.client.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
				identities[a.GetIdentity()]++
			}
		}
	}
	var names []string
	for n := range identities {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("activities started per worker: %v", identities)
	require.Equal(t, []string{"worker-1", "worker-2"}, names, "both workers took activities")
}
