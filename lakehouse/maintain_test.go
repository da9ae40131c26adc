package lakehouse_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
)

// Maintenance leaves fewer snapshots, manifests and files and the same
// rows: totals at the current snapshot are unchanged, a snapshot a closed
// cycle pins is still readable after its age expired it, records of
// expired snapshots name one that holds their rows, and only orphan
// files older than the orphan age are removed.
func TestMaintainTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	warehouse := filepath.Join(dir, "warehouse")
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + warehouse})
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	bs := billing.LineItems
	sep := billingPeriod("2026-09")

	pinned := commitLineItems(t, lake, payerA, "2026-09", "asm-1", [][3]string{{"222222222222", "1.5", ""}, {"222222222223", "2", ""}})
	pinnedTotals := totalsAt(t, lake, payerA, "2026-09", pinned)
	commitLineItems(t, lake, payerA, "2026-09", "asm-2", [][3]string{{"222222222222", "10.25", ""}}) // a restatement after the pin
	for i := range 6 {
		commitLineItems(t, lake, payerB, fmt.Sprintf("2026-%02d", i+1), fmt.Sprintf("asm-b%d", i), [][3]string{{"333333333333", fmt.Sprint(i + 1), ""}})
	}
	before := map[string]string{}
	for _, key := range [][2]string{{payerA, "2026-09"}, {payerB, "2026-01"}, {payerB, "2026-06"}} {
		before[key[0]+key[1]] = totalsAt(t, lake, key[0], key[1], 0)
	}
	filesBefore := dataFiles(t, warehouse)

	// Two files no snapshot references: an old one (a crashed run's) and
	// one an ingestion is writing now.
	tbl, _ := lake.LineItems(ctx)
	oldOrphan := strings.TrimPrefix(lakehouse.DataFilePath(tbl, bs, payerB, sep, "crashed"), "file://")
	newOrphan := strings.TrimPrefix(lakehouse.DataFilePath(tbl, bs, payerB, sep, "in-flight"), "file://")
	for _, f := range []string{oldOrphan, newOrphan} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("not parquet"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-4 * 24 * time.Hour)
	if err := os.Chtimes(oldOrphan, old, old); err != nil {
		t.Fatal(err)
	}

	res, err := lake.MaintainTable(ctx, lakehouse.TableID(bs), lakehouse.MaintainOptions{Retention: time.Nanosecond, Keep: []int64{pinned}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.SnapshotsBefore != 8 || res.SnapshotsAfter != 2 || res.Kept != 1 {
		t.Errorf("snapshots %d → %d, kept %d: want 8 → 2 (the current and the pinned), kept 1", res.SnapshotsBefore, res.SnapshotsAfter, res.Kept)
	}
	if res.ManifestsAfter >= res.ManifestsBefore || res.ManifestsAfter != 1 {
		t.Errorf("manifests %d → %d, want 1", res.ManifestsBefore, res.ManifestsAfter)
	}
	if res.OrphansRemoved < 1 {
		t.Errorf("orphans removed: %d", res.OrphansRemoved)
	}
	if _, err := os.Stat(oldOrphan); !os.IsNotExist(err) {
		t.Errorf("the old orphan is still there: %v", err)
	}
	if _, err := os.Stat(newOrphan); err != nil {
		t.Errorf("the file being written was removed: %v", err)
	}
	if got := totalsAt(t, lake, payerA, "2026-09", pinned); got != pinnedTotals {
		t.Errorf("pinned snapshot after expiry: %s, want %s", got, pinnedTotals)
	}
	for _, key := range [][2]string{{payerA, "2026-09"}, {payerB, "2026-01"}, {payerB, "2026-06"}} {
		if got := totalsAt(t, lake, key[0], key[1], 0); got != before[key[0]+key[1]] {
			t.Errorf("%s %s now: %s, want %s", key[0], key[1], got, before[key[0]+key[1]])
		}
		c, ok, err := lake.LatestPeriodCommit(ctx, bs, key[0], billingPeriod(key[1]))
		if err != nil || !ok {
			t.Fatalf("%s %s: %v %v", key[0], key[1], ok, err)
		}
		if got := totalsAt(t, lake, key[0], key[1], c.SnapshotID); got != before[key[0]+key[1]] {
			t.Errorf("%s %s at its recorded snapshot %d: %s, want %s", key[0], key[1], c.SnapshotID, got, before[key[0]+key[1]])
		}
	}
	// The restated assembly's file stays for the pin; none was lost, the
	// orphan is gone.
	if got := len(dataFiles(t, warehouse)); got != len(filesBefore)+1 {
		t.Errorf("data files %d → %d, want %d (+ the in-flight one)", len(filesBefore), got, len(filesBefore)+1)
	}

	// Once the pin goes (the cycle is no longer kept), its files go too.
	res, err = lake.MaintainTable(ctx, lakehouse.TableID(bs), lakehouse.MaintainOptions{Retention: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.SnapshotsAfter != 1 || res.Kept != 0 {
		t.Errorf("without the pin: %+v", res)
	}
	if got := len(dataFiles(t, warehouse)); got != len(filesBefore) {
		t.Errorf("data files after the pin went: %d, want %d (the restated one gone, the in-flight one kept)", got, len(filesBefore))
	}
}

func totalsAt(t *testing.T, lake *lakehouse.Lake, payer, p string, snapshot int64) string {
	t.Helper()
	totals, err := lake.PeriodTotals(context.Background(), billing.LineItems, payer, billingPeriod(p), snapshot)
	if err != nil {
		t.Fatalf("totals of %s %s at %d: %v", payer, p, snapshot, err)
	}
	return fmt.Sprint(totals)
}

func dataFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
