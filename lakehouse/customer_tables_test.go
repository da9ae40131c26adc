package lakehouse_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// customerFiles lists the data files of a customer's own table.
func customerFiles(t *testing.T, lake *lakehouse.Lake, customer string) (*table.Table, []string) {
	t.Helper()
	tbl, err := lake.Catalog().LoadTable(context.Background(), lakehouse.CustomerTableID(customer, reseller.CustomerResaleTable))
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		out = append(out, task.File.FilePath())
	}
	return tbl, out
}

// Each resale commit is copied into the customer's own table, which holds
// its files only, under its own location; a re-priced cycle replaces the
// copies; a crash between the two commits heals on the retry; and
// maintenance of either table (expiry, orphans) deletes nothing the other
// reads, and repoints no billing record at the copy's snapshots.
func TestCustomerTablesCopyTheirCycles(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	files := writeResale(t, lake, "acme-corp", "2026-09", "run1", "1.000000000000000001", "2.5")
	if _, _, err := lake.ReplaceResale(ctx, "acme-corp", "2026-09", "pins-1", files, 2); err != nil {
		t.Fatal(err)
	}
	other := writeResale(t, lake, "globex", "2026-09", "run1", "7")
	if _, _, err := lake.ReplaceResale(ctx, "globex", "2026-09", "pins-1", other, 1); err != nil {
		t.Fatal(err)
	}
	tbl, got := customerFiles(t, lake, "acme-corp")
	if tbl.Identifier()[0] != "customer_acme_corp" || len(got) != 1 || !strings.HasPrefix(got[0], tbl.Location()+"/") || strings.Contains(got[0], "globex") {
		t.Fatalf("customer_acme_corp: %v in %s", got, tbl.Location())
	}

	// Re-priced: the copy follows, the earlier copy leaves the snapshot.
	repriced := writeResale(t, lake, "acme-corp", "2026-09", "run2", "4")
	if _, _, err := lake.ReplaceResale(ctx, "acme-corp", "2026-09", "pins-2", repriced, 1); err != nil {
		t.Fatal(err)
	}
	_, got = customerFiles(t, lake, "acme-corp")
	if len(got) != 1 || !strings.HasSuffix(got[0], "/run2-00001.parquet") {
		t.Fatalf("after re-pricing: %v", got)
	}

	// A commit whose copy was lost: the retry (unchanged) copies again.
	if err := lake.Catalog().DropTable(ctx, lakehouse.CustomerTableID("globex", reseller.CustomerResaleTable)); err != nil {
		t.Fatal(err)
	}
	if _, unchanged, err := lake.ReplaceResale(ctx, "globex", "2026-09", "pins-1", other, 1); err != nil || !unchanged {
		t.Fatalf("retry: %v (unchanged %v)", err, unchanged)
	}
	if _, got := customerFiles(t, lake, "globex"); len(got) != 1 {
		t.Fatalf("globex after the retry: %v", got)
	}

	before, ok, err := lake.LatestResaleCommit(ctx, "acme-corp", "2026-09")
	if err != nil || !ok {
		t.Fatal(err)
	}
	// Everything older than now expires, orphans of any age go.
	o := lakehouse.MaintainOptions{Retention: time.Nanosecond, OrphanAge: time.Nanosecond, Now: time.Now().Add(time.Hour)}
	time.Sleep(10 * time.Millisecond)
	if _, err := lake.MaintainTable(ctx, lakehouse.ResaleTableID(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := lake.MaintainTable(ctx, lakehouse.CustomerTableID("acme-corp", reseller.CustomerResaleTable), o); err != nil {
		t.Fatal(err)
	}
	rows, cost, _ := resaleSums(t, lake, "acme-corp", "2026-09", 0)
	if rows != 1 || cost.String() != "4" {
		t.Fatalf("billing.resale_line_items after maintenance: %d rows, %s", rows, cost)
	}
	_, got = customerFiles(t, lake, "acme-corp")
	for _, f := range append(got, repriced...) {
		if _, err := os.Stat(strings.TrimPrefix(f, "file://")); err != nil {
			t.Fatalf("maintenance removed a file still read: %v", err)
		}
	}
	after, _, err := lake.LatestResaleCommit(ctx, "acme-corp", "2026-09")
	if err != nil {
		t.Fatal(err)
	}
	billingTbl, err := lake.ResaleLineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if billingTbl.SnapshotByID(after.SnapshotID) == nil {
		t.Fatalf("acme-corp's record names snapshot %d (was %d), which billing.resale_line_items does not have", after.SnapshotID, before.SnapshotID)
	}
	ids, err := lake.CustomerTables(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("customer tables: %v, %v", ids, err)
	}

	// A cycle closed before customers had tables: the sync copies it,
	// and a second sync changes nothing.
	if err := lake.Catalog().DropTable(ctx, lakehouse.CustomerTableID("acme-corp", reseller.CustomerResaleTable)); err != nil {
		t.Fatal(err)
	}
	if n, err := lake.SyncCustomerTables(ctx, lakehouse.ResaleTableID()); err != nil || n != 2 {
		t.Fatalf("sync: %d, %v", n, err)
	}
	synced, got := customerFiles(t, lake, "acme-corp")
	if len(got) != 1 || !strings.HasSuffix(got[0], "/run2-00001.parquet") {
		t.Fatalf("after the sync: %v", got)
	}
	if _, err := lake.SyncCustomerTables(ctx, lakehouse.ResaleTableID()); err != nil {
		t.Fatal(err)
	}
	again, _ := customerFiles(t, lake, "acme-corp")
	if again.MetadataLocation() != synced.MetadataLocation() {
		t.Fatal("a sync of tables in line committed")
	}
}
