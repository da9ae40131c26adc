package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/searchattr"
	"github.com/costlake/costlake/internal/webhook"
)

// MonthEnd closes the customers' cycles of a period (by default the month
// before the business date) that may close: for each customer owning
// accounts in it, unless it is held, the guards (finality, fresh crawls,
// Cost Explorer) decide, and the cycles that pass are closed by
// CloseBillingCycle children, which write the exports. It announces
// cycle.closed, export.written, cycle.blocked (with the reason and the
// figures) and payer.stale by webhook; each event's ID is stable per
// fact, so a daily run repeats no announcement. A schedule runs it daily
// (worker.EnsureMonthEndSchedule); once every cycle is closed a run only
// reads the records.
func MonthEnd(ctx workflow.Context, in monthend.Input) (*monthend.Result, error) {
	asOf := businessNow(ctx)
	if in.Period.IsZero() {
		in.Period = period.Of(asOf).Prev()
	}
	if f := in.Settings.FieldErrors(); len(f) > 0 {
		//workflowcheck:ignore Describe sorts the field errors before joining them
		return nil, temporal.NewNonRetryableApplicationError("month-end settings: "+monthend.Describe(f), monthend.ErrTypeInvalid, nil)
	}
	set := in.Settings.WithDefaults()
	res := &monthend.Result{Period: in.Period, Closed: []string{}, Already: []string{}, Waiting: []string{}, Blocked: []monthend.Blocked{}}
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 10},
	})
	var plan monthend.Plan
	if err := monthend.PlanMonth.Execute(short, monthend.PlanInput{Period: in.Period}).Get(ctx, &plan); err != nil {
		return nil, err
	}
	n := notifier{ctx: ctx, at: workflow.Now(ctx)}
	p := in.Period.String()

	type closing struct {
		customer string
		future   workflow.ChildWorkflowFuture
	}
	var closes []closing
	for _, c := range plan.Customers {
		switch {
		case c.Closed:
			res.Already = append(res.Already, c.CustomerID)
			if !c.Announced {
				// Closed by an operator (or announced by no run yet).
				n.send(webhook.CycleClosed, monthend.ClosedEventID(c.CustomerID, in.Period), map[string]any{"customer_id": c.CustomerID, "period": p, "closed_at": c.ClosedAt})
			}
			continue
		case c.Hold != nil:
			b := monthend.Blocked{CustomerID: c.CustomerID, Reason: monthend.BlockedHold, Message: fmt.Sprintf("on hold since %s by %s: %s", c.Hold.HeldAt, c.Hold.HeldBy, c.Hold.Reason)}
			res.Blocked = append(res.Blocked, b)
			n.send(webhook.CycleBlocked, "cycle.blocked/"+c.CustomerID+"/"+p+"/"+factID(c.Hold.HeldAt, c.Hold.Reason),
				map[string]any{"customer_id": c.CustomerID, "period": p, "reason": b.Reason, "message": b.Message, "hold": c.Hold})
			continue
		}
		var g monthend.GuardsResult
		if err := monthend.CheckGuards.Execute(short, monthend.GuardsInput{CustomerID: c.CustomerID, Period: in.Period, AsOf: asOf, Settings: set}).Get(ctx, &g); err != nil {
			res.Failed = append(res.Failed, c.CustomerID+": "+rootMessage(err))
			continue
		}
		switch {
		case !g.Final:
			res.Waiting = append(res.Waiting, c.CustomerID)
		case g.Blocked == monthend.BlockedStale:
			res.Blocked = append(res.Blocked, monthend.Blocked{CustomerID: c.CustomerID, Reason: g.Blocked, Message: g.Message})
			var key []string
			for _, s := range g.Stale {
				last := ""
				if !s.LastCrawl.IsZero() {
					last = s.LastCrawl.UTC().Format(time.RFC3339)
				}
				key = append(key, s.PayerAccountID, last)
				// One announcement per payer and last crawl, whichever
				// customer's cycle found it.
				n.send(webhook.PayerStale, "payer.stale/"+s.PayerAccountID+"/"+factID(last), s)
			}
			n.send(webhook.CycleBlocked, "cycle.blocked/"+c.CustomerID+"/"+p+"/"+factID(append(key, g.Blocked)...),
				map[string]any{"customer_id": c.CustomerID, "period": p, "reason": g.Blocked, "message": g.Message, "stale": g.Stale})
		case g.Blocked != "":
			res.Blocked = append(res.Blocked, monthend.Blocked{CustomerID: c.CustomerID, Reason: g.Blocked, Message: g.Message})
			var key []string
			for _, d := range g.Differences {
				if !d.Accepted {
					key = append(key, d.PayerAccountID, d.AccountID, d.LineItems.String(), d.CostExplorer.String())
				}
			}
			n.send(webhook.CycleBlocked, "cycle.blocked/"+c.CustomerID+"/"+p+"/"+factID(append(key, g.Blocked)...),
				map[string]any{"customer_id": c.CustomerID, "period": p, "reason": g.Blocked, "message": g.Message, "differences": g.Differences})
		default:
			child := CloseBillingCycleInput{CustomerID: c.CustomerID, Period: in.Period, FinalAfterDays: set.FinalAfterDays}
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID: CycleWorkflowID(c.CustomerID, in.Period),
				TaskQueue:  TaskQueue,
				// A close outlives the run that started it.
				ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
				WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				TypedSearchAttributes: searchattr.Run{Kind: searchattr.KindCycle, Customer: c.CustomerID, Period: in.Period}.Attributes(),
				StaticSummary:         fmt.Sprintf("month-end close of the %s cycle of customer %s", in.Period, c.CustomerID),
			})
			closes = append(closes, closing{c.CustomerID, workflow.ExecuteChildWorkflow(cctx, CloseBillingCycle, child)})
		}
	}
	for _, cl := range closes {
		if err := cl.future.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			var started *temporal.ChildWorkflowExecutionAlreadyStartedError
			if errors.As(err, &started) {
				// An operator's close is running; it closes the cycle, and
				// the next run announces it.
				res.Waiting = append(res.Waiting, cl.customer)
			} else {
				res.Failed = append(res.Failed, cl.customer+": "+rootMessage(err))
			}
			continue
		}
		var r CloseBillingCycleResult
		if err := cl.future.Get(ctx, &r); err != nil {
			msg := rootMessage(err)
			res.Failed = append(res.Failed, cl.customer+": "+msg)
			res.Blocked = append(res.Blocked, monthend.Blocked{CustomerID: cl.customer, Reason: monthend.BlockedCloseFailed, Message: msg})
			n.send(webhook.CycleBlocked, "cycle.blocked/"+cl.customer+"/"+p+"/"+factID(monthend.BlockedCloseFailed, msg),
				map[string]any{"customer_id": cl.customer, "period": p, "reason": monthend.BlockedCloseFailed, "message": msg})
			continue
		}
		res.Closed = append(res.Closed, cl.customer)
		n.send(webhook.CycleClosed, monthend.ClosedEventID(cl.customer, in.Period), map[string]any{
			"customer_id": cl.customer, "period": p, "closed_at": r.ClosedAt, "pricebook_version": r.PricebookVersion,
			"snapshots": r.Snapshots, "rows": r.Rows, "total": r.Bill.Total, "due": r.Bill.Due, "exports": r.ExportKeys,
		})
		for _, e := range r.Exports {
			n.send(webhook.ExportWritten, "export.written/"+cl.customer+"/"+p+"/"+factID(e.URL), map[string]any{
				"customer_id": cl.customer, "period": p, "payer_account_id": e.PayerAccountID, "mode": e.Mode,
				"url": e.URL, "files": e.Files, "rows": e.Rows, "unblended_cost": e.UnblendedCost,
			})
		}
	}
	slices.Sort(res.Waiting)
	if len(res.Failed) > 0 {
		// The others went ahead; these are retried by tomorrow's run.
		workflow.GetLogger(ctx).Error("month-end could not check or close some cycles", "period", p, "failed", res.Failed)
	}
	res.Done = len(res.Already)+len(res.Closed) == len(plan.Customers)
	// Announcements are retried on their own; the run waits for them so
	// its result says the events went out.
	if err := n.wait(); err != nil {
		return res, err
	}
	return res, nil
}

// factID is a short stable digest of what makes an event a new fact.
func factID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// notifier sends events through the SendWebhookEvent activity, each
// retried by Temporal for hours with back-off.
type notifier struct {
	ctx     workflow.Context
	at      time.Time
	futures []workflow.Future
	failed  []string
}

func (n *notifier) send(typ, id string, data any) {
	// encoding/json writes struct fields in order and map keys sorted; what
	// workflowcheck sees is its reflection cache.
	body, err := json.Marshal(data) //workflowcheck:ignore deterministic output, see above
	if err != nil {
		n.failed = append(n.failed, id+": "+err.Error())
		return
	}
	actx := workflow.WithActivityOptions(n.ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 6 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Minute,
			NonRetryableErrorTypes: []string{monthend.ErrTypeWebhook, monthend.ErrTypeSetup}},
	})
	n.futures = append(n.futures, monthend.Send.Execute(actx, monthend.Notify{ID: id, Type: typ, Timestamp: n.at, Data: body}).Underlying())
}

func (n *notifier) wait() error {
	for _, f := range n.futures {
		if err := f.Get(n.ctx, nil); err != nil {
			n.failed = append(n.failed, rootMessage(err))
		}
	}
	if len(n.failed) > 0 {
		return temporal.NewApplicationError("webhook deliveries failed: "+strings.Join(n.failed, "; "), "WebhookFailed")
	}
	return nil
}

// MonthEndRequest applies one operator change to the month-end records
// (a hold, its release, an accepted difference, the webhook endpoint) as
// a durable, visible step, like CustomerRequest.
func MonthEndRequest(ctx workflow.Context, r monthend.Request) (monthend.Answer, error) {
	var out monthend.Answer
	err := monthend.Apply.Execute(customerActivity(ctx), r).Get(ctx, &out)
	return out, err
}

// MonthEndRequestStartOptions are the options of a MonthEndRequest: one
// change at a time per customer (or to the webhook endpoint), like a
// customer's changes.
func MonthEndRequestStartOptions(r monthend.Request) client.StartWorkflowOptions {
	key := "webhook"
	var customer string
	switch {
	case r.Hold != nil:
		customer = r.Hold.CustomerID
	case r.Release != "":
		customer = r.Release
	case r.Accept != nil:
		customer = r.Accept.CustomerID
	}
	if customer != "" {
		key = "customer/" + customer
	}
	return client.StartWorkflowOptions{
		ID:                       "month-end-change/" + key,
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: 5 * time.Minute,
		// A second change while one runs is a conflict, not a join.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    searchattr.Run{Kind: searchattr.KindMonthEndChange, Customer: customer}.Attributes(),
		StaticSummary:                            "month-end change: " + r.Op(),
	}
}

// StartMonthEnd starts a month-end run of a period now (an operator's
// "run it today"), or joins the one in progress.
func StartMonthEnd(ctx context.Context, c client.Client, in monthend.Input) (client.WorkflowRun, error) {
	opts := client.StartWorkflowOptions{
		ID:                       monthend.WorkflowID(in.Period),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    searchattr.Run{Kind: searchattr.KindMonthEnd, Period: in.Period}.Attributes(),
		StaticSummary:            fmt.Sprintf("month-end of %s", in.Period),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, monthend.Workflow, in)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", opts.ID, err)
	}
	return run, nil
}
