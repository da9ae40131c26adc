package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// These tests run OnboardPayer with its default timing (poll every
// minute, give up after 7 days, remind every 24 hours): the test
// environment skips time, so a week of polling takes a moment. The
// activities (onboarding's and the crawl schedule's) and the child
// ingestion are stubs registered under their real names;
// tests/onboard_test.go runs the real ones.

// t0 is when every onboarding in these tests starts, so virtual times are
// exact: the first poll is at t0, the next ones a minute apart.
var t0 = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)

const (
	testPayer     = "111122223333"
	defaultRole   = "arn:aws:iam::111122223333:role/costlake-billing-read"
	stackRole     = "arn:aws:iam::111122223333:role/costlake-billing-read-Acme"
	quickCreate   = "https://console.aws.amazon.com/cloudformation/home#/stacks/quickcreate?stackName=costlake-billing-access"
	latestPeriod  = "2026-10"
	connectedAcct = "444455556666"
)

func testRegistration() payer.Registration {
	return payer.Registration{
		CustomerID:     "acme",
		PayerAccountID: testPayer,
		Name:           "Acme",
		Access:         payer.Access{Mode: payer.AssumeRole},
		Export:         payer.Export{Type: payer.LegacyCUR, Bucket: "acme-billing", Prefix: "cur", Name: "hourly"},
		LinkedAccounts: "connected", ConnectedAccounts: []string{connectedAcct},
	}
}

// noStack is what DescribeCustomerStack reports before the stack creates
// the role it reads the stack with.
var noStack = onboard.DescribeCustomerStackResult{Unreachable: "AccessDenied: cannot assume " + defaultRole + " yet"}

func completeStack(status string, updated time.Time) onboard.DescribeCustomerStackResult {
	return onboard.DescribeCustomerStackResult{Found: true, Status: status, UpdatedAt: updated, Outputs: map[string]string{"RoleArn": stackRole}}
}

func checksResult(failed string) onboard.ValidateAccessResult {
	res := onboard.ValidateAccessResult{Accounts: []string{testPayer, connectedAcct}, LatestPeriod: period.MustParse(latestPeriod), Source: "s3://acme-billing/cur/hourly"}
	for _, name := range []string{onboard.CheckCredentials, onboard.CheckOrganization, onboard.CheckBucket, onboard.CheckExport, onboard.CheckDelivery} {
		c := onboard.Check{Name: name, Result: onboard.Passed, Message: "ok"}
		if name == failed {
			c.Result, c.Message = onboard.Failed, "no report named hourly"
		}
		res.Checks = append(res.Checks, c)
	}
	return res
}

var (
	allPassed    = checksResult("")
	exportFailed = checksResult(onboard.CheckExport)
)

type startedChild struct {
	ID    string
	Input IngestBillingPeriodInput
}

// onboardFakes stand in for the onboarding activities and the child
// ingestion, and record what they were asked. DescribeCustomerStack and
// ValidateAccess answer from scripts: each call takes the next answer,
// and the last one repeats.
type onboardFakes struct {
	mu        sync.Mutex
	stacks    []onboard.DescribeCustomerStackResult
	checks    []onboard.ValidateAccessResult
	published []onboard.PublishStackTemplateInput
	described []onboard.DescribeCustomerStackInput
	reminded  []onboard.RemindCustomerInput
	validated []onboard.ValidateAccessInput
	children  []startedChild
	schedules []crawl.EnsureScheduleInput
	deleted   []crawl.DeleteScheduleInput
	// setupProblems and publishErr make the worker's setup check or the
	// template's publication fail.
	setupProblems []onboard.SetupProblem
	publishErr    error
	statuses      []onboard.StatusRecord
}

func (f *onboardFakes) recordStatus(_ context.Context, in onboard.StatusRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, in)
	return nil
}

func (f *onboardFakes) checkSetup(_ context.Context, _ onboard.CheckSetupInput) (onboard.CheckSetupResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return onboard.CheckSetupResult{Problems: f.setupProblems}, nil
}

// setStack replaces the stack script, as a customer deploying would.
func (f *onboardFakes) setStack(script ...onboard.DescribeCustomerStackResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stacks = script
}

func scriptNext[T any](script *[]T) T {
	v := (*script)[0]
	if len(*script) > 1 {
		*script = (*script)[1:]
	}
	return v
}

func (f *onboardFakes) publish(_ context.Context, in onboard.PublishStackTemplateInput) (onboard.PublishStackTemplateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, in)
	if f.publishErr != nil {
		return onboard.PublishStackTemplateResult{}, f.publishErr
	}
	return onboard.PublishStackTemplateResult{
		TemplateURL:    "https://costlake-templates.s3.amazonaws.com/stacks/acme.yaml",
		QuickCreateURL: quickCreate,
		Parameters:     map[string]string{"ExternalId": in.Registration.Access.ExternalID},
	}, nil
}

func (f *onboardFakes) describe(_ context.Context, in onboard.DescribeCustomerStackInput) (onboard.DescribeCustomerStackResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.described = append(f.described, in)
	return scriptNext(&f.stacks), nil
}

func (f *onboardFakes) validate(_ context.Context, in onboard.ValidateAccessInput) (onboard.ValidateAccessResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.validated = append(f.validated, in)
	return scriptNext(&f.checks), nil
}

func (f *onboardFakes) remind(_ context.Context, in onboard.RemindCustomerInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reminded = append(f.reminded, in)
	return nil
}

func (f *onboardFakes) ensureSchedule(_ context.Context, in crawl.EnsureScheduleInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.schedules = append(f.schedules, in)
	return nil
}

func (f *onboardFakes) deleteSchedule(_ context.Context, in crawl.DeleteScheduleInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, in)
	return nil
}

// ingest is registered as "IngestBillingPeriod": it records how the
// onboarding started it and returns at once.
func (f *onboardFakes) ingest(ctx workflow.Context, in IngestBillingPeriodInput) (*IngestBillingPeriodResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.children = append(f.children, startedChild{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, Input: in})
	return &IngestBillingPeriodResult{PayerAccountID: in.PayerAccountID, Period: in.Period}, nil
}

func newOnboardTestEnv(f *onboardFakes) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	// A week of polls logs tens of thousands of debug lines; keep warnings.
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterWorkflow(OnboardPayer)
	registerClock(env, time.Time{})
	env.RegisterWorkflowWithOptions(f.ingest, workflow.RegisterOptions{Name: "IngestBillingPeriod"})
	env.RegisterActivityWithOptions(f.checkSetup, activityName(onboard.CheckSetupActivity))
	env.RegisterActivityWithOptions(f.publish, activityName(onboard.PublishStackTemplateActivity))
	env.RegisterActivityWithOptions(f.describe, activityName(onboard.DescribeCustomerStackActivity))
	env.RegisterActivityWithOptions(f.validate, activityName(onboard.ValidateAccessActivity))
	env.RegisterActivityWithOptions(f.remind, activityName(onboard.RemindCustomerActivity))
	env.RegisterActivityWithOptions(f.ensureSchedule, activityName(crawl.EnsureScheduleActivity))
	env.RegisterActivityWithOptions(f.deleteSchedule, activityName(crawl.DeleteScheduleActivity))
	env.RegisterActivityWithOptions(f.recordStatus, activityName(onboard.RecordStatusActivity))
	return env
}

// queryState asks a running onboarding for its state. It runs inside
// delayed callbacks, so it reports with t.Errorf and leaves the asserts
// to the test once the environment stops.
func queryState(t *testing.T, env *testsuite.TestWorkflowEnvironment) OnboardingState {
	var s OnboardingState
	v, err := env.QueryWorkflow(OnboardingStateQuery)
	if err == nil {
		err = v.Get(&s)
	}
	if err != nil {
		t.Errorf("query %s at %s: %v", OnboardingStateQuery, env.Now().Sub(t0), err)
	}
	return s
}

// stateAt returns the state the onboarding will have at t0+d, filled in
// when the environment gets there.
func stateAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, d time.Duration) *OnboardingState {
	s := new(OnboardingState)
	env.RegisterDelayedCallback(func() { *s = queryState(t, env) }, d)
	return s
}

func signalAt(env *testsuite.TestWorkflowEnvironment, d time.Duration, signal string, decision Decision) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(signal, decision) }, d)
}

// cancelAt ends an onboarding that waits for the stack.
func cancelAt(env *testsuite.TestWorkflowEnvironment, d time.Duration) {
	env.RegisterDelayedCallback(env.CancelWorkflow, d)
}

func requireCanceled(t *testing.T, env *testsuite.TestWorkflowEnvironment) {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled)
}

// rejectAt ends an onboarding that waits for the operator before
// approval; cancelling does not end it there (see
// TestOnboardCancelWhileWaitingForOperator).
func rejectAt(env *testsuite.TestWorkflowEnvironment, d time.Duration) {
	signalAt(env, d, RejectSignal, Decision{By: "ops", Reason: "end of test"})
}

// requireRejected returns the final state of a rejected onboarding.
func requireRejected(t *testing.T, env *testsuite.TestWorkflowEnvironment, reason string) OnboardingState {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var final OnboardingState
	require.NoError(t, env.GetWorkflowResult(&final))
	require.Equal(t, StatusRejected, final.Status)
	require.Equal(t, reason, final.RejectReason)
	return final
}

func eventTexts(s OnboardingState) []string {
	out := make([]string, len(s.Events))
	for i, e := range s.Events {
		out[i] = e.What
	}
	return out
}

func TestOnboardStackNeverAppears(t *testing.T) {
	f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{noStack}}
	env := newOnboardTestEnv(f)
	// Callbacks sit between polls (every whole minute after t0).
	midway := stateAt(t, env, 3*24*time.Hour+30*time.Second)
	end := stateAt(t, env, 7*24*time.Hour+time.Hour)
	rejectAt(env, 7*24*time.Hour+2*time.Hour)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
	requireRejected(t, env, "end of test")

	require.Equal(t, StatusAwaitingStack, midway.Status)
	require.Equal(t, 3, midway.Stack.Reminders)

	require.Equal(t, StatusStackFailed, end.Status)
	require.Contains(t, end.Stack.Reason, "no complete stack "+DefaultStackName+" after 168h0m0s")
	require.Contains(t, end.Stack.Reason, "last seen: "+noStack.Unreachable)
	require.Equal(t, noStack.Unreachable, end.Stack.Waiting)
	// A poll at t0 and one every minute up to the deadline, included.
	require.Equal(t, 7*24*60+1, end.Stack.Polls)
	require.Len(t, f.described, end.Stack.Polls)
	last := end.Events[len(end.Events)-1]
	require.Equal(t, t0.Add(7*24*time.Hour), last.At)
	require.Contains(t, last.What, "timed out waiting for the stack")

	// Exactly 6 reminders. The first is due 24h after the wait starts; each
	// poll checks the deadline before the reminder, and the next reminder
	// is due 24h after the last one. Polls fall on whole minutes, so the
	// reminders go at 24h, 48h, ..., 144h, and the poll at 168h meets the
	// deadline first: it fails the wait instead of sending a 7th.
	require.Equal(t, 6, end.Stack.Reminders)
	require.Len(t, f.reminded, 6)
	for i, r := range f.reminded {
		n := i + 1
		require.Equal(t, n, r.Reminder)
		require.Equal(t, time.Duration(n)*24*time.Hour, r.Waiting)
		require.Equal(t, "acme", r.CustomerID)
		require.Equal(t, testPayer, r.PayerAccountID)
		require.Equal(t, DefaultStackName, r.StackName)
		require.Equal(t, quickCreate, r.QuickCreateURL)
		require.Contains(t, eventTexts(*end), fmt.Sprintf("reminder %d: the stack is not deployed yet", n))
	}
	require.Empty(t, f.validated, "nothing to validate without a stack")
}

func TestOnboardHappyPath(t *testing.T) {
	f := &onboardFakes{
		// The stack appears at the 4th poll, 3 minutes in.
		stacks: []onboard.DescribeCustomerStackResult{noStack, noStack, noStack, completeStack(onboard.StackCreateComplete, t0.Add(2*time.Minute+40*time.Second))},
		checks: []onboard.ValidateAccessResult{allPassed},
	}
	env := newOnboardTestEnv(f)
	var validating OnboardingState
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == onboard.ValidateAccessActivity {
			validating = queryState(t, env)
		}
	})
	awaiting := stateAt(t, env, 10*time.Minute+30*time.Second)
	signalAt(env, 11*time.Minute, ApproveSignal, Decision{By: "ops"})
	active := stateAt(t, env, 12*time.Minute)
	signalAt(env, 13*time.Minute, RejectSignal, Decision{By: "ops", Reason: "too late"})
	dayLater := stateAt(t, env, 24*time.Hour)
	signalAt(env, 25*time.Hour, OffboardSignal, Decision{By: "ops", Reason: "contract ended"})
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.Equal(t, StatusValidating, validating.Status)
	require.Equal(t, 4, validating.Stack.Polls)
	require.Equal(t, onboard.StackCreateComplete, validating.Stack.Status)

	require.Equal(t, StatusAwaitingApproval, awaiting.Status)
	require.Equal(t, 4, awaiting.Stack.Polls, "polling stops once the stack is complete")
	require.Equal(t, allPassed.Checks, awaiting.Checks)
	require.Equal(t, t0.Add(3*time.Minute), awaiting.ChecksAt)
	require.Equal(t, allPassed.Accounts, awaiting.Accounts)
	require.Equal(t, latestPeriod, awaiting.LatestPeriod.String())
	require.Zero(t, awaiting.Stack.Reminders)
	// The role the stack output replaces the default one, for the checks too.
	require.Equal(t, stackRole, awaiting.Registration.Access.RoleARN)
	require.Contains(t, eventTexts(*awaiting), "the stack created role "+stackRole)
	require.Len(t, f.validated, 1)
	require.Equal(t, stackRole, f.validated[0].Registration.Access.RoleARN)
	require.Equal(t, t0.Add(3*time.Minute), f.validated[0].AsOf)
	require.Equal(t, defaultRole, f.described[0].Access.RoleARN)

	require.Equal(t, StatusActive, active.Status)
	require.Equal(t, "ops", active.ApprovedBy)
	require.Equal(t, t0.Add(11*time.Minute), active.ActivatedAt)
	wantID := "ingest/" + testPayer + "/" + latestPeriod
	require.Equal(t, &FirstIngestion{WorkflowID: wantID, Period: period.MustParse(latestPeriod)}, active.FirstIngestion)
	require.Contains(t, eventTexts(*active), "active; ingesting "+latestPeriod+" in "+wantID)

	require.Len(t, f.children, 1)
	child := f.children[0]
	require.Equal(t, wantID, child.ID)
	require.Equal(t, "s3://acme-billing/cur/hourly", child.Input.Source)
	require.Equal(t, latestPeriod, child.Input.Period.String())
	require.Equal(t, testPayer, child.Input.PayerAccountID)
	require.NotNil(t, child.Input.Access)
	wantAccess := active.Registration.Access
	wantAccess.Region = active.Registration.Export.Region // reads go to the bucket's region
	require.Equal(t, wantAccess, *child.Input.Access)
	require.Equal(t, stackRole, child.Input.Access.RoleARN)
	require.NotEmpty(t, child.Input.Access.ExternalID)
	require.Equal(t, payer.AccountPolicy{ConnectedOnly: true, Connected: []string{connectedAcct}}, child.Input.Accounts)

	// The crawl schedule starts with the payer's crawl input.
	scheduleID := "crawl/" + testPayer
	require.Equal(t, scheduleID, active.CrawlSchedule)
	require.Len(t, f.schedules, 1)
	sched := f.schedules[0]
	require.Equal(t, scheduleID, sched.ScheduleID)
	require.Equal(t, "CrawlPayer", sched.Workflow)
	require.Equal(t, TaskQueue, sched.TaskQueue)
	var crawlIn CrawlPayerInput
	require.NoError(t, json.Unmarshal(sched.Args, &crawlIn))
	require.Equal(t, testPayer, crawlIn.PayerAccountID)
	require.Equal(t, child.Input.Source, crawlIn.Source)
	require.Equal(t, *child.Input.Access, crawlIn.Access)
	require.Equal(t, child.Input.Accounts, crawlIn.Accounts)
	require.True(t, crawlIn.ActiveSince.Equal(active.ActivatedAt))

	// The payer's record stays open, and quiet but for the operator's
	// signals: a reject after approval is ignored.
	require.Equal(t, StatusActive, dayLater.Status)
	require.Equal(t, "ignored reject from ops: status is active", dayLater.Events[len(dayLater.Events)-1].What)
	require.Len(t, dayLater.Events, len(active.Events)+1)
	require.Len(t, f.described, 4)

	// Offboarding deletes the schedule and ends the record.
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var final OnboardingState
	require.NoError(t, env.GetWorkflowResult(&final))
	require.Equal(t, StatusOffboarded, final.Status)
	require.Equal(t, []crawl.DeleteScheduleInput{{ScheduleID: scheduleID}}, f.deleted)
	require.Equal(t, "deleted crawl schedule "+scheduleID, final.Events[len(final.Events)-1].What)

	// Each status entered is recorded once, when it is entered, with the
	// checks once they ran; the record in the state says it is written.
	var recorded []string
	for _, r := range f.statuses {
		recorded = append(recorded, r.Status)
		require.Equal(t, testPayer, r.PayerAccountID)
		require.Equal(t, testRegistration().CustomerID, r.CustomerID)
	}
	require.Equal(t, []string{StatusAwaitingStack, StatusValidating, StatusAwaitingApproval, StatusActive, StatusOffboarded}, recorded)
	require.Nil(t, f.statuses[0].Checks)
	require.Equal(t, &onboard.CheckCounts{Passed: 5}, f.statuses[2].Checks)
	require.Equal(t, t0.Add(11*time.Minute), f.statuses[3].Since)
	require.Equal(t, &StatusMark{Status: StatusActive, Since: t0.Add(11 * time.Minute), Recorded: true}, active.StatusRecord)
}

func TestOnboardIgnoresSignalsInTheWrongStatus(t *testing.T) {
	f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{noStack}}
	env := newOnboardTestEnv(f)
	signalAt(env, 90*time.Second, ApproveSignal, Decision{By: "alice"})
	signalAt(env, 100*time.Second, RequestChangesSignal, Decision{By: "alice", Issues: []string{"too early"}})
	before := stateAt(t, env, 5*time.Minute+50*time.Second)
	signalAt(env, 6*time.Minute+50*time.Second, RejectSignal, Decision{By: "bob", Reason: "duplicate of another payer"})
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.Equal(t, StatusAwaitingStack, before.Status)
	require.Empty(t, before.ApprovedBy)
	require.Empty(t, before.RequestedChanges)
	require.Contains(t, eventTexts(*before), "ignored approve from alice: status is awaiting_stack")
	require.Contains(t, eventTexts(*before), "ignored request-changes from alice: status is awaiting_stack")

	// Reject ends the workflow; its result is the final state.
	final := requireRejected(t, env, "duplicate of another payer")
	require.Equal(t, "rejected by bob: duplicate of another payer", final.Events[len(final.Events)-1].What)
}

func TestOnboardRejectFromAnyOpenStatus(t *testing.T) {
	rolledBack := onboard.DescribeCustomerStackResult{Found: true, Status: "ROLLBACK_COMPLETE", Reason: "bucket exists"}
	complete := completeStack(onboard.StackCreateComplete, t0)
	for _, tc := range []struct {
		status         string
		stack          onboard.DescribeCustomerStackResult
		checks         onboard.ValidateAccessResult
		requestChanges bool
	}{
		{status: StatusAwaitingStack, stack: noStack},
		{status: StatusStackFailed, stack: rolledBack},
		{status: StatusChecksFailed, stack: complete, checks: exportFailed},
		{status: StatusAwaitingApproval, stack: complete, checks: allPassed},
		{status: StatusChangesRequested, stack: complete, checks: exportFailed, requestChanges: true},
	} {
		t.Run(tc.status, func(t *testing.T) {
			f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{tc.stack}, checks: []onboard.ValidateAccessResult{tc.checks}}
			env := newOnboardTestEnv(f)
			if tc.requestChanges {
				signalAt(env, 2*time.Minute+10*time.Second, RequestChangesSignal, Decision{By: "ops", Issues: []string{"create the export"}})
			}
			before := stateAt(t, env, 5*time.Minute+20*time.Second)
			signalAt(env, 5*time.Minute+30*time.Second, RejectSignal, Decision{By: "ops", Reason: "not a customer"})
			env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

			require.Equal(t, tc.status, before.Status)
			final := requireRejected(t, env, "not a customer")
			require.Equal(t, "rejected by ops: not a customer", final.Events[len(final.Events)-1].What)
		})
	}
}

func TestOnboardChangesRequested(t *testing.T) {
	deployed := t0.Add(50 * time.Second)
	f := &onboardFakes{
		stacks: []onboard.DescribeCustomerStackResult{noStack, completeStack(onboard.StackCreateComplete, deployed)},
		checks: []onboard.ValidateAccessResult{exportFailed, allPassed},
	}
	env := newOnboardTestEnv(f)
	// 1m: the stack is complete, the export check fails.
	checksFailed := stateAt(t, env, 5*time.Minute)
	signalAt(env, 5*time.Minute+10*time.Second, RequestChangesSignal, Decision{By: "ops", Issues: []string{"create the CUR export"}})
	// From 5m10s a poll every minute sees the stack deployed at 50s: stale.
	stale := stateAt(t, env, 30*time.Minute+40*time.Second)
	signalAt(env, 31*time.Minute, StackDeployedSignal, Decision{By: "ops"})
	rechecked := stateAt(t, env, 35*time.Minute)
	// A second round: this time the customer updates the stack.
	signalAt(env, 40*time.Minute, RequestChangesSignal, Decision{By: "ops", Issues: []string{"use a dedicated bucket"}})
	env.RegisterDelayedCallback(func() {
		f.setStack(completeStack(onboard.StackUpdateComplete, t0.Add(45*time.Minute+10*time.Second)))
	}, 45*time.Minute+20*time.Second)
	updated := stateAt(t, env, 50*time.Minute+30*time.Second)
	rejectAt(env, time.Hour)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
	requireRejected(t, env, "end of test")

	require.Equal(t, StatusChecksFailed, checksFailed.Status)
	require.Equal(t, exportFailed.Checks, checksFailed.Checks)
	require.Contains(t, eventTexts(*checksFailed), "check export failed: no report named hourly")

	require.Equal(t, StatusChangesRequested, stale.Status)
	require.Equal(t, []string{"create the CUR export"}, stale.RequestedChanges)
	require.Equal(t, onboard.StackCreateComplete, stale.Stack.Status)
	require.Equal(t, 2+26, stale.Stack.Polls, "2 polls before, then 5m10s, 6m10s, ..., 30m10s")
	require.Len(t, f.validated, 3, "by the end")

	// The operator's stack-deployed reruns the checks at once.
	require.Equal(t, StatusAwaitingApproval, rechecked.Status)
	require.Equal(t, t0.Add(31*time.Minute), rechecked.ChecksAt)
	require.Equal(t, allPassed.Checks, rechecked.Checks)
	require.Contains(t, eventTexts(*rechecked), "stack reported deployed by ops")
	require.Equal(t, t0.Add(time.Minute), f.validated[0].AsOf)
	require.Equal(t, t0.Add(31*time.Minute), f.validated[1].AsOf)

	// An update after the request counts: polls at 40m, ..., 45m see the
	// old stack; the one at 46m sees the update.
	require.Equal(t, StatusAwaitingApproval, updated.Status)
	require.Equal(t, onboard.StackUpdateComplete, updated.Stack.Status)
	require.Equal(t, t0.Add(46*time.Minute), updated.ChecksAt)
	require.Equal(t, t0.Add(46*time.Minute), f.validated[2].AsOf)
	require.Equal(t, []string{"use a dedicated bucket"}, updated.RequestedChanges)
}

func TestOnboardStackFailed(t *testing.T) {
	const reason = "The following resource(s) failed to create: [ExportBucket]. ExportBucket: acme-billing already exists"
	f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{
		noStack,
		{Found: true, Status: "CREATE_IN_PROGRESS", UpdatedAt: t0.Add(50 * time.Second)},
		{Found: true, Status: "ROLLBACK_COMPLETE", Reason: reason, UpdatedAt: t0.Add(50 * time.Second)},
	}}
	env := newOnboardTestEnv(f)
	failed := stateAt(t, env, time.Hour)
	rejectAt(env, 2*time.Hour)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
	requireRejected(t, env, "end of test")

	require.Equal(t, StatusStackFailed, failed.Status)
	require.Equal(t, "ROLLBACK_COMPLETE", failed.Stack.Status)
	require.Equal(t, reason, failed.Stack.Reason)
	require.Equal(t, 3, failed.Stack.Polls, "no more polls once the stack failed")
	require.Contains(t, eventTexts(*failed), "stack "+DefaultStackName+" is ROLLBACK_COMPLETE: "+reason)
	require.Empty(t, f.validated)
	require.Empty(t, f.reminded)
}

func TestOnboardInvalidRegistration(t *testing.T) {
	f := &onboardFakes{}
	env := newOnboardTestEnv(f)
	reg := testRegistration()
	reg.PayerAccountID = "1234"
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: reg})

	require.True(t, env.IsWorkflowCompleted())
	var app *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &app)
	require.Equal(t, ErrTypeInvalidRegistration, app.Type())
	require.True(t, app.NonRetryable())
	require.Contains(t, app.Error(), "payer_account_id")
	require.Empty(t, f.published, "nothing is published for an invalid registration")
}

// updateCallbacks records how a RegistrationUpdate ended.
type updateCallbacks struct {
	rejected, err error
	result        RegistrationResult
	done          bool
}

func (u *updateCallbacks) Accept()          {}
func (u *updateCallbacks) Reject(err error) { u.rejected, u.done = err, true }
func (u *updateCallbacks) Complete(v any, err error) {
	u.done, u.err = true, err
	if r, ok := v.(RegistrationResult); ok {
		u.result = r
	}
}

// registerAt sends the gateway's RegistrationUpdate when the workflow starts.
func registerAt(env *testsuite.TestWorkflowEnvironment) *updateCallbacks {
	u := &updateCallbacks{}
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(RegistrationUpdate, "registration", u) }, 0)
	return u
}

// A worker without costlake's principal: the onboarding fails at once,
// before publishing, with the setting named in its state and in the
// registration update's failure; the workflow ends, so the payer can be
// registered again once the worker is fixed.
func TestOnboardSetupIncomplete(t *testing.T) {
	f := &onboardFakes{setupProblems: []onboard.SetupProblem{{Setting: "--aws-principal-arn", Env: "COSTLAKE_AWS_PRINCIPAL_ARN", Message: "costlake's AWS principal is not configured"}}}
	env := newOnboardTestEnv(f)
	u := registerAt(env)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var final OnboardingState
	require.NoError(t, env.GetWorkflowResult(&final))
	require.Equal(t, StatusFailed, final.Status)
	require.NotNil(t, final.Failure)
	require.Equal(t, FailedAtSetup, final.Failure.Step)
	require.Equal(t, []string{"--aws-principal-arn"}, final.Failure.Settings)
	require.Equal(t, "costlake's AWS principal is not configured", final.Failure.Reason)
	require.Contains(t, final.Failure.Fix, "set --aws-principal-arn on every worker")
	require.Empty(t, f.published, "nothing is published by a worker that cannot onboard")

	require.True(t, u.done)
	require.NoError(t, u.rejected)
	var app *temporal.ApplicationError
	require.ErrorAs(t, u.err, &app)
	require.Equal(t, ErrTypeOnboardingFailed, app.Type())
	var f2 Failure
	require.NoError(t, app.Details(&f2))
	require.Equal(t, *final.Failure, f2)
}

// A template that cannot be published fails the onboarding with the
// reason, instead of leaving it with no status.
func TestOnboardPublishFails(t *testing.T) {
	f := &onboardFakes{publishErr: temporal.NewNonRetryableApplicationError("cannot publish the template to s3://gone/stacks/x.yaml (NoSuchBucket: The specified bucket does not exist)", onboard.ErrTypeInvalidSetup, nil)}
	env := newOnboardTestEnv(f)
	u := registerAt(env)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.NoError(t, env.GetWorkflowError())
	var final OnboardingState
	require.NoError(t, env.GetWorkflowResult(&final))
	require.Equal(t, StatusFailed, final.Status)
	require.Equal(t, FailedAtPublish, final.Failure.Step)
	require.Contains(t, final.Failure.Reason, "NoSuchBucket")
	require.Len(t, f.published, 1, "a non-retryable failure is not retried")
	require.Error(t, u.err)
}

// A registration that goes well answers with the status the stack's
// publication reached.
func TestOnboardRegistrationUpdate(t *testing.T) {
	f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{noStack}}
	env := newOnboardTestEnv(f)
	u := registerAt(env)
	rejectAt(env, time.Hour)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
	requireRejected(t, env, "end of test")
	require.True(t, u.done)
	require.NoError(t, u.err)
	require.Equal(t, StatusAwaitingStack, u.result.Status)
}

var externalIDPattern = regexp.MustCompile(`^costlake-[0-9a-f]{32}$`)

func TestOnboardExternalID(t *testing.T) {
	t.Run("drawn once and used everywhere", func(t *testing.T) {
		f := &onboardFakes{
			stacks: []onboard.DescribeCustomerStackResult{noStack, noStack, completeStack(onboard.StackCreateComplete, t0)},
			checks: []onboard.ValidateAccessResult{allPassed},
		}
		env := newOnboardTestEnv(f)
		var drawn []string
		env.OnSideEffect().Return(func() any {
			id := newExternalID() // what the workflow's side effect draws
			drawn = append(drawn, id)
			return id
		})
		early := stateAt(t, env, 30*time.Second)
		signalAt(env, 10*time.Minute, ApproveSignal, Decision{By: "ops"})
		late := stateAt(t, env, 11*time.Minute)
		signalAt(env, 12*time.Minute, OffboardSignal, Decision{By: "ops"})
		env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
		require.NoError(t, env.GetWorkflowError())

		require.Len(t, drawn, 1)
		id := drawn[0]
		require.Regexp(t, externalIDPattern, id)
		require.Equal(t, id, early.Registration.Access.ExternalID)
		require.Equal(t, id, late.Registration.Access.ExternalID)
		require.Len(t, f.published, 1)
		require.Equal(t, id, f.published[0].Registration.Access.ExternalID)
		require.Len(t, f.described, 3)
		for _, d := range f.described {
			require.Equal(t, id, d.Access.ExternalID)
		}
		require.Len(t, f.validated, 1)
		require.Equal(t, id, f.validated[0].Registration.Access.ExternalID)
		require.Len(t, f.children, 1)
		require.Equal(t, id, f.children[0].Input.Access.ExternalID)
		require.Len(t, f.schedules, 1)
		var crawlIn CrawlPayerInput
		require.NoError(t, json.Unmarshal(f.schedules[0].Args, &crawlIn))
		require.Equal(t, id, crawlIn.Access.ExternalID)
	})

	t.Run("the workflow draws costlake- IDs", func(t *testing.T) {
		f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{noStack}}
		env := newOnboardTestEnv(f)
		state := stateAt(t, env, 30*time.Second)
		cancelAt(env, time.Minute+30*time.Second)
		env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
		requireCanceled(t, env)

		require.Len(t, f.published, 1)
		id := f.published[0].Registration.Access.ExternalID
		require.Regexp(t, externalIDPattern, id)
		require.Equal(t, id, state.Registration.Access.ExternalID)
		require.Equal(t, map[string]string{"ExternalId": id}, state.Stack.Parameters)
	})

	t.Run("a given ID is kept", func(t *testing.T) {
		f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{noStack}}
		env := newOnboardTestEnv(f)
		env.OnSideEffect().Never()
		state := stateAt(t, env, 30*time.Second)
		cancelAt(env, time.Minute+30*time.Second)
		reg := testRegistration()
		reg.Access.ExternalID = "acme-chosen-id"
		env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: reg})
		requireCanceled(t, env)

		env.AssertExpectations(t)
		require.Equal(t, "acme-chosen-id", f.published[0].Registration.Access.ExternalID)
		require.Equal(t, "acme-chosen-id", state.Registration.Access.ExternalID)
	})
}

func TestOnboardCancelWhileWaitingForOperator(t *testing.T) {
	f := &onboardFakes{
		stacks: []onboard.DescribeCustomerStackResult{completeStack(onboard.StackCreateComplete, t0)},
		checks: []onboard.ValidateAccessResult{allPassed},
	}
	env := newOnboardTestEnv(f)
	waiting := stateAt(t, env, time.Hour)
	cancelAt(env, time.Hour+time.Minute)
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.Equal(t, StatusAwaitingApproval, waiting.Status)
	requireCanceled(t, env)
}

// actionCallbacks records how the onboarding answered an operator update.
type actionCallbacks struct {
	accepted, done bool
	rejected, err  error
	result         ActionResult
}

func (u *actionCallbacks) Accept()          { u.accepted = true }
func (u *actionCallbacks) Reject(err error) { u.rejected, u.done = err, true }
func (u *actionCallbacks) Complete(v any, err error) {
	u.done, u.err = true, err
	if r, ok := v.(ActionResult); ok {
		u.result = r
	}
}

func actionAt(env *testsuite.TestWorkflowEnvironment, d time.Duration, action string, decision Decision) *actionCallbacks {
	u := &actionCallbacks{}
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(action, action+d.String(), u, decision) }, d)
	return u
}

// Operator actions as updates: an action the status does not accept, or
// a rejection without a reason, is refused by the validator with the
// reason and changes nothing; an accepted one answers the status it left.
func TestOnboardOperatorUpdates(t *testing.T) {
	f := &onboardFakes{stacks: []onboard.DescribeCustomerStackResult{noStack}}
	env := newOnboardTestEnv(f)
	early := actionAt(env, 90*time.Second, ApproveSignal, Decision{By: "alice"})
	noReason := actionAt(env, 100*time.Second, RejectSignal, Decision{By: "alice"})
	before := stateAt(t, env, 5*time.Minute)
	reject := actionAt(env, 6*time.Minute, RejectSignal, Decision{By: "bob", Reason: "duplicate of another payer"})
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.True(t, early.done)
	require.ErrorContains(t, early.rejected, "cannot approve payer "+testRegistration().PayerAccountID+": its onboarding is awaiting_stack")
	require.ErrorContains(t, noReason.rejected, "a rejection needs a reason")
	require.Equal(t, StatusAwaitingStack, before.Status)
	require.Empty(t, before.ApprovedBy)

	require.True(t, reject.accepted)
	require.NoError(t, reject.rejected)
	require.NoError(t, reject.err)
	require.Equal(t, ActionResult{Action: RejectSignal, From: StatusAwaitingStack, Status: StatusRejected}, reject.result)
	final := requireRejected(t, env, "duplicate of another payer")
	require.Equal(t, "rejected by bob: duplicate of another payer", final.Events[len(final.Events)-1].What)
}

// An action accepted while the setup check runs, on an onboarding whose
// setup then fails, is refused, not left waiting: the run ends, so the
// payer can be registered again.
func TestOnboardActionDuringFailedSetup(t *testing.T) {
	f := &onboardFakes{setupProblems: []onboard.SetupProblem{{Setting: "--aws-principal-arn", Env: "COSTLAKE_AWS_PRINCIPAL_ARN", Message: "costlake's AWS principal is not configured"}}}
	env := newOnboardTestEnv(f)
	env.SetTestTimeout(30 * time.Second)
	offboard := actionAt(env, 0, OffboardSignal, Decision{By: "alice", Reason: "registered by mistake"})
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.True(t, offboard.done, "the update is answered")
	if offboard.rejected == nil {
		require.True(t, offboard.accepted)
		require.ErrorContains(t, offboard.err, "failed")
	}
}

// TestOnboardLegacyRunRecordsItsNextStatuses: a run from before the
// status-record gate (its main gate fixed at the default version, as its
// replayed history fixes it) records the statuses it enters from then on
// through the per-turn gates; the turns its history had replay without.
func TestOnboardLegacyRunRecordsItsNextStatuses(t *testing.T) {
	f := &onboardFakes{
		stacks: []onboard.DescribeCustomerStackResult{completeStack(onboard.StackCreateComplete, t0.Add(time.Second))},
		checks: []onboard.ValidateAccessResult{allPassed},
	}
	env := newOnboardTestEnv(f)
	env.OnGetVersion(statusRecordChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	// The statuses up to approval (the timeline's first five events:
	// registered, published, the stack's role, the stack complete, every
	// check passed) are the old history's.
	for turn := 1; turn <= 5; turn++ {
		env.OnGetVersion(legacyStatusRecordChange(turn), workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	}
	signalAt(env, 10*time.Minute, ApproveSignal, Decision{By: "ops"})
	signalAt(env, 20*time.Minute, OffboardSignal, Decision{By: "ops"})
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
	require.NoError(t, env.GetWorkflowError())
	var recorded []string
	for _, r := range f.statuses {
		recorded = append(recorded, r.Status)
	}
	require.Equal(t, []string{StatusActive, StatusOffboarded}, recorded)
}
