package workflows

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// changeCallbacks records how the onboarding answered a registration
// change.
type changeCallbacks struct {
	accepted, done bool
	rejected, err  error
	result         ChangeResult
}

func (u *changeCallbacks) Accept()          { u.accepted = true }
func (u *changeCallbacks) Reject(err error) { u.rejected, u.done = err, true }
func (u *changeCallbacks) Complete(v any, err error) {
	u.done, u.err = true, err
	if r, ok := v.(ChangeResult); ok {
		u.result = r
	}
}

func changeAt(env *testsuite.TestWorkflowEnvironment, d time.Duration, ch payer.Change) *changeCallbacks {
	u := &changeCallbacks{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ChangeRegistrationUpdate, "change"+d.String(), u, RegistrationChange{By: "ops", Change: ch})
	}, d)
	return u
}

func ptr[T any](v T) *T { return &v }

// A registration change is refused by the validator when invalid (by
// field) or when the status does not allow it (the export, before the
// payer is active), applied by the main loop otherwise, and the crawl
// schedule follows it: its spec, and the crawl's input with the export's
// cut-over.
func TestOnboardChangeRegistration(t *testing.T) {
	f := &onboardFakes{
		stacks: []onboard.DescribeCustomerStackResult{completeStack(onboard.StackCreateComplete, t0.Add(-time.Minute))},
		checks: []onboard.ValidateAccessResult{allPassed},
	}
	env := newOnboardTestEnv(f)
	var looked []crawl.DiscoverDeliveriesInput
	env.RegisterActivityWithOptions(func(_ context.Context, in crawl.DiscoverDeliveriesInput) (crawl.DiscoverDeliveriesResult, error) {
		looked = append(looked, in)
		if in.Source == "s3://elsewhere/cur2/acme-cur2" {
			return crawl.DiscoverDeliveriesResult{}, temporal.NewNonRetryableApplicationError("s3://elsewhere/cur2: access denied", "AccessDenied", nil)
		}
		return crawl.DiscoverDeliveriesResult{Deliveries: []crawl.Delivery{{Period: in.Periods[0]}}}, nil
	}, activityName(crawl.DiscoverDeliveriesActivity))
	cur2 := payer.Export{Type: payer.CUR2, Bucket: "acme-billing", Prefix: "cur2", Name: "acme-cur2", DetectExisting: true}
	earlyExport := changeAt(env, 2*time.Minute, payer.Change{Export: &cur2, CutoverFrom: period.MustParse("2026-11")})
	earlySchedule := changeAt(env, 3*time.Minute, payer.Change{Schedule: &payer.Schedule{Cron: "0 6 * * *"}})
	signalAt(env, 5*time.Minute, ApproveSignal, Decision{By: "ops"})
	migrate := changeAt(env, 10*time.Minute, payer.Change{Export: &cur2, CutoverFrom: period.MustParse("2026-11"),
		ConnectedAccounts: &[]string{connectedAcct, "777788889999"}})
	invalid := changeAt(env, 11*time.Minute, payer.Change{Schedule: &payer.Schedule{Cron: "* * * * *"}, LinkedAccounts: ptr("some")})
	empty := changeAt(env, 12*time.Minute, payer.Change{})
	elsewhere := cur2
	elsewhere.Bucket = "elsewhere"
	unreadable := changeAt(env, 12*time.Minute+30*time.Second, payer.Change{Export: &elsewhere})
	after := stateAt(t, env, 13*time.Minute)
	signalAt(env, 20*time.Minute, OffboardSignal, Decision{By: "ops", Reason: "done"})
	env.ExecuteWorkflow(OnboardPayer, OnboardPayerInput{Registration: testRegistration()})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	require.ErrorContains(t, earlyExport.rejected, "cannot change the export of payer "+testPayer+" while its onboarding is awaiting_approval")
	require.True(t, earlySchedule.accepted)
	require.NoError(t, earlySchedule.err)
	require.Equal(t, []string{"schedule"}, earlySchedule.result.Changed)
	require.Empty(t, earlySchedule.result.Schedule, "no schedule yet: it is created from the new registration")

	// Approval creates the schedule with the changed spec; the migration
	// updates it with the cut-over in the crawl's input.
	require.Len(t, f.schedules, 2)
	require.Equal(t, payer.Schedule{Cron: "0 6 * * *"}, f.schedules[0].Schedule)
	require.True(t, migrate.accepted)
	require.NoError(t, migrate.err)
	require.Equal(t, []string{"connected_accounts", "cutover", "export"}, migrate.result.Changed)
	require.Equal(t, "crawl/"+testPayer, migrate.result.Schedule)
	reg := migrate.result.Registration
	require.Equal(t, "s3://acme-billing/cur2/acme-cur2", reg.Export.Source())
	require.Equal(t, "us-east-1", reg.Export.Region, "normalized like a registration")
	prev := testRegistration().Export
	prev.Region = "us-east-1"
	require.Equal(t, &payer.Cutover{Previous: prev, From: period.MustParse("2026-11")}, reg.Cutover)
	require.Equal(t, "s3://acme-billing/cur/hourly", reg.Cutover.Previous.Source())
	var in CrawlPayerInput
	require.NoError(t, json.Unmarshal(f.schedules[1].Args, &in))
	require.Equal(t, "s3://acme-billing/cur2/acme-cur2", in.Source)
	require.Equal(t, &CrawlCutover{From: period.MustParse("2026-11"), Source: "s3://acme-billing/cur/hourly", Access: in.Access}, in.Cutover)
	require.Equal(t, payer.AccountPolicy{ConnectedOnly: true, Connected: []string{connectedAcct, "777788889999"}}, in.Accounts)
	require.Equal(t, payer.Schedule{Cron: "0 6 * * *"}, f.schedules[1].Schedule, "a change keeps what it does not set")

	var app *temporal.ApplicationError
	require.ErrorAs(t, invalid.rejected, &app)
	require.Equal(t, ErrTypeInvalidChange, app.Type())
	var fields map[string]string
	require.NoError(t, app.Details(&fields))
	require.Contains(t, fields, "schedule.cron")
	require.Contains(t, fields, "linked_accounts")
	require.ErrorContains(t, empty.rejected, "nothing to change")
	// An export the role cannot read is accepted, then refused when the
	// workflow looks it up, and changes nothing.
	require.True(t, unreadable.accepted)
	require.ErrorContains(t, unreadable.err, "the payer's role cannot read the new export s3://elsewhere/cur2/acme-cur2 (s3://elsewhere/cur2: access denied)")
	require.Len(t, looked, 2)
	require.Equal(t, "s3://acme-billing/cur2/acme-cur2", looked[0].Source)
	require.Equal(t, parsePeriods("2026-11"), looked[0].Periods, "the cut-over's first period")
	require.Equal(t, parsePeriods(period.Of(t0).String()), looked[1].Periods, "without a cut-over, the current period")

	require.Equal(t, StatusActive, after.Status)
	require.Equal(t, reg, after.Registration, "the refused changes changed nothing")
	require.Contains(t, eventTexts(*after), "registration changed by ops: connected_accounts, cutover, export; periods from 2026-11 are taken from s3://acme-billing/cur2/acme-cur2, earlier ones from s3://acme-billing/cur/hourly")
}

// During a cut-over each period is looked up, and ingested, from exactly
// one export: before the cut-over from the previous one, from it on from
// the current one; the outcomes keep the order asked.
func TestCrawlCutover(t *testing.T) {
	f := &crawlFakes{bucket: map[string]crawl.Delivery{
		"2026-11": {Found: true, AssemblyID: "new"},
		"2026-10": {Found: true, AssemblyID: "restated", Committed: "old"},
	}}
	env := newCrawlTestEnv(f, crawlT0)
	in := crawlInput()
	in.Source = "s3://acme-billing/cur2/acme-cur2"
	prevAccess := crawlAccess
	prevAccess.Region = "eu-west-1"
	in.Cutover = &CrawlCutover{From: period.MustParse("2026-11"), Source: crawlSource, Access: prevAccess}
	env.ExecuteWorkflow(CrawlPayer, in)
	res := requireCrawlDone(t, env)

	require.Len(t, f.discovered, 2)
	require.Equal(t, crawlSource, f.discovered[0].Source)
	require.Equal(t, parsePeriods("2026-10"), f.discovered[0].Periods)
	require.Equal(t, &prevAccess, f.discovered[0].Access)
	require.Equal(t, in.Source, f.discovered[1].Source)
	require.Equal(t, parsePeriods("2026-11"), f.discovered[1].Periods)
	require.Equal(t, []string{"2026-11", "2026-10"}, periodsOf(res))
	require.Equal(t, map[string]string{"2026-11": ActionIngested, "2026-10": ActionIngested}, actions(res))
	sources := map[string]string{}
	for _, c := range f.children {
		sources[c.Input.Period.String()] = c.Input.Source
		require.Equal(t, "ingest/"+testPayer+"/"+c.Input.Period.String(), c.ID, "one ingestion ID per period, whichever export")
	}
	require.Equal(t, map[string]string{"2026-11": in.Source, "2026-10": crawlSource}, sources)
}

// A change is refused in the statuses that cannot take one, with the
// reason; the gateway asks the same before it sends the update.
func TestCheckChangeByStatus(t *testing.T) {
	st := OnboardingState{Registration: testRegistration()}
	st.Registration.Normalize()
	name := payer.Change{Name: ptr("Acme EU")}
	for status, want := range map[string]string{
		StatusRegistered: "its stack is being published", StatusFailed: "its onboarding is failed",
		StatusRejected: "its onboarding is rejected", StatusOffboarded: "its onboarding is offboarded",
	} {
		st.Status = status
		_, err := st.CheckChange(name)
		var refused *ChangeRefusedError
		require.ErrorAs(t, err, &refused, status)
		require.ErrorContains(t, err, want)
	}
	st.Status = StatusAwaitingStack
	next, err := st.CheckChange(name)
	require.NoError(t, err)
	require.Equal(t, "Acme EU", next.Name)
	require.Equal(t, "Acme", st.Registration.Name, "the state is not changed by the check")
}

// A period held under another account policy is taken again: the crawl
// sends the policy it keeps now, and an ingestion of a delivery whose
// assembly is held reads every report again (Retake).
func TestCrawlRetakesPeriodsUnderAnotherPolicy(t *testing.T) {
	f := &crawlFakes{bucket: map[string]crawl.Delivery{
		"2026-11": {Found: true, AssemblyID: "a", Committed: "a", AccountsChanged: true},
		"2026-10": {Found: true, AssemblyID: "b", Committed: "b"},
	}}
	env := newCrawlTestEnv(f, crawlT0)
	env.ExecuteWorkflow(CrawlPayer, crawlInput())
	res := requireCrawlDone(t, env)
	require.Equal(t, crawlPolicy.Fingerprint(), f.discovered[0].Accounts)
	require.Equal(t, map[string]string{"2026-11": ActionIngested, "2026-10": ActionUnchanged}, actions(res))
	require.Len(t, f.children, 1)
	require.True(t, f.children[0].Input.Retake)

	// A member account onboarded alone keeps its own usage: that is the
	// policy compared.
	f = &crawlFakes{bucket: map[string]crawl.Delivery{}}
	env = newCrawlTestEnv(f, crawlT0)
	in := crawlInput()
	in.BillPayerAccountID = "999988887777"
	env.ExecuteWorkflow(CrawlPayer, in)
	require.True(t, env.IsWorkflowCompleted())
	require.Equal(t, payer.AccountPolicy{ConnectedOnly: true, Connected: []string{testPayer}}.Fingerprint(), f.discovered[0].Accounts)
}
