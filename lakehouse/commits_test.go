package lakehouse_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
)

// A lake committed to before costlake_commits existed has its records
// filled from the snapshot history when it is opened: each key's newest
// commit, restatements included, and nothing for periods never committed.
func TestOpenRecordsCommitsOfOlderLake(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := lakehouse.Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")}
	lake, err := lakehouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	commitLineItems(t, lake, payerA, "2026-09", "asm-1", [][3]string{{"222222222222", "1", ""}})
	restated := commitLineItems(t, lake, payerA, "2026-09", "asm-2", [][3]string{{"222222222222", "2", ""}})
	other := commitLineItems(t, lake, payerB, "2026-09", "asm-3", [][3]string{{"333333333333", "3", ""}})
	october := commitLineItems(t, lake, payerA, "2026-10", "asm-4", [][3]string{{"222222222222", "4", ""}})
	// Forget the records, as a lake of an older costlake has none.
	db, _ := lake.DB()
	if _, err := db.ExecContext(ctx, `DELETE FROM costlake_commits`); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := lake.LatestPeriodCommit(ctx, billing.LineItems, payerA, billingPeriod("2026-09")); ok {
		t.Fatal("a record is left after deleting them")
	}
	lake.Close()

	lake, err = lakehouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	for _, want := range []struct {
		payer, period, assembly string
		snapshot                int64
	}{{payerA, "2026-09", "asm-2", restated}, {payerB, "2026-09", "asm-3", other}, {payerA, "2026-10", "asm-4", october}} {
		c, ok, err := lake.LatestPeriodCommit(ctx, billing.LineItems, want.payer, billingPeriod(want.period))
		if err != nil || !ok || c.SnapshotID != want.snapshot || c.AssemblyID != want.assembly {
			t.Errorf("%s %s: %+v %v %v, want snapshot %d assembly %s", want.payer, want.period, c, ok, err, want.snapshot, want.assembly)
		}
	}
	if _, ok, err := lake.LatestPeriodCommit(ctx, billing.LineItems, payerB, billingPeriod("2026-10")); ok || err != nil {
		t.Errorf("a period never committed: ok=%v err=%v", ok, err)
	}
	if got, err := lake.PayersOfPeriod(ctx, billing.LineItems, billingPeriod("2026-09")); err != nil || !slices.Equal(got, []string{payerA, payerB}) {
		t.Errorf("payers of 2026-09: %v %v", got, err)
	}
	// A commit after the backfill moves its record forward, as any does.
	newer := commitLineItems(t, lake, payerB, "2026-09", "asm-5", [][3]string{{"333333333333", "5", ""}})
	if c, _, _ := lake.LatestPeriodCommit(ctx, billing.LineItems, payerB, billingPeriod("2026-09")); c.SnapshotID != newer {
		t.Errorf("after a restatement: %+v, want snapshot %d", c, newer)
	}
}
