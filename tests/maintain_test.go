package tests

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/worker"
	"github.com/costlake/costlake/workflows"
)

// TestMaintainTablesKeepsClosedCycles runs the MaintainTables workflow on
// real servers after a cycle closed and its month was restated: every
// snapshot but the current one and the closed cycle's pin expires, the
// manifests are merged, the table's rows and totals are unchanged, the
// pinned snapshot still reads exactly as the cycle priced it, the
// period's record names a snapshot that exists, and the daily schedule
// every worker ensures is there once, however many workers ensure it.
func TestMaintainTablesKeepsClosedCycles(t *testing.T) {
	s := newCycleStack(t)
	ctx := context.Background()
	const payerID, period = "777788889999", "2026-09"
	src := s.minio.CreateBucket(t, "maint-cur")
	gen, err := synth.Generate(ctx, src, synth.Options{Prefix: "cur", Report: "billing", Bucket: "maint-cur", Period: period,
		Rows: 800, Files: 2, Seed: 5, Payer: payerID, LinkedAccounts: 3, AssemblyID: "20261003T000000Z"})
	require.NoError(t, err)
	ing, err := s.ingest("s3://maint-cur/cur/billing", period)
	require.NoError(t, err)
	pinned := ing.SnapshotID
	var owned []string
	for a := range gen.Accounts {
		if a != payerID {
			owned = append(owned, a)
		}
	}
	require.NoError(t, s.reseller.PutCustomer(ctx, reseller.Customer{ID: "acme"}, "test"))
	require.NoError(t, s.reseller.SetAccounts(ctx, "acme", period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: owned}}, "test"))
	_, err = s.reseller.PutPricebook(ctx, "acme", period, json.RawMessage(`{"effective_from":"`+period+`","global_percent":"10"}`), "test")
	require.NoError(t, err)
	closed := s.close("acme", period)
	require.Equal(t, pinned, closed.Snapshots[payerID])
	pinnedRows := s.snapshotRows(payerID, period, pinned)

	// AWS restates the month, and October arrives: more snapshots.
	_, err = synth.Generate(ctx, src, synth.Options{Prefix: "cur", Report: "billing", Bucket: "maint-cur", Period: period,
		Rows: 900, Files: 3, Seed: 6, Payer: payerID, LinkedAccounts: 3, AssemblyID: "20261008T000000Z"})
	require.NoError(t, err)
	_, err = s.ingest("s3://maint-cur/cur/billing", period)
	require.NoError(t, err)
	_, err = synth.Generate(ctx, src, synth.Options{Prefix: "cur", Report: "billing", Bucket: "maint-cur", Period: "2026-10",
		Rows: 300, Files: 1, Seed: 7, Payer: payerID, LinkedAccounts: 3, AssemblyID: "20261103T000000Z"})
	require.NoError(t, err)
	_, err = s.ingest("s3://maint-cur/cur/billing", "2026-10")
	require.NoError(t, err)
	rowsBefore, costsBefore := s.tableTotals(payerID, period)
	octRows, octCosts := s.tableTotals(payerID, "2026-10")

	// A retention shorter than the test: everything but the current
	// snapshot is old enough to expire.
	run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "maintain-now", TaskQueue: workflows.TaskQueue},
		maintain.Workflow, maintain.Input{Retention: time.Nanosecond})
	require.NoError(t, err)
	var res maintain.Result
	require.NoError(t, run.Get(ctx, &res))
	var li maintain.TableResult
	var names []string
	for _, r := range res.Tables {
		if r.Table == billing.LineItems.Table {
			li = r
		}
		names = append(names, r.Table)
	}
	// The customer's own copies of its cycle are maintained too.
	require.Subset(t, names, []string{"resale_line_items", "invoices", "customer_acme.resale_line_items", "customer_acme.invoices"})
	t.Logf("line_items: %+v", li)
	require.Equal(t, billing.LineItems.Table, li.Table, "line_items was maintained: %+v", res)
	require.Equal(t, 1, li.Pinned)
	require.Equal(t, 2, li.SnapshotsAfter, "the current snapshot and the pin")
	require.Less(t, li.SnapshotsAfter, li.SnapshotsBefore)
	require.LessOrEqual(t, li.ManifestsAfter, li.ManifestsBefore)
	require.Equal(t, 1, li.ManifestsAfter)

	rowsAfter, costsAfter := s.tableTotals(payerID, period)
	require.Equal(t, rowsBefore, rowsAfter)
	require.Equal(t, costsBefore, costsAfter)
	r, c := s.tableTotals(payerID, "2026-10")
	require.Equal(t, octRows, r)
	require.Equal(t, octCosts, c)
	require.Equal(t, pinnedRows, s.snapshotRows(payerID, period, pinned), "the closed cycle's pin reads as it was priced")
	for _, p := range []string{period, "2026-10"} {
		rec, ok, err := s.lake.LatestPeriodCommit(ctx, billing.LineItems, payerID, billingPeriod(p))
		require.NoError(t, err)
		require.True(t, ok)
		totals, err := s.lake.PeriodTotals(ctx, billing.LineItems, payerID, billingPeriod(p), rec.SnapshotID)
		require.NoError(t, err, "the record of %s names a snapshot that exists", p)
		require.NotEmpty(t, totals)
	}
	// Closing again still answers the closed cycle, from its pins.
	again := s.close("acme", period)
	require.Equal(t, closed.Snapshots, again.Snapshots)

	// The schedule: every worker ensures it; it exists once and runs
	// MaintainTables.
	for range 2 {
		require.NoError(t, worker.EnsureMaintenanceSchedule(ctx, s.client, worker.DefaultMaintenanceHour, maintain.Input{}))
	}
	d, err := s.client.ScheduleClient().GetHandle(ctx, maintain.ScheduleID).Describe(ctx)
	require.NoError(t, err)
	action, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	require.Equal(t, maintain.Workflow, action.Workflow)
	require.Error(t, worker.EnsureMaintenanceSchedule(ctx, s.client, 24, maintain.Input{}), "an hour that is none")
}

// TestMaintainWaitsForCycleCloses shows the pin lock on the catalog
// database (SQLite here, PostgreSQL's advisory lock on the second pass,
// across two lakes as two worker processes have): table maintenance reads
// the pins only once a cycle close that holds the snapshots has stored
// its own, and a close waits for a maintenance in progress.
func TestMaintainWaitsForCycleCloses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := lakehouse.Config{Catalog: testCatalog(t, dir), Warehouse: "file://" + filepath.Join(dir, "warehouse")}
	closer, err := lakehouse.Open(ctx, cfg)
	require.NoError(t, err)
	defer closer.Close()
	maintainer, err := lakehouse.Open(ctx, cfg)
	require.NoError(t, err)
	defer maintainer.Close()
	row := costexplorer.DailyCost{Date: "2026-09-01", LinkedAccount: "111122223333", Service: "Amazon EC2", RecordType: "Usage",
		Unblended: money.MustParse("1.5"), Amortized: money.MustParse("1.5"), NetUnblended: money.MustParse("1.5"), Currency: "USD"}
	_, err = closer.ReplaceCostExplorerDays(ctx, "111122223333", "2026-09-01", "2026-09-02", []costexplorer.DailyCost{row}, "run-1")
	require.NoError(t, err)

	var stored atomic.Bool
	holding := make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		closed <- closer.HoldSnapshots(ctx, func(context.Context) error {
			close(holding)
			time.Sleep(300 * time.Millisecond) // a chance for maintenance to run early, were it not held off
			stored.Store(true)
			return nil
		})
	}()
	<-holding
	_, err = maintainer.MaintainTable(ctx, lakehouse.CostExplorerTableID(), lakehouse.MaintainOptions{
		Pinned: func(context.Context) ([]int64, error) {
			if !stored.Load() {
				return nil, errors.New("maintenance read the pins while a cycle close held the snapshots")
			}
			return nil, nil
		}})
	require.NoError(t, err)
	require.NoError(t, <-closed)

	// And the other way: a close waits for a maintenance in progress.
	var maintained atomic.Bool
	inside := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := maintainer.MaintainTable(ctx, lakehouse.CostExplorerTableID(), lakehouse.MaintainOptions{
			Pinned: func(context.Context) ([]int64, error) {
				close(inside)
				time.Sleep(300 * time.Millisecond)
				maintained.Store(true)
				return nil, nil
			}})
		done <- err
	}()
	<-inside
	require.NoError(t, closer.HoldSnapshots(ctx, func(context.Context) error {
		if !maintained.Load() {
			return errors.New("a cycle close held the snapshots while maintenance was expiring them")
		}
		return nil
	}))
	require.NoError(t, <-done)
}

// TestMaintainTableOnS3Warehouse maintains a table whose warehouse is on
// MinIO (s3://): expiry removes the replaced rows' file, orphan removal
// lists the bucket and removes an object no snapshot references, and the
// table's rows are unchanged.
func TestMaintainTableOnS3Warehouse(t *testing.T) {
	ctx := context.Background()
	minio := harness.MinIO(t)
	bucket := minio.CreateBucket(t, "maint-warehouse")
	dir := t.TempDir()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(t, dir), Warehouse: "s3://maint-warehouse/costlake", S3: minio.S3Options()})
	require.NoError(t, err)
	defer lake.Close()
	const payer = "111122223333"
	day := func(amount string) []costexplorer.DailyCost {
		return []costexplorer.DailyCost{{Date: "2026-09-01", LinkedAccount: payer, Service: "Amazon EC2", RecordType: "Usage",
			Unblended: money.MustParse(amount), Amortized: money.MustParse(amount), NetUnblended: money.MustParse(amount), Currency: "USD"}}
	}
	_, err = lake.ReplaceCostExplorerDays(ctx, payer, "2026-09-01", "2026-09-02", day("1.5"), "run-1")
	require.NoError(t, err)
	snap, err := lake.ReplaceCostExplorerDays(ctx, payer, "2026-09-01", "2026-09-02", day("2.25"), "run-2")
	require.NoError(t, err)
	before, err := lake.CostExplorerTotals(ctx, payer, "2026-09-01", "2026-09-02", 0)
	require.NoError(t, err)
	tbl, err := lake.CostExplorerDaily(ctx)
	require.NoError(t, err)
	orphanKey := strings.TrimPrefix(tbl.Location(), "s3://maint-warehouse/") + "/data/crashed-run.parquet"
	require.NoError(t, bucket.Put(ctx, orphanKey, strings.NewReader("not parquet")))
	objects := func() int {
		infos, err := bucket.List(ctx, "costlake/")
		require.NoError(t, err)
		return len(infos)
	}
	objectsBefore := objects()

	res, err := lake.MaintainTable(ctx, lakehouse.CostExplorerTableID(), lakehouse.MaintainOptions{Retention: time.Nanosecond, OrphanAge: time.Nanosecond})
	require.NoError(t, err)
	t.Logf("%+v", res)
	require.Equal(t, 1, res.SnapshotsAfter)
	require.GreaterOrEqual(t, res.OrphansRemoved, 1)
	require.Less(t, objects(), objectsBefore, "the replaced rows' file, old manifests and the orphan are gone")
	_, err = bucket.Open(ctx, orphanKey)
	require.Error(t, err, "the orphan is gone")
	after, err := lake.CostExplorerTotals(ctx, payer, "2026-09-01", "2026-09-02", 0)
	require.NoError(t, err)
	require.Equal(t, before, after)
	c, ok, err := lake.LatestCostExplorerCommit(ctx, payer, "2026-09-01", "2026-09-02")
	require.NoError(t, err)
	require.True(t, ok)
	tbl, err = lake.CostExplorerDaily(ctx)
	require.NoError(t, err)
	require.NotEqual(t, snap, c.SnapshotID, "the commit's snapshot expired (the manifest rewrite's is newer)")
	require.Equal(t, tbl.CurrentSnapshot().SnapshotID, c.SnapshotID, "its record names the current snapshot, which holds its rows")
}
