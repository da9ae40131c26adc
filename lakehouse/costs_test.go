package lakehouse_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/lakehouse"
)

func openLake(t *testing.T) *lakehouse.Lake {
	t.Helper()
	dir := t.TempDir()
	lake, err := lakehouse.Open(context.Background(), lakehouse.Config{
		Catalog:   filepath.Join(dir, "catalog.db"),
		Warehouse: "file://" + filepath.Join(dir, "warehouse"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	return lake
}

func cost(day, acct, svc, rt, unblended, amortized, net string) costexplorer.DailyCost {
	return costexplorer.DailyCost{Date: day, LinkedAccount: acct, Service: svc, RecordType: rt,
		Unblended: money.MustParse(unblended), Amortized: money.MustParse(amortized), NetUnblended: money.MustParse(net), Currency: "USD"}
}

func totalsString(ts []lakehouse.CostTotal) string {
	s := ""
	for _, t := range ts {
		s += fmt.Sprintf("%s rows=%d u=%s a=%s n=%s; ", t.LinkedAccount, t.Rows, t.Unblended, t.Amortized, t.NetUnblended)
	}
	return s
}

func snapshots(t *testing.T, lake *lakehouse.Lake) int {
	t.Helper()
	tbl, err := lake.CostExplorerDaily(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(tbl.Metadata().Snapshots())
}

const payerA, payerB = "111111111111", "999999999999"

func TestCostExplorerTableShape(t *testing.T) {
	lake := openLake(t)
	tbl, err := lake.CostExplorerDaily(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{lakehouse.ColCEUnblended, lakehouse.ColCEAmortized, lakehouse.ColCENetUnblended} {
		f, ok := tbl.Schema().FindFieldByName(name)
		if !ok || !f.Type.Equals(iceberg.DecimalTypeOf(money.Precision, money.Scale)) {
			t.Errorf("%s: %v, want decimal(%d,%d)", name, f.Type, money.Precision, money.Scale)
		}
	}
	if f, ok := tbl.Schema().FindFieldByName(lakehouse.ColCEDate); !ok || !f.Type.Equals(iceberg.PrimitiveTypes.Date) {
		t.Errorf("usage_date: %v", f.Type)
	}
	spec := tbl.Spec()
	var parts []string
	for _, f := range spec.Fields() {
		parts = append(parts, f.Name+":"+f.Transform.String())
	}
	if fmt.Sprint(parts) != "[payer_account_id:identity billing_period:identity]" {
		t.Errorf("partitioned by %v", parts)
	}
}

func TestReplaceCostExplorerDays(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)

	// Five days across two billing periods, two accounts, an amount with
	// all 18 fractional digits.
	first := []costexplorer.DailyCost{
		cost("2025-02-27", "222222222222", "Amazon S3", "Usage", "1.5", "1.5", "1.4"),
		cost("2025-02-28", "222222222222", "Amazon S3", "Usage", "2.25", "2.25", "2"),
		cost("2025-02-28", "333333333333", "Tax", "Tax", "0.123456789012345678", "0.123456789012345678", "0.123456789012345678"),
		cost("2025-03-01", "222222222222", "Amazon EC2", "SavingsPlanCoveredUsage", "10", "4", "10"),
		cost("2025-03-01", "222222222222", "Amazon EC2", "SavingsPlanNegation", "-10", "0", "-10"),
		cost("2025-03-02", "333333333333", "Amazon S3", "Credit", "-0.5", "-0.5", "-0.5"),
		cost("2025-03-03", "333333333333", "Amazon S3", "Usage", "99999999999999999999.999999999999999999", "0", "0"),
	}
	snap1, err := lake.ReplaceCostExplorerDays(ctx, payerA, "2025-02-27", "2025-03-04", first, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	// Another payer's rows on the same days stay apart.
	if _, err := lake.ReplaceCostExplorerDays(ctx, payerB, "2025-02-27", "2025-03-04",
		[]costexplorer.DailyCost{cost("2025-03-01", "444444444444", "Amazon S3", "Usage", "7", "7", "7")}, "run-b"); err != nil {
		t.Fatal(err)
	}

	got, err := lake.CostExplorerTotals(ctx, payerA, "2025-02-27", "2025-03-04", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "222222222222 rows=4 u=3.75 a=7.75 n=3.4; 333333333333 rows=3 u=99999999999999999999.623456789012345677 a=-0.376543210987654322 n=-0.376543210987654322; "
	if s := totalsString(got); s != want || s != totalsString(lakehouse.SumCostsByAccount(first)) {
		t.Errorf("totals\n got %s\nwant %s", s, want)
	}

	// A retry of the same run with the same rows changes nothing.
	n := snapshots(t, lake)
	again, err := lake.ReplaceCostExplorerDays(ctx, payerA, "2025-02-27", "2025-03-04", first, "run-1")
	if err != nil || again != snap1 {
		t.Errorf("retry: snapshot %d, %v; want %d", again, err, snap1)
	}
	if snapshots(t, lake) != n {
		t.Errorf("a retry added a snapshot")
	}
	// A second crawl of the same days replaces them: same totals, no duplicates.
	snap2, err := lake.ReplaceCostExplorerDays(ctx, payerA, "2025-02-27", "2025-03-04", first, "run-2")
	if err != nil || snap2 == snap1 {
		t.Fatalf("second run: %d, %v", snap2, err)
	}
	got, _ = lake.CostExplorerTotals(ctx, payerA, "2025-02-27", "2025-03-04", 0)
	if s := totalsString(got); s != want {
		t.Errorf("after a second run\n got %s\nwant %s", s, want)
	}

	// Replacing one day rewrites March without touching its other days,
	// February or payer B, in one snapshot.
	n = snapshots(t, lake)
	snap3, err := lake.ReplaceCostExplorerDays(ctx, payerA, "2025-03-01", "2025-03-02",
		[]costexplorer.DailyCost{cost("2025-03-01", "222222222222", "Amazon EC2", "Usage", "0.000000000000000001", "0", "0")}, "run-3")
	if err != nil {
		t.Fatal(err)
	}
	if snapshots(t, lake) != n+1 {
		t.Errorf("%d snapshots added, want 1", snapshots(t, lake)-n)
	}
	got, _ = lake.CostExplorerTotals(ctx, payerA, "2025-02-27", "2025-03-04", 0)
	want3 := "222222222222 rows=3 u=3.750000000000000001 a=3.75 n=3.4; 333333333333 rows=3 u=99999999999999999999.623456789012345677 a=-0.376543210987654322 n=-0.376543210987654322; "
	if s := totalsString(got); s != want3 {
		t.Errorf("after replacing 2025-03-01\n got %s\nwant %s", s, want3)
	}
	day, _ := lake.CostExplorerTotals(ctx, payerA, "2025-03-01", "2025-03-02", 0)
	if s := totalsString(day); s != "222222222222 rows=1 u=0.000000000000000001 a=0 n=0; " {
		t.Errorf("2025-03-01 alone: %s", s)
	}
	old, _ := lake.CostExplorerTotals(ctx, payerA, "2025-02-27", "2025-03-04", snap2)
	if s := totalsString(old); s != want {
		t.Errorf("time travel to the second run: %s", s)
	}
	b, _ := lake.CostExplorerTotals(ctx, payerB, "2025-01-01", "2025-12-31", 0)
	if s := totalsString(b); s != "444444444444 rows=1 u=7 a=7 n=7; " {
		t.Errorf("payer B: %s", s)
	}

	c, ok, err := lake.LatestCostExplorerCommit(ctx, payerA, "2025-02-01", "2025-04-01")
	if err != nil || !ok || c.SnapshotID != snap3 || c.RunID != "run-3" || c.Start != "2025-03-01" || c.End != "2025-03-02" || c.Rows != 1 {
		t.Errorf("latest commit %+v", c)
	}

	// The same run with other rows (Cost Explorer changed between tries)
	// replaces, and an empty crawl empties the days.
	snap4, err := lake.ReplaceCostExplorerDays(ctx, payerA, "2025-03-01", "2025-03-02", nil, "run-3")
	if err != nil || snap4 == snap3 {
		t.Fatalf("empty replace: %d, %v", snap4, err)
	}
	day, _ = lake.CostExplorerTotals(ctx, payerA, "2025-03-01", "2025-03-02", 0)
	if len(day) != 0 {
		t.Errorf("emptied day still holds %s", totalsString(day))
	}
}

func TestReplaceCostExplorerDaysRejectsStrayRows(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	for name, tc := range map[string]struct {
		start, end string
		rows       []costexplorer.DailyCost
	}{
		"row after the range":  {"2025-03-01", "2025-03-02", []costexplorer.DailyCost{cost("2025-03-02", "2", "S3", "Usage", "1", "1", "1")}},
		"row before the range": {"2025-03-01", "2025-03-02", []costexplorer.DailyCost{cost("2025-02-28", "2", "S3", "Usage", "1", "1", "1")}},
		"bad date":             {"2025-03-01", "2025-03-09", []costexplorer.DailyCost{cost("2025-03-0x", "2", "S3", "Usage", "1", "1", "1")}},
		"empty range":          {"2025-03-01", "2025-03-01", nil},
	} {
		if _, err := lake.ReplaceCostExplorerDays(ctx, payerA, tc.start, tc.end, tc.rows, "r"); !errors.Is(err, lakehouse.ErrCostRows) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if snapshots(t, lake) != 0 {
		t.Errorf("rejected rows were committed")
	}
}
