package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/period"
)

// A daily crawl that succeeds records its business date and access; a
// backfill and a failed crawl do not.
func TestCrawlPayerRecordsItsSuccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      func() CrawlPayerInput
		fail    bool
		records int
	}{
		{name: "daily crawl", in: crawlInput, records: 1},
		{name: "backfill", in: func() CrawlPayerInput { in := crawlInput(); in.Periods = parsePeriods("2026-01"); return in }},
		{name: "failed crawl", in: crawlInput, fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &crawlFakes{bucket: map[string]crawl.Delivery{
				"2026-11": {Found: true, AssemblyID: "a1"}, "2026-10": {Found: true, AssemblyID: "b1", Committed: "b1"}, "2026-01": {Found: true, AssemblyID: "c1", Committed: "c1"},
			}}
			if tc.fail {
				f.failIngest = map[string]error{"2026-11": context.DeadlineExceeded}
			}
			env := newCrawlTestEnv(f, crawlT0)
			var mu sync.Mutex
			var got []monthend.CrawlRecord
			env.RegisterActivityWithOptions(func(_ context.Context, r monthend.CrawlRecord) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, r)
				return nil
			}, activityName(monthend.RecordCrawlActivity))
			env.ExecuteWorkflow(CrawlPayer, tc.in())
			require.True(t, env.IsWorkflowCompleted())
			require.Len(t, got, tc.records)
			if tc.records == 1 {
				require.Equal(t, testPayer, got[0].PayerAccountID)
				require.Equal(t, crawlAccess, got[0].Access)
				require.True(t, got[0].At.Equal(crawlT0), "recorded at %s, the business date is %s", got[0].At, crawlT0)
			}
		})
	}
}

// An early close freezes at once: no finality check, no wait.
func TestCloseBillingCycleEarly(t *testing.T) {
	f := &cycleFakes{finalOn: 99}
	env := newCycleEnv(f, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(CloseBillingCycle, CloseBillingCycleInput{CustomerID: "acme", Period: period.MustParse("2026-10"), Early: true})
	require.NoError(t, env.GetWorkflowError())
	require.Empty(t, f.checks)
	require.Equal(t, 1, f.freezes)
	require.Equal(t, 1, f.prices)
}

// New runs default to 10 days after the month (the 10th has passed).
func TestCloseBillingCycleDefaultsToTheTenth(t *testing.T) {
	f := &cycleFakes{finalOn: 1}
	env := newCycleEnv(f, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(CloseBillingCycle, CloseBillingCycleInput{CustomerID: "acme", Period: period.MustParse("2026-10")})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 10, f.checks[0].FinalAfterDays)
	require.Equal(t, cycle.DefaultFinalAfterDays, f.checks[0].FinalAfterDays)
}

// Event IDs are stable per fact and differ between facts.
func TestFactID(t *testing.T) {
	require.Equal(t, factID("a", "b"), factID("a", "b"))
	require.NotEqual(t, factID("a", "b"), factID("ab"))
	require.Len(t, factID("x"), 16)
}
