package lakehouse_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/lakehouse"
)

func writeResale(t *testing.T, lake *lakehouse.Lake, customer, period, name string, costs ...string) []string {
	t.Helper()
	w, err := lake.NewResaleWriter(context.Background(), customer, period, name)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range costs {
		r := lakehouse.ResaleRow{CustomerID: customer, Period: period, PayerAccountID: payerA, UsageAccountID: "222222222222",
			LineItemID: fmt.Sprintf("li-%d", i), LineItemType: "Usage", ProductCode: "AmazonEC2", UsageType: "BoxUsage",
			UnblendedCost: money.MustParse(c), ResaleCost: money.MustParse(c).Add(money.MustParse(c)), Rule: "global_percent",
			PricebookVersion: 3, SourceSnapshotID: 42}
		if err := w.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func resaleSums(t *testing.T, lake *lakehouse.Lake, customer, period string, snapshot int64) (rows int, cost, resale money.Amount) {
	t.Helper()
	err := lake.ScanResale(context.Background(), customer, period, snapshot, func(r *lakehouse.ResaleRow) error {
		if r.CustomerID != customer || r.Period != period || r.PricebookVersion != 3 || r.SourceSnapshotID != 42 || r.Rule != "global_percent" {
			return fmt.Errorf("unexpected row %+v", r)
		}
		rows++
		cost, resale = cost.Add(r.UnblendedCost), resale.Add(r.ResaleCost)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows, cost, resale
}

// A cycle's resale rows are replaced together in one snapshot; the same
// pins again change nothing; other customers' rows are never touched.
func TestResaleReplacesOneCycleAtATime(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)

	files := writeResale(t, lake, "acme", "2026-09", "run1", "1.000000000000000001", "2.5")
	snap1, unchanged, err := lake.ReplaceResale(ctx, "acme", "2026-09", "v3;111111111111=42", files, 2)
	if err != nil || unchanged {
		t.Fatalf("first replace: %v (unchanged %v)", err, unchanged)
	}
	other := writeResale(t, lake, "globex", "2026-09", "run1", "7")
	if _, _, err := lake.ReplaceResale(ctx, "globex", "2026-09", "v3;111111111111=42", other, 1); err != nil {
		t.Fatal(err)
	}

	rows, cost, resale := resaleSums(t, lake, "acme", "2026-09", 0)
	if rows != 2 || cost.String() != "3.500000000000000001" || resale.String() != "7.000000000000000002" {
		t.Fatalf("acme: %d rows, cost %s, resale %s", rows, cost, resale)
	}

	// The same closed cycle priced again: nothing changes.
	tbl, err := lake.ResaleLineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := tbl.CurrentSnapshot().SnapshotID
	got, unchanged, err := lake.ReplaceResale(ctx, "acme", "2026-09", "v3;111111111111=42", files, 2)
	if err != nil || !unchanged || got != snap1 {
		t.Fatalf("replay: snapshot %d unchanged %v err %v, want %d unchanged", got, unchanged, err, snap1)
	}
	tbl, _ = lake.ResaleLineItems(ctx)
	if tbl.CurrentSnapshot().SnapshotID != before {
		t.Fatal("a replay committed a snapshot")
	}

	// Other pins replace acme's rows only, in one snapshot.
	files2 := writeResale(t, lake, "acme", "2026-09", "run2", "10")
	snap2, _, err := lake.ReplaceResale(ctx, "acme", "2026-09", "v4;111111111111=43", files2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rows, cost, _ := resaleSums(t, lake, "acme", "2026-09", snap2); rows != 1 || cost.String() != "10" {
		t.Fatalf("after replace: %d rows cost %s", rows, cost)
	}
	if rows, cost, _ := resaleSums(t, lake, "acme", "2026-09", snap1); rows != 2 || cost.String() != "3.500000000000000001" {
		t.Fatalf("time travel to the first commit: %d rows cost %s", rows, cost)
	}
	if rows, cost, _ := resaleSums(t, lake, "globex", "2026-09", 0); rows != 1 || cost.String() != "7" {
		t.Fatalf("globex: %d rows cost %s", rows, cost)
	}
	if c, ok, err := lake.LatestResaleCommit(ctx, "acme", "2026-09"); err != nil || !ok || c.SnapshotID != snap2 || c.Rows != 1 || c.Pins != "v4;111111111111=43" {
		t.Fatalf("latest commit %+v", c)
	}
}

// Customers closing at once race for the table; each commit is redone on
// the winner's snapshot and none is lost.
func TestResaleConcurrentCustomers(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	customers := []string{"c1", "c2", "c3", "c4"}
	var wg sync.WaitGroup
	errs := make([]error, len(customers))
	for i, c := range customers {
		files := writeResale(t, lake, c, "2026-09", "run", "1", "2")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = lake.ReplaceResale(ctx, c, "2026-09", "p", files, 2)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", customers[i], err)
		}
	}
	for _, c := range customers {
		if rows, cost, _ := resaleSums(t, lake, c, "2026-09", 0); rows != 2 || cost.String() != "3" {
			t.Fatalf("%s: %d rows cost %s", c, rows, cost)
		}
	}
}

// commitLineItems writes records as the whole of payer's period.
func commitLineItems(t *testing.T, lake *lakehouse.Lake, payer, period, assembly string, rows [][3]string) int64 {
	t.Helper()
	ctx := context.Background()
	bs := billing.LineItems
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := lakehouse.DataFilePath(tbl, bs, payer, billingPeriod(period), assembly)
	w, err := lakehouse.NewDataFileWriter(ctx, tbl, bs, path)
	if err != nil {
		t.Fatal(err)
	}
	rec := bs.NewRecord()
	for i, r := range rows { // account, cost, invoice ID
		rec.Reset()
		rec.Values[bs.MustIndex(bs.Payer)] = payer
		rec.Values[bs.MustIndex(billing.ColBillingPeriod)] = period
		rec.Values[bs.MustIndex(bs.Account)] = r[0]
		rec.Values[bs.MustIndex(bs.ChargeType)] = "Usage"
		rec.Values[bs.MustIndex(bs.Cost)] = r[1]
		rec.Values[bs.MustIndex(billing.ColBillInvoiceID)] = r[2]
		rec.Values[bs.MustIndex(billing.ColLineItemID)] = fmt.Sprintf("%s-%d", assembly, i)
		rec.Values[bs.MustIndex(billing.ColUsageStartDate)] = "2026-09-01T00:00:00Z"
		rec.Entries[bs.MustIndex(billing.ColResourceTags)] = []billing.Entry{{Key: "user_team", Value: "a"}, {Key: fmt.Sprintf("user_k%d", i%2), Value: "v"}}
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := lake.ReplacePeriod(ctx, bs, lakehouse.PeriodReplacement{Payer: payer, Period: billingPeriod(period), RunID: assembly,
		Reports: []lakehouse.ReportFiles{{AssemblyID: assembly, DataFiles: []string{path}, Rows: int64(len(rows)), DeliveredAt: billingPeriod(period).End()}}}) // a fixed time: later commits are not older, so they replace
	if err != nil {
		t.Fatal(err)
	}
	return res.SnapshotID
}

// ScanLineItems reads a pinned snapshot, not the current table, and
// returns exact values; PeriodInvoiced sees invoice IDs.
func TestScanLineItemsTimeTravel(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	first := commitLineItems(t, lake, payerA, "2026-09", "a1", [][3]string{
		{"222222222222", "0.0000000001", ""}, {"333333333333", "5", ""}, {"222222222222", "-1.25", ""}})
	second := commitLineItems(t, lake, payerA, "2026-09", "a2", [][3]string{
		{"222222222222", "100", "INV-1"}, {"333333333333", "1", "INV-1"}})

	scan := func(snap int64, accounts []string) (n int, sum money.Amount) {
		t.Helper()
		err := lake.ScanLineItems(ctx, lakehouse.LineItemScan{Payer: payerA, Period: billingPeriod("2026-09"), SnapshotID: snap, Accounts: accounts,
			Columns: []string{billing.ColUsageAccountID, billing.ColUnblendedCost, billing.ColUsageStartDate, billing.ColResourceTags}},
			func(r *billing.Record) error {
				n++
				sum = sum.Add(money.MustParse(r.Values[billing.LineItems.MustIndex(billing.ColUnblendedCost)]))
				if got := r.Values[billing.LineItems.MustIndex(billing.ColUsageStartDate)]; got != "2026-09-01T00:00:00Z" {
					return fmt.Errorf("start date %q", got)
				}
				if len(r.Entries[billing.LineItems.MustIndex(billing.ColResourceTags)]) != 2 {
					return fmt.Errorf("tags %v", r.Entries[billing.LineItems.MustIndex(billing.ColResourceTags)])
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return n, sum
	}
	if n, sum := scan(first, []string{"222222222222"}); n != 2 || sum.String() != "-1.2499999999" {
		t.Fatalf("first snapshot, one account: %d rows, %s", n, sum)
	}
	if n, sum := scan(second, nil); n != 2 || sum.String() != "101" {
		t.Fatalf("second snapshot: %d rows, %s", n, sum)
	}
	if n, _ := scan(second, []string{}); n != 0 {
		t.Fatalf("no accounts: %d rows", n)
	}
	keys, err := lake.TagKeys(ctx, lakehouse.LineItemScan{Payer: payerA, Period: billingPeriod("2026-09"), SnapshotID: first})
	if err != nil || !slices.Equal(keys, []string{"user_k0", "user_k1", "user_team"}) {
		t.Fatalf("tag keys %v, %v", keys, err)
	}
	if ok, err := lake.PeriodInvoiced(ctx, payerA, billingPeriod("2026-09"), first); err != nil || ok {
		t.Fatalf("first snapshot invoiced = %v, %v", ok, err)
	}
	if ok, err := lake.PeriodInvoiced(ctx, payerA, billingPeriod("2026-09"), second); err != nil || !ok {
		t.Fatalf("second snapshot invoiced = %v, %v", ok, err)
	}
	if err := lake.ScanLineItems(ctx, lakehouse.LineItemScan{Payer: payerA, Period: billingPeriod("2026-09"), SnapshotID: 12345}, func(*billing.Record) error { return nil }); err == nil {
		t.Fatal("scanning a missing snapshot succeeded")
	}
	if got, err := lake.PayersOfPeriod(ctx, billing.LineItems, billingPeriod("2026-09")); err != nil || !slices.Equal(got, []string{payerA}) {
		t.Fatalf("payers %v", got)
	}
}
