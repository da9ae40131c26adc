package workflows

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// Start options of the workflows the gateway starts itself, beside their
// contracts, so the ID scheme, task queue and policies are decided here
// and not by each caller.

// OnboardStartOptions starts a payer's onboarding: a running onboarding
// (or active payer) is a conflict; a rejected or failed one may be
// registered again.
func OnboardStartOptions(payerAccountID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       OnboardingWorkflowID(payerAccountID),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}

// BackfillStartOptions starts a backfill of from..to, or joins the one
// already running for the same range.
func BackfillStartOptions(payerAccountID, from, to string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       BackfillWorkflowID(payerAccountID, from, to),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}

// manageCustomerTimeout bounds one CustomerRequest run.
const manageCustomerTimeout = 5 * time.Minute

// ManageCustomerStartOptions starts a CustomerRequest run of the given
// operation. A change takes the customer's workflow ID, so a second change
// while one runs fails to start (WorkflowExecutionAlreadyStarted); a read
// gets an ID of its own.
func ManageCustomerStartOptions(customerID, kind string, change bool) client.StartWorkflowOptions {
	opts := client.StartWorkflowOptions{
		ID:                       CustomerWorkflowID(customerID) + "/" + kind + "/" + randomSuffix(),
		TaskQueue:                TaskQueue,
		WorkflowExecutionTimeout: manageCustomerTimeout,
	}
	if change {
		opts.ID = CustomerWorkflowID(customerID)
		opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL
		opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	}
	return opts
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
