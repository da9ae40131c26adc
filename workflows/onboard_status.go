package workflows

import (
	"strconv"
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
// nothing for the statuses their history entered; they record from
// their next status on (legacyStatusRecordChange).
func (o *onboarding) recordStatus(ctx workflow.Context) {
	if o.state.Status == "" {
		return
	}
	m := o.state.StatusRecord
	if m != nil && m.Status == o.state.Status && m.Recorded {
		return
	}
	if workflow.GetVersion(ctx, statusRecordChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion &&
		workflow.GetVersion(ctx, legacyStatusRecordChange(len(o.state.Events)), workflow.DefaultVersion, 1) == workflow.DefaultVersion {
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

// legacyStatusRecordChange is the gate a run from before statusRecordChange
// passes at a status it enters: one change ID per turn of its timeline
// (its events so far), so the statuses its history already entered replay
// without a record (no marker: the default version), while a status it
// enters on today's code records the marker and the record. The main gate
// alone could not: its first call, made while replaying the old history,
// fixes the default version for the whole run, and a quiet onboarding
// (an active payer) may not continue as new for months.
func legacyStatusRecordChange(turn int) string {
	return statusRecordChange + "/" + strconv.Itoa(turn)
}
