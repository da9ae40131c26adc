package workflows

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/searchattr"
)

// Start options of the workflows the gateway starts itself, beside their
// contracts, so the ID scheme, task queue, policies, search attributes
// and summaries are decided here and not by each caller.

// ingestionRun is an ingestion's search attributes and summary, the same
// whoever starts it (a client, a crawl, an onboarding).
func ingestionRun(in IngestBillingPeriodInput) (temporal.SearchAttributes, string) {
	attrs := searchattr.Run{Kind: searchattr.KindIngestion, Payer: in.PayerAccountID, Customer: in.CustomerID, Period: in.Period}.Attributes()
	of := "payer " + in.PayerAccountID
	if in.PayerAccountID == "" {
		of = in.Source
	}
	return attrs, fmt.Sprintf("ingest %s for %s", in.Period, of)
}

// crawlRun is a crawl's search attributes and summary.
func crawlRun(payerAccountID, customerID string) (temporal.SearchAttributes, string) {
	return searchattr.Run{Kind: searchattr.KindCrawl, Payer: payerAccountID, Customer: customerID}.Attributes(), "crawl payer " + payerAccountID
}

// OnboardStartOptions starts a payer's onboarding: a running onboarding
// (or active payer) is a conflict; a rejected or failed one may be
// registered again.
func OnboardStartOptions(payerAccountID, customerID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       OnboardingWorkflowID(payerAccountID),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    searchattr.Run{Kind: searchattr.KindOnboarding, Payer: payerAccountID, Customer: customerID}.Attributes(),
		StaticSummary:            fmt.Sprintf("onboard payer %s for customer %s", payerAccountID, customerID),
	}
}

// BackfillStartOptions starts a backfill of from..to, or joins the one
// already running for the same range.
func BackfillStartOptions(payerAccountID, customerID, from, to string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       BackfillWorkflowID(payerAccountID, from, to),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    searchattr.Run{Kind: searchattr.KindBackfill, Payer: payerAccountID, Customer: customerID}.Attributes(),
		StaticSummary:            fmt.Sprintf("backfill %s..%s of payer %s", from, to, payerAccountID),
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
		TypedSearchAttributes:    searchattr.Run{Kind: searchattr.KindCustomer, Customer: customerID}.Attributes(),
		StaticSummary:            fmt.Sprintf("customer %s: %s", customerID, kind),
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
