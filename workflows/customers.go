package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/customerops"
)

// CustomerWorkflowID is the business key of a change to a customer: one
// change at a time, so two operators never interleave.
func CustomerWorkflowID(customer string) string { return "customer/" + customer }

// ManageCustomer applies one change to a customer's records (or reads
// them) as a durable, visible step.
func ManageCustomer(ctx workflow.Context, r customerops.Request) (customerops.Answer, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var out customerops.Answer
	err := customerops.Apply.Execute(ctx, r).Get(ctx, &out)
	return out, err
}
