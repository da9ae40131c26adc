package workflows

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// StartIngestion starts IngestBillingPeriod, or joins the run already in
// progress for the same payer (or source) and period, so a double click
// never ingests twice at once. A finished period can be ingested again;
// the same assembly then changes nothing.
func StartIngestion(ctx context.Context, c client.Client, in IngestBillingPeriodInput) (client.WorkflowRun, error) {
	attrs, summary := ingestionRun(in)
	opts := client.StartWorkflowOptions{
		ID:                       IngestWorkflowID(in.PayerAccountID, in.Source, in.Period),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    attrs,
		StaticSummary:            summary,
	}
	run, err := c.ExecuteWorkflow(ctx, opts, IngestBillingPeriod, in)
	if err != nil {
		return nil, fmt.Errorf("start ingestion %s: %w", opts.ID, err)
	}
	return run, nil
}
