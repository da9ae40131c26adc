package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
)

type cycleFakes struct {
	mu       sync.Mutex
	finalOn  int       // the check that first answers final (1-based)
	business time.Time // the business clock; zero follows the test clock
	checks   []cycle.CheckFinalInput
	freezes  int
	prices   int
	priceErr error
}

func (f *cycleFakes) check(_ context.Context, in cycle.CheckFinalInput) (cycle.CheckFinalResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks = append(f.checks, in)
	final := len(f.checks) >= f.finalOn
	return cycle.CheckFinalResult{Final: final, Reason: "test", Payers: []cycle.PayerStatus{{PayerAccountID: "111122223333", Committed: true, Invoiced: final}}}, nil
}

func (f *cycleFakes) freeze(_ context.Context, in cycle.FreezeInput) (cycle.FreezeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.freezes++
	return cycle.FreezeResult{PricebookVersion: 2, Snapshots: map[string]int64{"111122223333": 77}, ClosedAt: "2026-10-06T00:00:00Z"}, nil
}

func (f *cycleFakes) price(_ context.Context, in cycle.PriceInput) (cycle.PriceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prices++
	if f.priceErr != nil {
		return cycle.PriceResult{}, f.priceErr
	}
	return cycle.PriceResult{
		Bill: pricing.Bill{CustomerID: in.CustomerID, Period: in.Period.String(), Total: money.MustParse("12.5"), Due: money.MustParse("12.5")},
		Rows: 10, ResaleSnapshotID: 5,
		Exports: []cycle.ExportRef{{URL: "s3://acme/bills/at-resale/111122223333-manifest.json", PayerAccountID: "111122223333", Mode: "at_resale"}},
	}, nil
}

func newCycleEnv(f *cycleFakes, start time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflow(CloseBillingCycle)
	registerClock(env, f.business)
	env.RegisterActivityWithOptions(f.check, activityName(cycle.CheckFinalActivity))
	env.RegisterActivityWithOptions(f.freeze, activityName(cycle.FreezeActivity))
	env.RegisterActivityWithOptions(f.price, activityName(cycle.PriceAndExportActivity))
	return env
}

// The workflow checks, sleeps CheckEvery, checks again until the period is
// final, then freezes and prices once; the query shows the wait.
func TestCloseBillingCycleWaitsUntilFinal(t *testing.T) {
	f := &cycleFakes{finalOn: 3}
	start := time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC) // September is final on October 6
	env := newCycleEnv(f, start)
	var mid cycle.Status
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(CycleStatusQuery)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&mid); err != nil {
			t.Errorf("query result: %v", err)
		}
	}, 30*time.Hour)
	env.ExecuteWorkflow(CloseBillingCycle, CloseBillingCycleInput{CustomerID: "acme", Period: period.MustParse("2026-09"), CheckEvery: 24 * time.Hour})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res CloseBillingCycleResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(f.checks) != 3 || f.freezes != 1 || f.prices != 1 {
		t.Fatalf("checks %d, freezes %d, prices %d", len(f.checks), f.freezes, f.prices)
	}
	if got := f.checks[1].AsOf.Sub(f.checks[0].AsOf); got != 24*time.Hour {
		t.Fatalf("second check %v after the first, want 24h", got)
	}
	if f.checks[0].FinalAfterDays != cycle.DefaultFinalAfterDays {
		t.Fatalf("FinalAfterDays %d, want the default", f.checks[0].FinalAfterDays)
	}
	if mid.Stage != cycle.StatusWaiting || mid.Checks != 2 || !mid.NextCheck.Equal(start.Add(48*time.Hour)) {
		t.Fatalf("status while waiting: %+v", mid)
	}
	if res.PricebookVersion != 2 || res.Snapshots["111122223333"] != 77 || res.Bill.Total.String() != "12.5" ||
		len(res.ExportKeys) != 1 || res.ExportKeys[0] != "s3://acme/bills/at-resale/111122223333-manifest.json" {
		t.Fatalf("result %+v", res)
	}
	v, err := env.QueryWorkflow(CycleStatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var end cycle.Status
	if err := v.Get(&end); err != nil || end.Stage != cycle.StatusDone || end.Snapshots["111122223333"] != 77 {
		t.Fatalf("final status %+v (%v)", end, err)
	}
}

// Before the final date, a long CheckEvery is cut short so the workflow
// wakes up when the period becomes final by date.
func TestCloseBillingCycleWakesAtTheFinalDate(t *testing.T) {
	f := &cycleFakes{finalOn: 2}
	start := time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC)
	env := newCycleEnv(f, start)
	env.ExecuteWorkflow(CloseBillingCycle, CloseBillingCycleInput{CustomerID: "acme", Period: period.MustParse("2026-09"), FinalAfterDays: 5, CheckEvery: 7 * 24 * time.Hour})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.checks) != 2 || !f.checks[1].AsOf.Equal(time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("checks %+v", f.checks)
	}
}

// Finality is judged on the business clock, not on Temporal's: a worker
// whose clock says October 7 closes September at once, although Temporal's
// clock is still on October 2.
func TestCloseBillingCycleJudgesByTheBusinessClock(t *testing.T) {
	business := time.Date(2026, 10, 7, 9, 0, 0, 0, time.UTC)
	f := &cycleFakes{finalOn: 1, business: business}
	env := newCycleEnv(f, time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(CloseBillingCycle, CloseBillingCycleInput{CustomerID: "acme", Period: period.MustParse("2026-09")})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.checks) != 1 || !f.checks[0].AsOf.Equal(business) {
		t.Fatalf("checks %+v, want one as of %s", f.checks, business)
	}
}

func TestCloseBillingCycleRejectsBadInput(t *testing.T) {
	for _, in := range []CloseBillingCycleInput{{CustomerID: "acme"}, {CustomerID: "Acme/x", Period: period.MustParse("2026-09")}} {
		f := &cycleFakes{finalOn: 1}
		env := newCycleEnv(f, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		env.ExecuteWorkflow(CloseBillingCycle, in)
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != cycle.ErrTypeInvalidInput {
			t.Fatalf("%+v: %v", in, err)
		}
		if len(f.checks) != 0 {
			t.Fatalf("%+v: checked %d times", in, len(f.checks))
		}
	}
	// A month that does not exist does not even decode: the run fails
	// naming it, before any step.
	f := &cycleFakes{finalOn: 1}
	env := newCycleEnv(f, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow("CloseBillingCycle", map[string]string{"CustomerID": "acme", "Period": "2026-13"})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), `"2026-13"`) {
		t.Fatalf("period 2026-13: %v, want a failure naming it", err)
	}
	if len(f.checks) != 0 {
		t.Fatalf("period 2026-13: checked %d times", len(f.checks))
	}
}

// A failed pricing fails the workflow with its named error; the status
// says failed.
func TestCloseBillingCycleReportsPricingFailure(t *testing.T) {
	f := &cycleFakes{finalOn: 1, priceErr: temporal.NewNonRetryableApplicationError("gone", cycle.ErrTypeSnapshotGone, nil)}
	env := newCycleEnv(f, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(CloseBillingCycle, CloseBillingCycleInput{CustomerID: "acme", Period: period.MustParse("2026-09")})
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != cycle.ErrTypeSnapshotGone {
		t.Fatalf("error %v", err)
	}
	if f.prices != 1 {
		t.Fatalf("priced %d times, want once (non-retryable)", f.prices)
	}
}

func TestCycleWorkflowIDs(t *testing.T) {
	if got := CycleWorkflowID("acme", period.MustParse("2026-09")); got != "cycle/acme/2026-09" {
		t.Fatal(got)
	}
	if got := ResellerExportWorkflowID(period.MustParse("2026-09")); got != "reseller-export/2026-09" {
		t.Fatal(got)
	}
}
