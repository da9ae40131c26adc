package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/onboard"
)

// recordStatus records the status the onboarding is in, once per status,
// in the catalog (RecordPayerStatus): the payer list (GET /v1/payers)
// reads those records, one query for every payer, instead of asking each
// onboarding, and they outlast history's retention. The main loop calls
// it at the top of every turn, where each new status first shows. A
// record that cannot be written is logged and tried again at the next
// turn, never the onboarding's failure. Runs from before the gate record
// nothing (the list shows their payers as "unknown" until they continue
// as new).
func (o *onboarding) recordStatus(ctx workflow.Context) {
	if o.state.Status == "" {
		return
	}
	m := o.state.StatusRecord
	if m != nil && m.Status == o.state.Status && m.Recorded {
		return
	}
	if workflow.GetVersion(ctx, statusRecordChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	if m == nil || m.Status != o.state.Status {
		m = &StatusMark{Status: o.state.Status, Since: workflow.Now(ctx)}
		o.state.StatusRecord = m
	}
	reg := o.state.Registration
	info := workflow.GetInfo(ctx)
	rec := onboard.StatusRecord{PayerAccountID: reg.PayerAccountID, CustomerID: reg.CustomerID, Name: reg.Name, Status: m.Status, Since: m.Since,
		Checks: onboard.CountChecks(o.state.Checks), RunID: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
	})
	if err := onboard.RecordStatus.Execute(actx, rec).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not record the payer's status", "payer", reg.PayerAccountID, "status", m.Status, "error", err)
		return
	}
	m.Recorded = true
}
