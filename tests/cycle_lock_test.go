package tests

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/reseller"
)

// Closing a customer's next cycle and recording an adjustment of its last
// closed one, at the same moment on PostgreSQL, happen one after the
// other: the adjustment goes to the cycle being closed only if it was
// recorded before the close, so the close's pricing (which reads the
// cycle's adjustments right after) sees it; otherwise it goes to the
// cycle after. Never to a cycle that closed without it.
func TestCloseAndAdjustDoNotInterleave(t *testing.T) {
	pg := postgresCluster(t)
	db, err := sql.Open("pgx", pg.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	store, err := reseller.Open(ctx, db, true)
	require.NoError(t, err)

	const rounds = 150
	amount := money.MustParse("1.25")
	next, after := 0, 0
	for i := range rounds {
		customer := fmt.Sprintf("c%03d", i)
		require.NoError(t, store.CloseCycle(ctx, reseller.Cycle{CustomerID: customer, Period: "2026-09", PricebookVersion: 1, Snapshots: map[string]int64{}}))
		var adj reseller.Adjustment
		var seenByClose []reseller.Adjustment
		var g errgroup.Group
		g.Go(func() error {
			var err error
			adj, _, err = store.RecordAdjustment(ctx, reseller.Adjustment{CustomerID: customer, OriginPeriod: "2026-09",
				PayerAccountID: "111122223333", Amount: amount, AssemblyID: "a2", SnapshotID: 2})
			return err
		})
		g.Go(func() error {
			if err := store.CloseCycle(ctx, reseller.Cycle{CustomerID: customer, Period: "2026-10", PricebookVersion: 1, Snapshots: map[string]int64{}}); err != nil {
				return err
			}
			var err error
			seenByClose, err = store.Adjustments(ctx, customer, "2026-10")
			return err
		})
		require.NoError(t, g.Wait())
		switch adj.AppliesToPeriod {
		case "2026-10":
			next++
			require.Len(t, seenByClose, 1, "customer %s: the adjustment went to 2026-10, so 2026-10's close must see it", customer)
		case "2026-11":
			after++
			require.Empty(t, seenByClose, customer)
		default:
			t.Fatalf("customer %s: adjustment applies to %q", customer, adj.AppliesToPeriod)
		}
	}
	t.Logf("of %d rounds, the adjustment went to the cycle being closed in %d and to the one after in %d", rounds, next, after)
}
