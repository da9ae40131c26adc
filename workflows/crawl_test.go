package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
)

// These tests run CrawlPayer against stub activities and a stub
// IngestBillingPeriod child registered under their real names; the real
// ones run in tests/.

// crawlT0 is when a crawl in these tests starts unless a test says
// otherwise: a daily crawl, a little after midnight UTC.
var crawlT0 = time.Date(2026, 11, 14, 0, 20, 0, 0, time.UTC)

const crawlSource = "s3://acme-billing/cur/hourly"

var (
	crawlAccess = payer.Access{Mode: payer.AssumeRole, RoleARN: stackRole, ExternalID: "costlake-0123456789abcdef0123456789abcdef"}
	crawlPolicy = payer.AccountPolicy{ConnectedOnly: true, Connected: []string{connectedAcct}}
)

func crawlInput() CrawlPayerInput {
	return CrawlPayerInput{
		PayerAccountID: testPayer,
		CustomerID:     "acme",
		Source:         crawlSource,
		Access:         crawlAccess,
		Accounts:       crawlPolicy,
		ActiveSince:    crawlT0.Add(-30 * 24 * time.Hour),
	}
}

// crawlFakes stand in for the crawl's activities and its child
// ingestions, and record what they were asked.
type crawlFakes struct {
	mu sync.Mutex
	// bucket is what DiscoverDeliveries finds per period; a period not in
	// it has no delivery.
	bucket      map[string]crawl.Delivery
	discoverErr error
	// ingested is what the child ingestion of a period returns (Rows
	// defaults to 100); failIngest fails it instead.
	ingested   map[string]IngestBillingPeriodResult
	failIngest map[string]error

	accounts    crawl.AccountChanges
	accountsErr error
	ceResult    crawl.IngestCostExplorerResult
	ceErr       error

	refreshed  []crawl.RefreshAccountsInput
	discovered []crawl.DiscoverDeliveriesInput
	children   []startedChild
	ce         []crawl.IngestCostExplorerInput
}

func (f *crawlFakes) refresh(_ context.Context, in crawl.RefreshAccountsInput) (crawl.AccountChanges, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshed = append(f.refreshed, in)
	return f.accounts, f.accountsErr
}

func (f *crawlFakes) discover(_ context.Context, in crawl.DiscoverDeliveriesInput) (crawl.DiscoverDeliveriesResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discovered = append(f.discovered, in)
	if f.discoverErr != nil {
		return crawl.DiscoverDeliveriesResult{}, f.discoverErr
	}
	var res crawl.DiscoverDeliveriesResult
	for _, p := range in.Periods {
		d, ok := f.bucket[p.String()]
		if !ok {
			d = crawl.Delivery{Found: false}
		}
		d.Period = p
		res.Deliveries = append(res.Deliveries, d)
	}
	return res, nil
}

func (f *crawlFakes) costExplorer(_ context.Context, in crawl.IngestCostExplorerInput) (crawl.IngestCostExplorerResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ce = append(f.ce, in)
	return f.ceResult, f.ceErr
}

// ingest is registered as "IngestBillingPeriod".
func (f *crawlFakes) ingest(ctx workflow.Context, in IngestBillingPeriodInput) (*IngestBillingPeriodResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.children = append(f.children, startedChild{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, Input: in})
	if err := f.failIngest[in.Period.String()]; err != nil {
		return nil, err
	}
	r, ok := f.ingested[in.Period.String()]
	if !ok {
		r = IngestBillingPeriodResult{Rows: 100}
	}
	r.PayerAccountID, r.Period = in.PayerAccountID, in.Period
	return &r, nil
}

// childPeriods lists the periods ingestions were started for, sorted:
// children run concurrently, so the order they run in is not the
// crawl's.
func (f *crawlFakes) childPeriods() []string {
	var out []string
	for _, c := range f.children {
		out = append(out, c.Input.Period.String())
	}
	slices.Sort(out)
	return out
}

func newCrawlTestEnv(f *crawlFakes, start time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflow(CrawlPayer)
	registerClock(env, time.Time{})
	env.RegisterWorkflowWithOptions(f.ingest, workflow.RegisterOptions{Name: "IngestBillingPeriod"})
	env.RegisterActivityWithOptions(f.refresh, activityName(crawl.RefreshAccountsActivity))
	env.RegisterActivityWithOptions(f.discover, activityName(crawl.DiscoverDeliveriesActivity))
	env.RegisterActivityWithOptions(f.costExplorer, activityName(crawl.IngestCostExplorerActivity))
	return env
}

func requireCrawlDone(t *testing.T, env *testsuite.TestWorkflowEnvironment) CrawlPayerResult {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res CrawlPayerResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

// requireCrawlFailed checks a crawl failed with a non-retryable error of
// type errType and returns the error and the outcomes it recorded, which
// the progress query still answers.
func requireCrawlFailed(t *testing.T, env *testsuite.TestWorkflowEnvironment, errType string) (*temporal.ApplicationError, CrawlPayerResult) {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	var app *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &app)
	require.Equal(t, errType, app.Type())
	require.True(t, app.NonRetryable())
	v, err := env.QueryWorkflow(CrawlProgressQuery)
	require.NoError(t, err)
	var res CrawlPayerResult
	require.NoError(t, v.Get(&res))
	return app, res
}

func actions(res CrawlPayerResult) map[string]string {
	out := make(map[string]string, len(res.Periods))
	for _, o := range res.Periods {
		out[o.Period.String()] = o.Action
	}
	return out
}

func periodsOf(res CrawlPayerResult) []string {
	out := make([]string, len(res.Periods))
	for i, o := range res.Periods {
		out[i] = o.Period.String()
	}
	return out
}

func TestCrawlPeriods(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    time.Time
		lookback int
		periods  []string
		want     []string
	}{
		{name: "current and previous by default", start: crawlT0, want: []string{"2026-11", "2026-10"}},
		{name: "lookback 1 is the default", start: crawlT0, lookback: 1, want: []string{"2026-11", "2026-10"}},
		{name: "negative lookback is the default", start: crawlT0, lookback: -3, want: []string{"2026-11", "2026-10"}},
		{name: "lookback 2", start: crawlT0, lookback: 2, want: []string{"2026-11", "2026-10", "2026-09"}},
		{name: "first second of a month", start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), want: []string{"2026-12", "2026-11"}},
		{name: "last second of a month", start: time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), want: []string{"2026-11", "2026-10"}},
		{name: "across a year", start: time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC), lookback: 2, want: []string{"2027-01", "2026-12", "2026-11"}},
		{name: "31st of March", start: time.Date(2027, 3, 31, 12, 0, 0, 0, time.UTC), want: []string{"2027-03", "2027-02"}},
		// 03:00 at UTC+5 on Dec 1 is still November in UTC.
		{name: "months are UTC", start: time.Date(2026, 12, 1, 3, 0, 0, 0, time.FixedZone("UTC+5", 5*3600)), want: []string{"2026-11", "2026-10"}},
		{name: "backfill periods as given", start: crawlT0, lookback: 5, periods: []string{"2025-01", "2025-03", "2025-02"}, want: []string{"2025-01", "2025-03", "2025-02"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &crawlFakes{bucket: map[string]crawl.Delivery{}}
			for _, p := range tc.want {
				f.bucket[p] = crawl.Delivery{Found: true, AssemblyID: "a", Committed: "a"}
			}
			env := newCrawlTestEnv(f, tc.start)
			in := crawlInput()
			in.Lookback, in.Periods = tc.lookback, parsePeriods(tc.periods...)
			env.ExecuteWorkflow(CrawlPayer, in)
			res := requireCrawlDone(t, env)

			require.Len(t, f.discovered, 1)
			d := f.discovered[0]
			require.Equal(t, parsePeriods(tc.want...), d.Periods)
			require.Equal(t, testPayer, d.PayerAccountID)
			require.Equal(t, crawlSource, d.Source)
			require.Equal(t, &crawlAccess, d.Access)
			// Outcomes are in the order asked.
			require.Equal(t, tc.want, periodsOf(res))
			require.Equal(t, CrawlDone, res.Status)

			require.Len(t, f.refreshed, 1)
			require.Equal(t, "acme", d.CustomerID, "the role session names the customer")
			require.Equal(t, crawl.RefreshAccountsInput{PayerAccountID: testPayer, CustomerID: "acme", Access: crawlAccess, At: tc.start.UTC()}, f.refreshed[0])
			require.Empty(t, f.ce)
		})
	}
}

func TestCrawlOutcomes(t *testing.T) {
	f := &crawlFakes{
		bucket: map[string]crawl.Delivery{
			"2026-11": {Found: true, Format: "cur", AssemblyID: "a-nov"},                                     // new
			"2026-10": {Found: true, Format: "cur", AssemblyID: "a-oct-2", Committed: "a-oct-1"},             // restated
			"2026-09": {Found: true, Format: "cur", AssemblyID: "a-sep", Committed: "a-sep"},                 // unchanged
			"2026-08": {Found: true, Format: "cur", AssemblyID: "a-aug-2", Committed: "a-aug-1"},             // child finds it held
			"2026-07": {Found: true, Format: "cur", AssemblyID: "a-jul-2", Committed: "a-jul-1"},             // child finds a newer one held
			"2026-05": {Found: false, AssemblyID: "stale", Committed: "older", Error: "not looked at"},       // not found wins
			"2026-04": {Found: true, Format: "cur2", AssemblyID: "a-apr-2", Committed: "a-apr-1", Error: ""}, // restated, data exports
		},
		ingested: map[string]IngestBillingPeriodResult{
			"2026-11": {Rows: 1200},
			"2026-10": {Rows: 3400},
			"2026-08": {Unchanged: true},
			"2026-07": {Superseded: true, Rows: 0},
			"2026-04": {Rows: 7},
		},
	}
	env := newCrawlTestEnv(f, crawlT0)
	in := crawlInput()
	in.Periods = parsePeriods("2026-11", "2026-10", "2026-09", "2026-08", "2026-07", "2026-06", "2026-05", "2026-04")
	env.ExecuteWorkflow(CrawlPayer, in)
	res := requireCrawlDone(t, env)

	require.Equal(t, CrawlDone, res.Status)
	require.Equal(t, testPayer, res.PayerAccountID)
	require.Equal(t, []string{"2026-11", "2026-10", "2026-09", "2026-08", "2026-07", "2026-06", "2026-05", "2026-04"}, periodsOf(res))
	require.Equal(t, map[string]string{
		"2026-11": ActionIngested,
		"2026-10": ActionIngested,
		"2026-09": ActionUnchanged,
		"2026-08": ActionUnchanged,
		"2026-07": ActionUnchanged,
		"2026-06": ActionNoDelivery,
		"2026-05": ActionNoDelivery,
		"2026-04": ActionIngested,
	}, actions(res))

	// Only the changed deliveries start an ingestion, each under the
	// period's stable ID, with the crawl's source, payer, customer, access
	// and account policy.
	require.Equal(t, []string{"2026-04", "2026-07", "2026-08", "2026-10", "2026-11"}, f.childPeriods())
	for _, c := range f.children {
		require.Equal(t, "ingest/"+testPayer+"/"+c.Input.Period.String(), c.ID)
		require.Equal(t, IngestBillingPeriodInput{
			Source: crawlSource, Period: c.Input.Period, PayerAccountID: testPayer, Access: &crawlAccess, Accounts: crawlPolicy, CustomerID: "acme",
		}, c.Input)
	}

	for _, o := range res.Periods {
		want := f.bucket[o.Period.String()]
		want.Period = o.Period
		require.Equal(t, want, o.Delivery, "the outcome carries what was found for %s", o.Period)
		require.Empty(t, o.Failure, o.Period)
		if o.Delivery.Changed() {
			require.Equal(t, IngestWorkflowID(testPayer, crawlSource, o.Period), o.IngestionID)
		} else {
			require.Empty(t, o.IngestionID, o.Period)
		}
	}
	byPeriod := map[string]PeriodOutcome{}
	for _, o := range res.Periods {
		byPeriod[o.Period.String()] = o
	}
	require.Equal(t, int64(1200), byPeriod["2026-11"].Rows)
	require.Equal(t, int64(3400), byPeriod["2026-10"].Rows)
	require.Equal(t, int64(7), byPeriod["2026-04"].Rows)
	require.Zero(t, byPeriod["2026-09"].Rows)

	require.Nil(t, res.CostExplorer)
	require.Empty(t, f.ce)

	// The progress query answers the same record.
	v, err := env.QueryWorkflow(CrawlProgressQuery)
	require.NoError(t, err)
	var queried CrawlPayerResult
	require.NoError(t, v.Get(&queried))
	require.Equal(t, res, queried)
}

func TestCrawlUnreadableDelivery(t *testing.T) {
	const bad = "manifest cur/hourly/20261001-20261101/hourly-Manifest.json: unexpected end of JSON input"
	f := &crawlFakes{bucket: map[string]crawl.Delivery{
		"2026-11": {Found: true, AssemblyID: "a-nov"},
		"2026-10": {Found: true, AssemblyID: "a-oct-2", Committed: "a-oct-1", Error: bad},
	}}
	env := newCrawlTestEnv(f, crawlT0)
	env.ExecuteWorkflow(CrawlPayer, crawlInput())
	app, res := requireCrawlFailed(t, env, "IngestionFailed")

	require.Contains(t, app.Error(), "period 2026-10 of "+crawlSource+": "+bad)
	// The unreadable delivery is reported, not ingested; the other one is.
	require.Equal(t, []string{"2026-11"}, f.childPeriods())
	require.Equal(t, map[string]string{"2026-11": ActionIngested, "2026-10": ActionFailed}, actions(res))
	require.Equal(t, bad, res.Periods[1].Failure)
	require.Empty(t, res.Periods[1].IngestionID)
}

func TestCrawlFailedIngestion(t *testing.T) {
	f := &crawlFakes{
		bucket: map[string]crawl.Delivery{
			"2026-11": {Found: true, AssemblyID: "a-nov"},
			"2026-10": {Found: true, AssemblyID: "a-oct-2", Committed: "a-oct-1"},
		},
		failIngest: map[string]error{
			"2026-10": temporal.NewNonRetryableApplicationError("chunk 3 line 9: corrupt", ingest.ErrTypeCorruptChunk, nil),
		},
	}
	env := newCrawlTestEnv(f, crawlT0)
	env.ExecuteWorkflow(CrawlPayer, crawlInput())
	app, res := requireCrawlFailed(t, env, "IngestionFailed")

	require.Contains(t, app.Error(), "period 2026-10 of "+crawlSource+": chunk 3 line 9: corrupt")
	// Both ingestions ran; the crawl waited for both before failing.
	require.Equal(t, []string{"2026-10", "2026-11"}, f.childPeriods())
	require.Equal(t, map[string]string{"2026-11": ActionIngested, "2026-10": ActionFailed}, actions(res))
	require.Equal(t, int64(100), res.Periods[0].Rows)
	oct := res.Periods[1]
	require.Contains(t, oct.Failure, "chunk 3 line 9: corrupt")
	require.Equal(t, "ingest/"+testPayer+"/2026-10", oct.IngestionID)
	require.Zero(t, oct.Rows)
}

func TestCrawlDiscoveryFails(t *testing.T) {
	f := &crawlFakes{discoverErr: temporal.NewNonRetryableApplicationError("AccessDenied: s3:ListBucket on acme-billing", "AccessDenied", nil)}
	env := newCrawlTestEnv(f, crawlT0)
	env.ExecuteWorkflow(CrawlPayer, crawlInput())
	require.True(t, env.IsWorkflowCompleted())
	var app *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &app)
	require.Equal(t, "AccessDenied", app.Type())
	require.Len(t, f.discovered, 1)
	require.Empty(t, f.children)
}

func TestCrawlNoDelivery(t *testing.T) {
	for _, tc := range []struct {
		name        string
		activeSince time.Time
		waiting     bool
	}{
		{name: "just activated", activeSince: crawlT0, waiting: true},
		{name: "within the grace", activeSince: crawlT0.Add(-FirstDeliveryGrace + time.Second), waiting: true},
		{name: "at the end of the grace", activeSince: crawlT0.Add(-FirstDeliveryGrace)},
		{name: "after the grace", activeSince: crawlT0.Add(-FirstDeliveryGrace - time.Hour)},
		{name: "no activation time", activeSince: time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &crawlFakes{}
			env := newCrawlTestEnv(f, crawlT0)
			in := crawlInput()
			in.ActiveSince = tc.activeSince
			env.ExecuteWorkflow(CrawlPayer, in)

			var res CrawlPayerResult
			if tc.waiting {
				res = requireCrawlDone(t, env)
				require.Equal(t, CrawlWaitingForFirstDelivery, res.Status)
			} else {
				var app *temporal.ApplicationError
				app, res = requireCrawlFailed(t, env, ErrTypeExportNotFound)
				require.Contains(t, app.Error(), "export not found under "+crawlSource)
				require.Contains(t, app.Error(), "2026-11 2026-10")
			}
			require.Equal(t, map[string]string{"2026-11": ActionNoDelivery, "2026-10": ActionNoDelivery}, actions(res))
			require.Empty(t, f.children)
		})
	}

	t.Run("an unreadable delivery is not a missing export", func(t *testing.T) {
		f := &crawlFakes{bucket: map[string]crawl.Delivery{"2026-10": {Found: true, AssemblyID: "a", Error: "bad manifest"}}}
		env := newCrawlTestEnv(f, crawlT0)
		in := crawlInput()
		in.ActiveSince = crawlT0 // within the grace: still a failure
		env.ExecuteWorkflow(CrawlPayer, in)
		requireCrawlFailed(t, env, "IngestionFailed")
	})

	t.Run("an unchanged delivery is not a missing export", func(t *testing.T) {
		f := &crawlFakes{bucket: map[string]crawl.Delivery{"2026-10": {Found: true, AssemblyID: "a", Committed: "a"}}}
		env := newCrawlTestEnv(f, crawlT0)
		in := crawlInput()
		in.ActiveSince = time.Time{}
		env.ExecuteWorkflow(CrawlPayer, in)
		res := requireCrawlDone(t, env)
		require.Equal(t, CrawlDone, res.Status)
		require.Equal(t, map[string]string{"2026-11": ActionNoDelivery, "2026-10": ActionUnchanged}, actions(res))
	})
}

func TestCrawlRefreshAccounts(t *testing.T) {
	bucket := map[string]crawl.Delivery{"2026-11": {Found: true, AssemblyID: "a-nov"}}

	t.Run("recorded", func(t *testing.T) {
		changes := crawl.AccountChanges{Accounts: 3, New: []string{"777788889999"}, Closed: []string{connectedAcct}}
		f := &crawlFakes{bucket: bucket, accounts: changes}
		env := newCrawlTestEnv(f, crawlT0)
		env.ExecuteWorkflow(CrawlPayer, crawlInput())
		res := requireCrawlDone(t, env)
		require.Equal(t, &changes, res.Accounts)
		require.Empty(t, res.AccountsError)
	})

	t.Run("a failure does not fail the crawl", func(t *testing.T) {
		f := &crawlFakes{bucket: bucket, accountsErr: errors.New("AccessDenied: organizations:ListAccounts")}
		env := newCrawlTestEnv(f, crawlT0)
		env.ExecuteWorkflow(CrawlPayer, crawlInput())
		res := requireCrawlDone(t, env)

		require.Nil(t, res.Accounts)
		require.Contains(t, res.AccountsError, "AccessDenied: organizations:ListAccounts")
		require.Equal(t, CrawlDone, res.Status)
		require.Len(t, f.refreshed, 5, "retried as a short activity")
		for _, r := range f.refreshed {
			require.Equal(t, crawlT0, r.At, "every attempt reports the crawl's time")
		}
		// The billing data is still crawled.
		require.Len(t, f.discovered, 1)
		require.Equal(t, map[string]string{"2026-11": ActionIngested, "2026-10": ActionNoDelivery}, actions(res))
		require.Len(t, f.children, 1)
	})

	t.Run("a non-retryable failure is recorded at once", func(t *testing.T) {
		f := &crawlFakes{bucket: bucket, accountsErr: temporal.NewNonRetryableApplicationError("not the management account", "NotManagementAccount", nil)}
		env := newCrawlTestEnv(f, crawlT0)
		env.ExecuteWorkflow(CrawlPayer, crawlInput())
		res := requireCrawlDone(t, env)
		require.Len(t, f.refreshed, 1)
		require.True(t, strings.HasPrefix(res.AccountsError, "not the management account"), res.AccountsError)
	})
}

func TestCrawlCostExplorer(t *testing.T) {
	ceResult := crawl.IngestCostExplorerResult{Rows: 420, Calls: 3, Pages: 3, SnapshotID: 9, Unblended: money.MustParse("1234.5"), Currency: "USD", Accounts: []string{testPayer, connectedAcct}}
	for _, tc := range []struct {
		name     string
		start    time.Time
		lookback int
		periods  []string
		from, to string // "" when nothing is pulled
	}{
		{name: "mid-month: previous month to today", start: crawlT0, from: "2026-10-01", to: "2026-11-14"},
		{name: "lookback 2", start: crawlT0, lookback: 2, from: "2026-09-01", to: "2026-11-14"},
		{name: "late on the last day", start: time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC), from: "2026-10-01", to: "2026-11-30"},
		// On the 1st the previous month is complete: it is pulled up to
		// (excluding) today.
		{name: "1st of the month", start: time.Date(2026, 11, 1, 0, 20, 0, 0, time.UTC), from: "2026-10-01", to: "2026-11-01"},
		// The current period alone has no complete day on the 1st.
		{name: "1st of the month, current period only", start: time.Date(2026, 11, 1, 0, 20, 0, 0, time.UTC), periods: []string{"2026-11"}},
		{name: "2nd of the month, current period only", start: time.Date(2026, 11, 2, 0, 20, 0, 0, time.UTC), periods: []string{"2026-11"}, from: "2026-11-01", to: "2026-11-02"},
		{name: "backfill of past periods in any order", start: crawlT0, periods: []string{"2026-03", "2026-01", "2026-02"}, from: "2026-01-01", to: "2026-04-01"},
		{name: "backfill up to now", start: crawlT0, periods: []string{"2026-09", "2026-11"}, from: "2026-09-01", to: "2026-11-14"},
		{name: "future period", start: crawlT0, periods: []string{"2026-12"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes := crawl.AccountChanges{Accounts: 2, First: true}
			f := &crawlFakes{ceResult: ceResult, accounts: changes}
			env := newCrawlTestEnv(f, tc.start)
			in := crawlInput()
			in.CostExplorer, in.Lookback, in.Periods = true, tc.lookback, parsePeriods(tc.periods...)
			in.Source = ""
			env.ExecuteWorkflow(CrawlPayer, in)
			res := requireCrawlDone(t, env)

			require.Empty(t, f.discovered, "Cost Explorer payers have no export")
			require.Empty(t, f.children)
			require.Empty(t, res.Periods)
			require.Equal(t, CrawlDone, res.Status)
			require.Len(t, f.refreshed, 1, "the accounts are refreshed all the same")
			require.Equal(t, &changes, res.Accounts)
			if tc.from == "" {
				require.Empty(t, f.ce, "nothing to pull")
				require.Nil(t, res.CostExplorer)
				return
			}
			require.Equal(t, []crawl.IngestCostExplorerInput{{PayerAccountID: testPayer, CustomerID: "acme", Access: crawlAccess, Start: tc.from, End: tc.to}}, f.ce)
			require.Equal(t, &ceResult, res.CostExplorer)
		})
	}

	t.Run("a rejected pull fails the crawl", func(t *testing.T) {
		f := &crawlFakes{ceErr: temporal.NewNonRetryableApplicationError("AccessDeniedException", crawl.ErrTypeCostExplorerRejected, nil)}
		env := newCrawlTestEnv(f, crawlT0)
		in := crawlInput()
		in.CostExplorer = true
		env.ExecuteWorkflow(CrawlPayer, in)
		require.True(t, env.IsWorkflowCompleted())
		var app *temporal.ApplicationError
		require.ErrorAs(t, env.GetWorkflowError(), &app)
		require.Equal(t, crawl.ErrTypeCostExplorerRejected, app.Type())
		require.Len(t, f.ce, 1)
	})
}

func TestPeriodRange(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		max      int
		want     []string
		err      string
	}{
		{from: "2026-10", to: "2026-10", max: 1, want: []string{"2026-10"}},
		{from: "2026-10", to: "2027-02", max: 12, want: []string{"2026-10", "2026-11", "2026-12", "2027-01", "2027-02"}},
		{from: "2026-01", to: "2026-12", max: 12, want: []string{"2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"}},
		{from: "2026-01", to: "2027-01", max: 12, err: "more than 12 periods from 2026-01 to 2027-01"},
		{from: "2026-01", to: "2026-03", max: 2, err: "more than 2 periods from 2026-01 to 2026-03"},
		{from: "2026-11", to: "2026-10", max: 12, err: "2026-11 is after 2026-10"},
		{from: "2027-01", to: "2026-12", max: 12, err: "2027-01 is after 2026-12"},
		{from: "2026-1", to: "2026-10", max: 12, err: `invalid billing period "2026-1": want YYYY-MM`},
		{from: "2026-10", to: "2026-13", max: 12, err: `invalid billing period "2026-13": want YYYY-MM`},
		{from: "2026-10-01", to: "2026-11", max: 12, err: `invalid billing period "2026-10-01": want YYYY-MM`},
		{from: "", to: "2026-11", max: 12, err: `invalid billing period "": want YYYY-MM`},
		{from: "2026-10", to: "Nov 2026", max: 12, err: `invalid billing period "Nov 2026": want YYYY-MM`},
	} {
		t.Run(tc.from+"_"+tc.to, func(t *testing.T) {
			got, err := PeriodRange(tc.from, tc.to, tc.max)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, p := range got {
				names = append(names, p.String())
			}
			require.Equal(t, tc.want, names)
		})
	}
}

// TestCrawlInputFromBeforeCustomer: a schedule saved before crawls named
// the customer holds an input without customer_id; it still crawls and
// ingests, its role sessions just without the customer.
func TestCrawlInputFromBeforeCustomer(t *testing.T) {
	in := crawlInput()
	in.CustomerID = ""
	js, err := json.Marshal(in)
	require.NoError(t, err)
	old := strings.Replace(string(js), `"customer_id":"",`, "", 1)
	require.NotContains(t, old, "customer_id")
	var decoded CrawlPayerInput
	require.NoError(t, json.Unmarshal([]byte(old), &decoded))

	f := &crawlFakes{bucket: map[string]crawl.Delivery{"2026-11": {Found: true, AssemblyID: "a-nov"}}}
	env := newCrawlTestEnv(f, crawlT0)
	env.ExecuteWorkflow(CrawlPayer, decoded)
	res := requireCrawlDone(t, env)
	require.Equal(t, ActionIngested, actions(res)["2026-11"])
	require.Empty(t, f.discovered[0].CustomerID)
	require.Len(t, f.children, 1)
	require.Empty(t, f.children[0].Input.CustomerID)
	in2, err := json.Marshal(f.children[0].Input)
	require.NoError(t, err)
	require.NotContains(t, string(in2), "customer_id", "an ingestion without a customer carries no empty field")
}
