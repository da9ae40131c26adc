package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/rebilling"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// The failure types are the ones workflows and clients already know.
func TestRebillingErrorTypes(t *testing.T) {
	for kind, want := range map[error]string{
		rebilling.ErrInvalidInput:  "InvalidCycleInput",
		rebilling.ErrNoPricebook:   "NoPricebook",
		rebilling.ErrBadPricebook:  "InvalidPricebook",
		rebilling.ErrNotClosed:     "CycleNotClosed",
		rebilling.ErrOpenCycles:    "CyclesOpen",
		rebilling.ErrBadLineItem:   "BadLineItem",
		rebilling.ErrSnapshotGone:  "SnapshotMissing",
		rebilling.ErrNotReconciled: "ReconciliationFailed",
	} {
		err := rebillingError(fmt.Errorf("wrapped: %w", &rebilling.Error{Kind: kind, Msg: "what and where"}))
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != want || !app.NonRetryable() || app.Message() != "what and where" {
			t.Errorf("%v: got %v, want a non-retryable %s", kind, err, want)
		}
	}
	plain := errors.New("catalog busy")
	if err := rebillingError(plain); err != plain {
		t.Errorf("a retryable error became %v", err)
	}
}

const (
	rbPayer  = "210987654321"
	rbAcme   = "111111111111"
	rbNobody = "444444444444"
	rbPeriod = "2026-09"
)

// rbCommit replaces the payer's period in the real line items table with
// rows of (account, line item ID, cost), all EC2 usage.
func rbCommit(t *testing.T, lake *lakehouse.Lake, assembly string, rows ...[3]string) int64 {
	t.Helper()
	ctx := context.Background()
	bs := billing.LineItems
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := lakehouse.DataFilePath(tbl, bs, rbPayer, period.MustParse(rbPeriod), assembly)
	w, err := lakehouse.NewDataFileWriter(ctx, tbl, bs, path)
	if err != nil {
		t.Fatal(err)
	}
	rec := bs.NewRecord()
	for _, r := range rows {
		rec.Reset()
		for col, v := range map[string]string{bs.Payer: rbPayer, billing.ColBillingPeriod: rbPeriod, bs.Account: r[0], bs.ChargeType: "Usage",
			billing.ColLineItemID: r[1], bs.Cost: r[2], billing.ColProductCode: "AmazonEC2", "product_servicecode": "AmazonEC2",
			billing.ColUsageStartDate: "2026-09-01T00:00:00Z"} {
			rec.Values[bs.MustIndex(col)] = v
		}
		rec.Entries[bs.MustIndex(billing.ColResourceTags)] = []billing.Entry{{Key: "user_team", Value: r[1]}}
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := lake.ReplacePeriod(ctx, bs, lakehouse.PeriodReplacement{Payer: rbPayer, Period: period.MustParse(rbPeriod), RunID: assembly,
		Reports: []lakehouse.ReportFiles{{AssemblyID: assembly, DataFiles: []string{path}, Rows: int64(len(rows)), DeliveredAt: time.Unix(0, 0)}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.SnapshotID
}

// The activities price a cycle and reconcile the reseller's export over
// the real lakehouse (SQLite catalog, local warehouse): the adapter's
// reads, resale commit and time travel, end to end.
func TestRebillingOverTheLakehouse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.SetAccounts(ctx, "acme", rbPeriod, []reseller.Assignment{{PayerAccountID: rbPayer, Accounts: []string{rbAcme}}}, "op"))
	v, err := store.PutPricebook(ctx, "acme", rbPeriod, json.RawMessage(`{"effective_from":"2026-09","global_percent":"12.5"}`), "op")
	must(err)
	pinned := rbCommit(t, lake, "asm-1", [3]string{rbAcme, "li-1", "80.00"}, [3]string{rbAcme, "li-2", "0.000003"}, [3]string{rbNobody, "li-3", "5.50"})
	must(store.CloseCycle(ctx, reseller.Cycle{CustomerID: "acme", Period: rbPeriod, PricebookVersion: v, Snapshots: map[string]int64{rbPayer: pinned}}))
	// AWS restates September after acme closed it.
	current := rbCommit(t, lake, "asm-2", [3]string{rbAcme, "li-1", "81.25"}, [3]string{rbAcme, "li-2", "0.000003"}, [3]string{rbNobody, "li-3", "5.50"})

	out := t.TempDir()
	a := New(Config{Lake: lake, Reseller: store, TempDir: t.TempDir(), Blobs: blob.Opener{FileRoots: []string{out}}}).Cycle
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	run := func(name string, in, res any) error {
		t.Helper()
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		val, err := env.ExecuteActivity(name, in)
		if err != nil {
			return err
		}
		return val.Get(res)
	}
	want := func(what string, got money.Amount, s string) {
		t.Helper()
		w, err := money.Parse(s)
		must(err)
		if got.Cmp(w) != 0 {
			t.Errorf("%s = %s, want %s", what, got, s)
		}
	}

	var priced cycle.PriceResult
	must(run(cycle.PriceAndExportActivity, cycle.PriceInput{CustomerID: "acme", Period: period.MustParse(rbPeriod)}, &priced))
	if priced.Rows != 2 || priced.ResaleSnapshotID == 0 {
		t.Fatalf("priced %d rows into resale snapshot %d, want 2", priced.Rows, priced.ResaleSnapshotID)
	}
	want("bill cost", priced.Bill.Cost, "80.000003")
	want("bill total", priced.Bill.Total, "90.00000337500")
	var resale money.Amount
	must(lake.ScanResale(ctx, "acme", rbPeriod, priced.ResaleSnapshotID, func(r *lakehouse.ResaleRow) error {
		if r.SourceSnapshotID != pinned {
			t.Errorf("resale row %s from snapshot %d, want the pin %d", r.LineItemID, r.SourceSnapshotID, pinned)
		}
		resale = resale.Add(r.ResaleCost)
		return nil
	}))
	want("resale table", resale, "90.000003375")
	var again cycle.PriceResult
	must(run(cycle.PriceAndExportActivity, cycle.PriceInput{CustomerID: "acme", Period: period.MustParse(rbPeriod)}, &again))
	if !again.Replayed || again.ResaleSnapshotID != priced.ResaleSnapshotID {
		t.Errorf("second run: replayed %v, snapshot %d; want the first run's %d read back", again.Replayed, again.ResaleSnapshotID, priced.ResaleSnapshotID)
	}

	var rep cycle.ResellerExportResult
	must(run(cycle.ResellerExportActivity, cycle.ResellerExportInput{Period: period.MustParse(rbPeriod), URL: "file://" + out}, &rep))
	if len(rep.Payers) != 1 || rep.Payers[0].SnapshotID != current {
		t.Fatalf("reconciliations %+v, want one of snapshot %d", rep.Payers, current)
	}
	rec := rep.Payers[0]
	want("total", rec.Total, "86.750003")
	want("acme", rec.Customers["acme"], "80.000003")
	want("restated", rec.Restated, "1.25")
	want("unassigned", rec.Unassigned, "5.50")
	want("open", rec.Open, "0")

	// A cycle whose pinned snapshot is gone fails by name, not by retry.
	must(store.SetAccounts(ctx, "globex", rbPeriod, []reseller.Assignment{{PayerAccountID: rbPayer, Accounts: []string{"333333333333"}}}, "op"))
	gv, err := store.PutPricebook(ctx, "globex", rbPeriod, json.RawMessage(`{"effective_from":"2026-09"}`), "op")
	must(err)
	must(store.CloseCycle(ctx, reseller.Cycle{CustomerID: "globex", Period: rbPeriod, PricebookVersion: gv, Snapshots: map[string]int64{rbPayer: 4242}}))
	err = run(cycle.PriceAndExportActivity, cycle.PriceInput{CustomerID: "globex", Period: period.MustParse(rbPeriod)}, &cycle.PriceResult{})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != cycle.ErrTypeSnapshotGone || !app.NonRetryable() {
		t.Errorf("pricing an expired pin: %v, want a non-retryable %s", err, cycle.ErrTypeSnapshotGone)
	}
}
