package tests

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"

	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/workflows"
)

// recordHistoriesEnv turns TestRecordHistories on. Recording is done on
// purpose only: see workflows/testdata/histories/README.md.
const recordHistoriesEnv = "COSTLAKE_RECORD_HISTORIES"

// historiesDir is where the replay test of package workflows reads them.
const historiesDir = "../workflows/testdata/histories"

// TestRecordHistories runs OnboardPayer, IngestBillingPeriod, CrawlPayer
// and CloseBillingCycle on the real stack and writes their histories as
// the replay test's data. The run goes through every version gate: the
// onboarding's setup check (started), the stack poll's timer, the stack
// found, the checks, the approval signal, the first ingestion (a child,
// with the closed-cycles adjustment step and the business clock), the
// crawl schedule, then a crawl with the export's health and a child
// ingestion, a cycle close, and the offboarding signal that ends the
// onboarding.
//
//	COSTLAKE_RECORD_HISTORIES=1 go test ./tests -run TestRecordHistories -count=1
func TestRecordHistories(t *testing.T) {
	if os.Getenv(recordHistoriesEnv) == "" {
		t.Skip("records the replay test's histories; set " + recordHistoriesEnv + "=1 to re-record them on purpose")
	}
	e := newOnboardEnv(t, fastTiming)
	const payerID = "121212121212"
	period, _ := e.delivery("replay-cur", payerID)

	// Register before the stack exists, so the wait polls on a timer.
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "replay-cur"), nil))
	require.Eventually(t, func() bool { _, p := e.state(e.operator, payerID); return p.Stack.Polls >= 2 }, 30*time.Second, 50*time.Millisecond)
	e.completeStack(payerID)
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p := e.waitActive(payerID)
	e.waitWorkflow(p.FirstIngestion.WorkflowID, nil)
	require.Eventually(t, func() bool { _, p = e.state(e.operator, payerID); return p.Schedule != nil }, 30*time.Second, 100*time.Millisecond)

	// A crawl that finds this month's new delivery and ingests it.
	current := clock.Period(e.today, 0)
	e.generate("replay-cur", payerID, current, 5)
	res := e.crawlNow(payerID)
	require.Equal(t, workflows.ActionIngested, outcome(t, res, current).Action)
	crawlID := latestCrawl(t, e, payerID)

	// Close the customer's cycle of last month: one account, a pricebook.
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["`+p.Accounts[0]+`"]}]}`, nil))
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"5"}`, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := workflows.StartCycleClose(ctx, e.client, workflows.CloseBillingCycleInput{CustomerID: "acme", Period: billingPeriod(period)})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))

	// Offboarding ends the onboarding's record.
	require.Equal(t, http.StatusAccepted, e.operator.do("DELETE", "/v1/payers/"+payerID, `{"reason":"replay recording"}`, nil))
	onboardID := workflows.OnboardingWorkflowID(payerID)
	e.waitWorkflow(onboardID, nil)

	for file, id := range map[string]string{
		"onboard_payer.json":         onboardID,
		"ingest_billing_period.json": p.FirstIngestion.WorkflowID,
		"crawl_payer.json":           crawlID,
		"close_billing_cycle.json":   workflows.CycleWorkflowID("acme", billingPeriod(period)),
	} {
		writeHistory(t, e, id, filepath.Join(historiesDir, file))
	}
}

// latestCrawl is the workflow ID of the payer's newest finished crawl.
func latestCrawl(t *testing.T, e *onboardEnv, payerID string) string {
	t.Helper()
	for _, r := range e.runs(payerID) { // newest first
		if r.Status == "completed" {
			return r.WorkflowID
		}
	}
	t.Fatalf("no completed crawl of %s", payerID)
	return ""
}

// writeHistory writes a closed workflow's whole history as the JSON the
// SDK's replayer reads.
func writeHistory(t *testing.T, e *onboardEnv, workflowID, path string) {
	t.Helper()
	it := e.client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	last := h.Events[len(h.Events)-1].GetEventType()
	require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, last, "%s is not completed", workflowID)
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("%s: %d events of %s", path, len(h.Events), workflowID)
}

// TestRecordChangeHistories records the registration change's paths
// beside the histories above, which stay as they are (they guard runs
// without a change): an onboarding whose registration changes (the
// update applied, the crawl schedule updated) and a crawl during an
// export cut-over (each period discovered in its own export, a child
// ingestion from the new one).
//
//	COSTLAKE_RECORD_HISTORIES=1 go test ./tests -run TestRecordChangeHistories -count=1
func TestRecordChangeHistories(t *testing.T) {
	if os.Getenv(recordHistoriesEnv) == "" {
		t.Skip("records the replay test's histories; set " + recordHistoriesEnv + "=1 to re-record them on purpose")
	}
	e := newOnboardEnv(t, fastTiming)
	const payerID = "131313131313"
	const bucket = "replay-change"
	e.activate("acme", payerID, bucket)
	current := clock.Period(e.today, 0)
	e.cur2Delivery(bucket, payerID, "acme-cur2", current, "exec-replay", 5)
	require.Equal(t, http.StatusOK, e.operator.do("PATCH", "/v1/payers/"+payerID,
		`{"export":{"type":"cur2","bucket":"`+bucket+`","prefix":"cur","name":"acme-cur2"},"cutover_from":"`+current+`","schedule":{"interval":"6h"}}`, nil))
	res := e.crawlNow(payerID)
	require.Equal(t, workflows.ActionIngested, outcome(t, res, current).Action)
	crawlID := latestCrawl(t, e, payerID)

	require.Equal(t, http.StatusAccepted, e.operator.do("DELETE", "/v1/payers/"+payerID, `{"reason":"replay recording"}`, nil))
	onboardID := workflows.OnboardingWorkflowID(payerID)
	e.waitWorkflow(onboardID, nil)
	for file, id := range map[string]string{"onboard_payer_change.json": onboardID, "crawl_payer_cutover.json": crawlID} {
		writeHistory(t, e, id, filepath.Join(historiesDir, file))
	}
}

// TestRecordStatusHistory records an onboarding that keeps its status in
// the catalog (the status-record gate), beside the histories above, which
// stay as they are (they guard runs from before it): registered before
// the stack exists, the stack found, the checks passed, approval, the
// crawl schedule, offboarding; each status entered recorded by an
// activity.
//
//	COSTLAKE_RECORD_HISTORIES=1 go test ./tests -run TestRecordStatusHistory -count=1
func TestRecordStatusHistory(t *testing.T) {
	if os.Getenv(recordHistoriesEnv) == "" {
		t.Skip("records the replay test's histories; set " + recordHistoriesEnv + "=1 to re-record them on purpose")
	}
	e := newOnboardEnv(t, fastTiming)
	const payerID = "131313131313"
	e.delivery("status-cur", payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "status-cur"), nil))
	require.Eventually(t, func() bool { _, p := e.state(e.operator, payerID); return p.Stack.Polls >= 2 }, 30*time.Second, 50*time.Millisecond)
	e.completeStack(payerID)
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p := e.waitActive(payerID)
	e.waitWorkflow(p.FirstIngestion.WorkflowID, nil)
	require.Eventually(t, func() bool {
		_, p = e.state(e.operator, payerID)
		return p.Schedule != nil && p.StatusRecord != nil && p.StatusRecord.Recorded
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, http.StatusAccepted, e.operator.do("DELETE", "/v1/payers/"+payerID, `{"reason":"replay recording"}`, nil))
	onboardID := workflows.OnboardingWorkflowID(payerID)
	e.waitWorkflow(onboardID, nil)
	writeHistory(t, e, onboardID, filepath.Join(historiesDir, "onboard_payer_status.json"))
}
