package tests

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/deploy/cloudformation"
	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/workflows"
)

// activate onboards a payer whose bucket holds last month's delivery and
// waits until it is active and its first ingestion is done.
func (e *onboardEnv) activate(customer, payerID, bucket string) (gateway.PayerResponse, *synth.Result) {
	e.t.Helper()
	_, gen := e.delivery(bucket, payerID)
	e.completeStack(payerID)
	require.Equal(e.t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration(customer, payerID, bucket), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(e.t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p := e.waitActive(payerID)
	e.waitWorkflow(p.FirstIngestion.WorkflowID, nil)
	require.Eventually(e.t, func() bool { _, p = e.state(e.operator, payerID); return p.Schedule != nil }, 30*time.Second, 100*time.Millisecond)
	return p, gen
}

// waitWorkflow waits for a workflow's latest run and decodes its result.
func (e *onboardEnv) waitWorkflow(id string, out any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(e.t, e.client.GetWorkflow(ctx, id, "").Get(ctx, out), "workflow %s", id)
}

// generate writes a delivery of payer's period into bucket.
func (e *onboardEnv) generate(bucket, payerID, period string, seed int64) *synth.Result {
	e.t.Helper()
	store, err := blob.NewS3(context.Background(), bucket, e.minio.S3Options())
	require.NoError(e.t, err)
	gen, err := synth.Generate(context.Background(), store, synth.Options{Prefix: "cur", Report: "billing", Bucket: bucket, Period: period, Rows: 800, Files: 1, Seed: seed, Payer: payerID})
	require.NoError(e.t, err)
	return gen
}

// crawlNow triggers the payer's schedule and returns the new crawl's result.
func (e *onboardEnv) crawlNow(payerID string) workflows.CrawlPayerResult {
	e.t.Helper()
	before := e.runs(payerID)
	require.Equal(e.t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/crawl", "", nil))
	var run gateway.RunView
	require.Eventually(e.t, func() bool {
		for _, r := range e.runs(payerID) {
			if !slices.ContainsFunc(before, func(b gateway.RunView) bool { return b.RunID == r.RunID }) && r.Status != "running" {
				run = r
				return true
			}
		}
		return false
	}, 2*time.Minute, 200*time.Millisecond)
	require.Equal(e.t, "completed", run.Status, run.Failure)
	return *run.Result
}

func (e *onboardEnv) runs(payerID string) []gateway.RunView {
	e.t.Helper()
	var body struct {
		Runs []gateway.RunView `json:"runs"`
	}
	require.Equal(e.t, http.StatusOK, e.viewer.do("GET", "/v1/payers/"+payerID+"/runs", "", &body))
	return body.Runs
}

func outcome(t *testing.T, r workflows.CrawlPayerResult, period string) workflows.PeriodOutcome {
	t.Helper()
	for _, o := range r.Periods {
		if o.Period.String() == period {
			return o
		}
	}
	t.Fatalf("crawl did not look at %s: %+v", period, r.Periods)
	return workflows.PeriodOutcome{}
}

// TestCrawlIngestsWhatChanged: an active payer's crawl, run through the
// gateway, ingests a new delivery, then a restated one, and leaves an
// unchanged one alone; it also reports the organization's new, closed and
// departed accounts.
func TestCrawlIngestsWhatChanged(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "710987654321"
	p, gen := e.activate("acme", payerID, "acme-cur")
	current, previous := clock.Period(e.today, 0), clock.Period(e.today, 1)

	// The delivery onboarding ingested is unchanged; the current month has none.
	r := e.crawlNow(payerID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, previous).Action)
	require.Equal(t, workflows.ActionNoDelivery, outcome(t, r, current).Action)
	require.NotNil(t, r.Accounts)
	require.Equal(t, len(gen.Accounts), r.Accounts.Accounts)
	require.True(t, r.Accounts.First)
	snapshots := e.accountsSnapshots()

	// A new delivery for the current month, and a change in the organization.
	cur := e.generate("acme-cur", payerID, current, 21)
	var accts []awsemu.Account
	closed := ""
	for _, id := range p.Accounts {
		a := awsemu.Account{Id: id}
		if closed == "" && id != payerID {
			closed, a.State, a.Status = id, "SUSPENDED", "SUSPENDED"
		}
		accts = append(accts, a)
	}
	e.emu.SetOrganization(payerID, append(accts, awsemu.Account{Id: "999988887777"}))
	r = e.crawlNow(payerID)
	o := outcome(t, r, current)
	require.Equal(t, workflows.ActionIngested, o.Action, o.Failure)
	require.Equal(t, int64(cur.Rows), o.Rows)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, previous).Action)
	require.Equal(t, []string{"999988887777"}, r.Accounts.New)
	require.Equal(t, []string{closed}, r.Accounts.Closed)
	require.False(t, r.Accounts.Unchanged)
	require.Equal(t, snapshots+1, e.accountsSnapshots(), "a changed organization is one snapshot")

	// AWS restates last month: a new assembly replaces the period.
	restated := e.generate("acme-cur", payerID, previous, 33)
	r = e.crawlNow(payerID)
	o = outcome(t, r, previous)
	require.Equal(t, workflows.ActionIngested, o.Action, o.Failure)
	require.Equal(t, restated.AssemblyID, o.AssemblyID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, current).Action)
	require.True(t, r.Accounts.Unchanged)
	require.Equal(t, snapshots+1, e.accountsSnapshots(), "an unchanged organization writes no snapshot of billing.accounts")

	// Nothing new: nothing ingested.
	r = e.crawlNow(payerID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, previous).Action)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, current).Action)

	// Every role session (the onboarding's, its first ingestion's, the
	// crawls' and their ingestions') names the payer and the customer, so
	// the customer's CloudTrail shows whom each read was for.
	purposes := map[string]bool{}
	for _, s := range e.emu.Sessions() {
		require.Equal(t, "costlake-"+payerID+"-acme", s.SourceIdentity, s)
		purpose, ok := strings.CutSuffix(strings.TrimPrefix(s.RoleSessionName, "costlake-"), "-"+payerID+"-acme")
		require.True(t, ok, s)
		purposes[purpose] = true
	}
	require.Equal(t, map[string]bool{"onboarding": true, "crawl": true, "ingest": true}, purposes)
}

// accountsSnapshots counts the snapshots of billing.accounts.
func (e *onboardEnv) accountsSnapshots() int {
	e.t.Helper()
	tbl, err := e.lake.AccountsIcebergTable(context.Background())
	require.NoError(e.t, err)
	return len(tbl.Metadata().Snapshots())
}

// TestBackfill: a backfill of three periods ingests three periods; the same
// backfill again changes nothing.
func TestBackfill(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "810987654321"
	e.activate("acme", payerID, "acme-cur")
	var periods []string
	for i := 4; i >= 2; i-- {
		p := clock.Period(e.today, i)
		periods = append(periods, p)
		e.generate("acme-cur", payerID, p, int64(i))
	}
	body := `{"from":"` + periods[0] + `","to":"` + periods[2] + `"}`
	for round, want := range []string{workflows.ActionIngested, workflows.ActionUnchanged} {
		var started map[string]any
		require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/backfill", body, &started))
		var r workflows.CrawlPayerResult
		e.waitWorkflow(started["workflow_id"].(string), &r)
		require.Len(t, r.Periods, 3, "round %d", round)
		for _, o := range r.Periods {
			require.Equal(t, want, o.Action, "round %d, period %s: %s", round, o.Period, o.Failure)
		}
	}

	var bad apiErrorBody
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers/"+payerID+"/backfill", `{"from":"2026-05","to":"2026-01"}`, &bad))
	require.Contains(t, bad.Error.Fields, "from")
	require.Equal(t, http.StatusForbidden, e.viewer.do("POST", "/v1/payers/"+payerID+"/backfill", body, &bad))
}

// TestCrawlSchedule: approval creates a daily schedule (00:00 UTC, jitter,
// overlap skip, catch-up window); a crawl triggered while one runs is
// skipped; an interval schedule fires on its own; pause stops it; and
// offboarding deletes it.
func TestCrawlSchedule(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "910987654321"
	p, _ := e.activate("acme", payerID, "acme-cur")
	ctx := context.Background()
	h := e.client.ScheduleClient().GetHandle(ctx, workflows.CrawlScheduleID(payerID))
	d, err := h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, d.Schedule.Spec.Jitter)
	require.Equal(t, "UTC", d.Schedule.Spec.TimeZoneName)
	require.NotEmpty(t, d.Info.NextActionTimes)
	for _, next := range d.Info.NextActionTimes {
		next = next.UTC()
		require.True(t, next.Hour() == 0 && next.Minute() < 30, "daily at 00:00 UTC plus under 30 minutes of jitter: %s", next)
	}
	require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap)
	require.Equal(t, 24*time.Hour, d.Schedule.Policy.CatchupWindow)
	require.False(t, p.Schedule.Paused)
	require.NotEmpty(t, p.Schedule.NextRuns)

	// Two triggers at once: the second meets the first still running. The
	// organization throttles the first crawl's account listing (the SDK
	// retries it), so "still running" does not depend on the machine's speed.
	e.emu.FailNext("ListAccounts", "ThrottlingException", "Rate exceeded", 2)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	// A deadline, not a timing: the whole suite shares two cores, and the
	// throttled first crawl's retries take their time.
	ok := assert.Eventually(t, func() bool {
		d, err = h.Describe(ctx)
		return err == nil && d.Info.NumActionsSkippedOverlap >= 1 && len(d.Info.RunningWorkflows) == 0
	}, 3*time.Minute, 200*time.Millisecond)
	if !ok {
		t.Fatalf("schedule after two triggers: err=%v actions=%d skipped=%d running=%v", err, d.Info.NumActions, d.Info.NumActionsSkippedOverlap, d.Info.RunningWorkflows)
	}
	require.Equal(t, 1, d.Info.NumActions)

	// An interval schedule fires by itself; paused, it stops.
	require.NoError(t, h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := u.Description.Schedule
		s.Spec = &client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 2 * time.Second}}}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}}))
	require.Eventually(t, func() bool { d, err = h.Describe(ctx); return err == nil && d.Info.NumActions >= 3 }, time.Minute, 200*time.Millisecond)
	require.Equal(t, http.StatusOK, e.operator.do("POST", "/v1/payers/"+payerID+"/pause", "", nil))
	_, p = e.state(e.viewer, payerID)
	require.True(t, p.Schedule.Paused)
	require.Contains(t, p.Schedule.Note, "paused by test-operator")
	time.Sleep(time.Second) // let a crawl started just before the pause show up
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	paused := d.Info.NumActions
	time.Sleep(5 * time.Second)
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, paused, d.Info.NumActions, "a paused schedule starts nothing")
	require.Equal(t, http.StatusOK, e.operator.do("POST", "/v1/payers/"+payerID+"/resume", "", nil))

	require.Equal(t, http.StatusAccepted, e.operator.do("DELETE", "/v1/payers/"+payerID, `{"reason":"contract ended"}`, nil))
	p = e.waitStatus(payerID, workflows.StatusOffboarded)
	require.Nil(t, p.Schedule)
	require.Eventually(t, func() bool { _, err = h.Describe(ctx); return err != nil }, 30*time.Second, 100*time.Millisecond, "the schedule is deleted")
}

// TestCrawlWithoutDelivery: no delivery within a day of activation is a
// status; after that the crawl fails saying where it looked.
func TestCrawlWithoutDelivery(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "110987654321"
	e.minio.CreateBucket(t, "empty-cur")
	e.emu.SetOrganization(payerID, []awsemu.Account{{Id: payerID}})
	in := workflows.CrawlPayerInput{
		PayerAccountID: payerID, Source: "s3://empty-cur/cur/billing", ActiveSince: time.Now().Add(-time.Hour),
	}
	in.Access.Mode, in.Access.ExternalID = "assume_role", "costlake-test-1234"
	in.Access.RoleARN = e.deployRole(payerID, cloudformation.Params{ExternalID: in.Access.ExternalID, ExportBucket: "empty-cur", ExportPrefix: "cur",
		ExportType: cloudformation.ExportLegacyCUR, ExportName: "billing", RoleName: "costlake-billing-read"})
	ctx := context.Background()
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.TaskQueue}, workflows.CrawlPayer, in)
	require.NoError(t, err)
	var r workflows.CrawlPayerResult
	require.NoError(t, run.Get(ctx, &r))
	require.Equal(t, workflows.CrawlWaitingForFirstDelivery, r.Status)

	in.ActiveSince = time.Now().Add(-48 * time.Hour)
	run, err = e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.TaskQueue}, workflows.CrawlPayer, in)
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.ErrorContains(t, err, "export not found under s3://empty-cur/cur/billing")
}
