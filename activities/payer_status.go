package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/reseller"
)

// ErrTypeNoRecords is the failure of an activity that needs the reseller's
// records on a worker that has none.
const ErrTypeNoRecords = "NoResellerRecords"

// RecordPayerStatus keeps a payer's onboarding status in the catalog, the
// record the payer list reads; an older status than the one kept changes
// nothing.
func (a *Onboard) RecordPayerStatus(ctx context.Context, in onboard.StatusRecord) error {
	if a.Reseller == nil {
		return temporal.NewNonRetryableApplicationError("the worker has no reseller records to keep the payer's status in", ErrTypeNoRecords, nil)
	}
	st := reseller.PayerStatus{PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID, Name: in.Name, Status: in.Status, Since: in.Since, RunID: in.RunID}
	if c := in.Checks; c != nil {
		st.Checks = &reseller.CheckCounts{Passed: c.Passed, Failed: c.Failed, Pending: c.Pending}
	}
	return a.Reseller.RecordPayerStatus(ctx, st)
}
