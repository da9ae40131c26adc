package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/period"
)

// CrawlPayer finds what changed in a payer's export and ingests exactly
// that: it refreshes the organization's accounts, lists the deliveries of
// the current and previous periods (or the periods of a backfill),
// compares each report's assembly with the one the table holds for it,
// and runs
// IngestBillingPeriod for the new and restated ones as children with the
// period's stable ID, so one period is never ingested twice at once. For
// Cost Explorer payers it pulls daily costs instead. A successful crawl
// is recorded (see crawl_record.go).
func crawlPayer(ctx workflow.Context, in CrawlPayerInput) (*CrawlPayerResult, error) {
	res := &CrawlPayerResult{PayerAccountID: in.PayerAccountID, Status: CrawlDone}
	if err := workflow.SetQueryHandler(ctx, CrawlProgressQuery, func() (*CrawlPayerResult, error) { return res, nil }); err != nil {
		return nil, err
	}
	// Which periods are current is a business date; how long the payer
	// has waited for its first delivery is Temporal time, like ActiveSince.
	now := businessNow(ctx)
	short := shortActivity(ctx)

	var changes crawl.AccountChanges
	err := crawl.RefreshAccounts.Execute(short, crawl.RefreshAccountsInput{
		PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID, Access: in.Access, At: now,
	}).Get(ctx, &changes)
	if err != nil {
		// The accounts are a report; the billing data is the job.
		res.AccountsError = rootMessage(err)
	} else {
		res.Accounts = &changes
	}

	if in.Export != nil && workflow.GetVersion(ctx, exportHealthChange, workflow.DefaultVersion, 1) == 1 {
		res.Export = exportHealth(short, ctx, in)
	}

	if in.CostExplorer {
		return crawlCostExplorer(ctx, in, now, res)
	}

	periods := in.Periods
	if len(periods) == 0 {
		periods = recentPeriods(now, in.Lookback)
	}
	found, err := discover(ctx, short, in, periods)
	if err != nil {
		return nil, err
	}

	var children []workflow.ChildWorkflowFuture
	var pending []int
	anyFound := false
	for _, d := range found.Deliveries {
		o := PeriodOutcome{Delivery: d}
		switch {
		case !d.Found:
			o.Action = ActionNoDelivery
		case d.Error != "":
			anyFound = true
			o.Action, o.Failure = ActionFailed, d.Error
		case !d.Changed():
			anyFound = true
			o.Action = ActionUnchanged
		default:
			anyFound = true
			source, access := in.sourceFor(d.Period)
			o.IngestionID = IngestWorkflowID(in.PayerAccountID, source, d.Period)
			child := IngestBillingPeriodInput{
				Source: source, Period: d.Period, PayerAccountID: in.PayerAccountID, BillPayerAccountID: in.BillPayerAccountID, Access: &access, Accounts: in.Accounts,
				CustomerID: in.CustomerID, Retake: d.AccountsChanged,
			}
			// Start-time attributes and summary: part of the child's start,
			// no command of their own, so older histories replay.
			attrs, summary := ingestionRun(child)
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:            o.IngestionID,
				TaskQueue:             TaskQueue,
				ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
				WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				TypedSearchAttributes: attrs,
				StaticSummary:         summary,
			})
			children = append(children, workflow.ExecuteChildWorkflow(cctx, IngestBillingPeriod, child))
			pending = append(pending, len(res.Periods))
		}
		res.Periods = append(res.Periods, o)
	}
	for i, f := range children {
		o := &res.Periods[pending[i]]
		if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			var started *temporal.ChildWorkflowExecutionAlreadyStartedError
			if errors.As(err, &started) {
				o.Action = ActionAlreadyRunning
			} else {
				o.Action, o.Failure = ActionFailed, rootMessage(err)
			}
			continue
		}
		var r IngestBillingPeriodResult
		if err := f.Get(ctx, &r); err != nil {
			o.Action, o.Failure = ActionFailed, rootMessage(err)
			continue
		}
		o.Action, o.Rows = ActionIngested, r.Rows
		if r.Unchanged || r.Superseded {
			o.Action = ActionUnchanged
		}
	}

	// A backfill may reach back before the export existed: its empty
	// periods are outcomes, not a missing export.
	if !anyFound && len(in.Periods) == 0 {
		if workflow.Now(ctx).Sub(in.ActiveSince) < FirstDeliveryGrace {
			res.Status = CrawlWaitingForFirstDelivery
			return res, nil
		}
		// The outcomes travel as the failure's details: a failed
		// workflow's result is not kept.
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("export not found under %s: no delivery for %v", in.Source, periods), ErrTypeExportNotFound, nil, res)
	}
	for _, o := range res.Periods {
		if o.Action == ActionFailed {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("period %s of %s: %s", o.Period, in.Source, o.Failure), ErrTypeIngestionFailed, nil, res)
		}
	}
	return res, nil
}

// discover lists the deliveries of periods, in the order asked, each from
// the one export it is taken from: during a cut-over (in.Cutover) the
// periods before its first are looked up in the previous export only,
// the others in the current one only.
func discover(ctx, actx workflow.Context, in CrawlPayerInput, periods []period.Period) (crawl.DiscoverDeliveriesResult, error) {
	var found crawl.DiscoverDeliveriesResult
	// A period the table holds under another account policy is taken
	// again: the payer's connected accounts changed.
	accounts := keptAccounts(in.PayerAccountID, in.BillPayerAccountID, in.Accounts).Fingerprint()
	if in.Cutover == nil {
		access := in.Access
		err := crawl.DiscoverDeliveries.Execute(actx, crawl.DiscoverDeliveriesInput{
			PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID, Source: in.Source, Access: &access, Periods: periods, Accounts: accounts,
		}).Get(ctx, &found)
		return found, err
	}
	// Only inputs with a cut-over, which no older run has, come here.
	workflow.GetVersion(ctx, exportCutoverChange, workflow.DefaultVersion, 1)
	var before, from []period.Period
	for _, p := range periods {
		if p.Before(in.Cutover.From) {
			before = append(before, p)
		} else {
			from = append(from, p)
		}
	}
	byPeriod := map[period.Period]crawl.Delivery{}
	for _, group := range [][]period.Period{before, from} {
		if len(group) == 0 {
			continue
		}
		source, access := in.sourceFor(group[0])
		var res crawl.DiscoverDeliveriesResult
		if err := crawl.DiscoverDeliveries.Execute(actx, crawl.DiscoverDeliveriesInput{
			PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID, Source: source, Access: &access, Periods: group, Accounts: accounts,
		}).Get(ctx, &res); err != nil {
			return found, err
		}
		for _, d := range res.Deliveries {
			byPeriod[d.Period] = d
		}
	}
	for _, p := range periods {
		if d, ok := byPeriod[p]; ok {
			found.Deliveries = append(found.Deliveries, d)
		}
	}
	return found, nil
}

// CrawlProgressQuery returns the CrawlPayerResult so far.
const CrawlProgressQuery = "progress"

// recentPeriods is the month of now and lookback months before it, newest
// first.
func recentPeriods(now time.Time, lookback int) []period.Period {
	if lookback <= 0 {
		lookback = 1
	}
	month := period.Of(now)
	periods := make([]period.Period, 0, lookback+1)
	for i := 0; i <= lookback; i++ {
		periods = append(periods, month.Add(-i))
	}
	return periods
}

// PeriodRange lists the periods from..to (YYYY-MM), oldest first, at most
// max of them.
func PeriodRange(from, to string, max int) ([]period.Period, error) {
	start, err := period.Parse(from)
	if err != nil {
		return nil, err
	}
	end, err := period.Parse(to)
	if err != nil {
		return nil, err
	}
	if end.Before(start) {
		return nil, fmt.Errorf("%s is after %s", from, to)
	}
	if n := end.MonthsSince(start) + 1; n > max {
		return nil, fmt.Errorf("more than %d periods from %s to %s", max, from, to)
	}
	var out []period.Period
	for m := start; !end.Before(m); m = m.Next() {
		out = append(out, m)
	}
	return out, nil
}

// crawlCostExplorer pulls the daily costs of the crawl's periods (from the
// first day of the oldest to today) from Cost Explorer.
func crawlCostExplorer(ctx workflow.Context, in CrawlPayerInput, now time.Time, res *CrawlPayerResult) (*CrawlPayerResult, error) {
	periods := in.Periods
	if len(periods) == 0 {
		periods = recentPeriods(now, in.Lookback)
	}
	first, last := slices.MinFunc(periods, period.Period.Compare), slices.MaxFunc(periods, period.Period.Compare)
	start, end := first.Start(), last.End()
	if today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC); end.After(today) {
		end = today
	}
	if !end.After(start) {
		return res, nil // the first day of the month: nothing complete yet
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})
	var ce crawl.IngestCostExplorerResult
	if err := crawl.IngestCostExplorer.Execute(actx, crawl.IngestCostExplorerInput{
		PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID, Access: in.Access,
		Start: start.Format(time.DateOnly), End: end.Format(time.DateOnly),
	}).Get(ctx, &ce); err != nil {
		return res, err
	}
	res.CostExplorer = &ce
	return res, nil
}

// rootMessage is the innermost message of a workflow-side error chain,
// without Temporal's "(type: …, retryable: …)" decoration.
// exportHealth reads the export's own state; like the accounts, it is a
// report and never fails the crawl.
func exportHealth(actx, ctx workflow.Context, in CrawlPayerInput) *crawl.ExportHealth {
	var h crawl.ExportHealth
	err := crawl.CheckExportHealth.Execute(actx, crawl.ExportHealthInput{
		PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID, Access: in.Access, Export: *in.Export,
	}).Get(ctx, &h)
	if err != nil {
		return &crawl.ExportHealth{Result: onboard.Failed, Message: "could not read the export's state: " + rootMessage(err)}
	}
	return &h
}

func rootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			var app *temporal.ApplicationError
			if errors.As(err, &app) {
				return app.Message()
			}
			return err.Error()
		}
		err = next
	}
}
