package workflows

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/searchattr"
)

// CycleStatusQuery returns the cycle.Status of a CloseBillingCycle run.
const CycleStatusQuery = "cycle-status"

// CycleWorkflowID is the business key of closing a customer's billing
// cycle: "cycle/<customer>/<period>".
func CycleWorkflowID(customer string, p period.Period) string {
	return "cycle/" + customer + "/" + p.String()
}

// ResellerExportWorkflowID is the business key of a reseller-wide export:
// "reseller-export/<period>".
func ResellerExportWorkflowID(p period.Period) string { return "reseller-export/" + p.String() }

// CloseBillingCycleInput asks to close one customer's billing cycle.
type CloseBillingCycleInput struct {
	CustomerID string        `json:"customer_id"`
	Period     period.Period `json:"period"` // YYYY-MM
	// FinalAfterDays: without invoice IDs, the period is final this many
	// days after its month ends; 0 means cycle.DefaultFinalAfterDays.
	FinalAfterDays int `json:"final_after_days,omitempty"`
	// CheckEvery is how long the workflow sleeps between checks while the
	// period is not final; 0 means cycle.DefaultCheckEvery (24h).
	CheckEvery time.Duration `json:"check_every,omitempty"`
	// Early closes now, without waiting for the period to be final: an
	// operator's decision (the line items committed now are pinned).
	Early bool `json:"early,omitempty"`
}

// CloseBillingCycleResult is a closed cycle: what it pinned, the invoice,
// the resale snapshot and the exports written (references, never rows).
type CloseBillingCycleResult struct {
	CustomerID       string            `json:"customer_id"`
	Period           period.Period     `json:"period"`
	PricebookVersion int               `json:"pricebook_version"`
	Snapshots        map[string]int64  `json:"snapshots"` // payer → billing.line_items snapshot pinned
	ClosedAt         string            `json:"closed_at"`
	AlreadyClosed    bool              `json:"already_closed"` // an earlier run closed it; its pins were kept
	Bill             pricing.Bill      `json:"bill"`
	Rows             int64             `json:"rows"`
	ResaleSnapshotID int64             `json:"resale_snapshot_id"`
	Exports          []cycle.ExportRef `json:"exports"`
	// ExportKeys are the exports' manifest URLs (each written last).
	ExportKeys []string `json:"export_keys"`
	// Invoices are the invoice.json URLs written beside the exports.
	Invoices []string `json:"invoices,omitempty"`
	// Replayed: the cycle was already priced and exported; nothing was written.
	Replayed bool `json:"replayed"`
}

// ExportResellerPeriodInput asks for the reseller's own export of a period.
type ExportResellerPeriodInput = cycle.ResellerExportInput

// maxChecksPerRun bounds a waiting run's history: after this many checks
// it continues as new.
const maxChecksPerRun = 200

// CloseBillingCycle closes a customer's billing cycle: (a) it waits until
// the period is final (every payer's committed line items carry invoice
// IDs, or FinalAfterDays have passed since the month ended), checking
// every CheckEvery; (b) it freezes the cycle: each payer's committed
// snapshot and the pricebook version in force are pinned and the cycle is
// recorded closed; (c) it prices the pinned line items with the pinned
// pricebook into billing.resale_line_items and writes the customer's
// export. Every step is idempotent: running it again for a closed cycle
// keeps the pins and writes nothing new. The status query answers
// cycle.Status.
func CloseBillingCycle(ctx workflow.Context, in CloseBillingCycleInput) (*CloseBillingCycleResult, error) {
	status := cycle.Status{Stage: cycle.StatusWaiting}
	if err := workflow.SetQueryHandler(ctx, CycleStatusQuery, func() (cycle.Status, error) { return status, nil }); err != nil {
		return nil, err
	}
	fail := func(err error) (*CloseBillingCycleResult, error) {
		status.Stage = cycle.StatusFailed
		return nil, err
	}
	if !payer.ValidCustomerID(in.CustomerID) || in.Period.IsZero() {
		return fail(temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("customer %q and period %q: want a customer ID and YYYY-MM", in.CustomerID, in.Period), cycle.ErrTypeInvalidInput, nil))
	}
	if in.FinalAfterDays <= 0 {
		in.FinalAfterDays = cycle.DefaultFinalAfterDays
		if workflow.GetVersion(ctx, finalDayChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			in.FinalAfterDays = cycle.LegacyFinalAfterDays // a run waiting since before keeps its date
		}
	}
	if in.CheckEvery <= 0 {
		in.CheckEvery = cycle.DefaultCheckEvery
	}
	status.FinalAt = in.Period.FinalAt(in.FinalAfterDays)

	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 10},
	})
	if in.Early {
		// No finality check at all: early closes add no command to
		// the runs that wait (Early is false in every older history).
		status.Reason = "closed early by an operator, before the period is final"
	}
	for !in.Early {
		// Finality is judged on the business clock; the wait runs on
		// Temporal's.
		asOf, now := businessNow(ctx), workflow.Now(ctx)
		var chk cycle.CheckFinalResult
		err := cycle.CheckFinal.Execute(short, cycle.CheckFinalInput{
			CustomerID: in.CustomerID, Period: in.Period, FinalAfterDays: in.FinalAfterDays, AsOf: asOf,
		}).Get(ctx, &chk)
		if err != nil {
			return fail(err)
		}
		status.Checks++
		status.LastCheck, status.Reason, status.Payers = now, chk.Reason, chk.Payers
		if chk.Final {
			status.NextCheck = time.Time{}
			break
		}
		wait := in.CheckEvery
		if d := status.FinalAt.Sub(asOf); d > 0 && d < wait {
			wait = d // wake up when the period becomes final by date
		}
		status.NextCheck = now.Add(wait)
		if status.Checks >= maxChecksPerRun {
			return nil, workflow.NewContinueAsNewError(ctx, CloseBillingCycle, in)
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return fail(err)
		}
	}

	status.Stage = cycle.StatusFreezing
	var frozen cycle.FreezeResult
	if err := cycle.Freeze.Execute(short, cycle.FreezeInput{CustomerID: in.CustomerID, Period: in.Period}).Get(ctx, &frozen); err != nil {
		return fail(err)
	}
	status.PricebookVersion, status.Snapshots = frozen.PricebookVersion, frozen.Snapshots

	status.Stage = cycle.StatusPricing
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 6 * time.Hour,
		HeartbeatTimeout:    5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})
	var priced cycle.PriceResult
	if err := cycle.PriceAndExport.Execute(long, cycle.PriceInput{CustomerID: in.CustomerID, Period: in.Period}).Get(ctx, &priced); err != nil {
		return fail(err)
	}
	status.Stage = cycle.StatusDone
	res := &CloseBillingCycleResult{
		CustomerID: in.CustomerID, Period: in.Period,
		PricebookVersion: frozen.PricebookVersion, Snapshots: frozen.Snapshots, ClosedAt: frozen.ClosedAt, AlreadyClosed: frozen.AlreadyClosed,
		Bill: priced.Bill, Rows: priced.Rows, ResaleSnapshotID: priced.ResaleSnapshotID, Exports: priced.Exports,
		ExportKeys: []string{}, Invoices: priced.Invoices, Replayed: priced.Replayed,
	}
	for _, e := range priced.Exports {
		res.ExportKeys = append(res.ExportKeys, e.URL)
	}
	return res, nil
}

// ExportResellerPeriod writes the reseller's own export of a period:
// every closed customer cycle at cost and at resale, and the unassigned
// usage of each payer, with a summary reconciling every payer's total
// exactly (see cycle.PayerReconciliation).
func ExportResellerPeriod(ctx workflow.Context, in ExportResellerPeriodInput) (*cycle.ResellerExportResult, error) {
	if in.Period.IsZero() || in.URL == "" {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("period %q and URL %q: want YYYY-MM and a destination", in.Period, in.URL), cycle.ErrTypeInvalidInput, nil)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 12 * time.Hour,
		HeartbeatTimeout:    5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})
	var res cycle.ResellerExportResult
	if err := cycle.ResellerExport.Execute(ctx, in).Get(ctx, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// StartCycleClose starts CloseBillingCycle, or joins the run already in
// progress for the same customer and period. A closed cycle may be closed
// again: the new run keeps the pins and writes nothing new.
func StartCycleClose(ctx context.Context, c client.Client, in CloseBillingCycleInput) (client.WorkflowRun, error) {
	opts := client.StartWorkflowOptions{
		ID:                       CycleWorkflowID(in.CustomerID, in.Period),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    searchattr.Run{Kind: searchattr.KindCycle, Customer: in.CustomerID, Period: in.Period}.Attributes(),
		StaticSummary:            fmt.Sprintf("close the %s cycle of customer %s", in.Period, in.CustomerID),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, CloseBillingCycle, in)
	if err != nil {
		return nil, fmt.Errorf("start closing %s: %w", opts.ID, err)
	}
	return run, nil
}

// StartResellerExport starts ExportResellerPeriod, or joins the run in
// progress for the period.
func StartResellerExport(ctx context.Context, c client.Client, in ExportResellerPeriodInput) (client.WorkflowRun, error) {
	opts := client.StartWorkflowOptions{
		ID:                       ResellerExportWorkflowID(in.Period),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    searchattr.Run{Kind: searchattr.KindResellerExport, Period: in.Period}.Attributes(),
		StaticSummary:            fmt.Sprintf("reseller export of %s", in.Period),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, ExportResellerPeriod, in)
	if err != nil {
		return nil, fmt.Errorf("start reseller export %s: %w", opts.ID, err)
	}
	return run, nil
}
