package workflows

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/customerops"
)

// CustomerWorkflowID is the business key of a change to a customer: one
// change at a time, so two operators never interleave.
func CustomerWorkflowID(customer string) string { return "customer/" + customer }

// CustomerRequest applies one change to a customer's records (or reads
// them) as a durable, visible step: the request's one typed operation,
// answered in its field of customerops.Answer.
func CustomerRequest(ctx workflow.Context, r customerops.Request) (customerops.Answer, error) {
	var out customerops.Answer
	err := customerops.Apply.Execute(customerActivity(ctx), r).Get(ctx, &out)
	return out, err
}

// ManageCustomer is the previous release's customer workflow, kept for a
// gateway of that release and its runs in flight during a deploy: the same
// step under the old names and shapes (a Kind with a JSON body, a raw JSON
// answer).
func ManageCustomer(ctx workflow.Context, r customerops.LegacyRequest) (json.RawMessage, error) {
	var out json.RawMessage
	err := customerops.LegacyApply.Execute(customerActivity(ctx), r).Get(ctx, &out)
	return out, err
}

func customerActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
}
