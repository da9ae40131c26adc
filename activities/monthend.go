package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	ce "github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/webhook"
	"github.com/costlake/costlake/lakehouse"
)

// MonthEnd holds the month-end workflows' activities: which cycles are
// due, the finality, freshness and Cost Explorer guards, webhook
// deliveries, crawl records and the operator's holds and acceptances.
type MonthEnd struct {
	Lake     *lakehouse.Lake
	Reseller *reseller.Store
	// AWS asks Cost Explorer with the payer's role.
	AWS
	CostExplorer CostExplorerTuning
	// Webhooks delivers events to the reseller's endpoint.
	Webhooks webhook.Sender
}

func monthEndError(typ, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}

func (a *MonthEnd) store() (*reseller.Store, error) {
	if a.Reseller == nil {
		return nil, monthEndError(monthend.ErrTypeSetup, "the worker has no reseller records")
	}
	return a.Reseller, nil
}

// PlanMonthEnd lists every customer owning accounts in the period, with
// whether its cycle is closed and its hold.
func (a *MonthEnd) PlanMonthEnd(ctx context.Context, in monthend.PlanInput) (monthend.Plan, error) {
	plan := monthend.Plan{Customers: []monthend.CustomerPlan{}}
	store, err := a.store()
	if err != nil {
		return plan, err
	}
	if in.Period.IsZero() {
		return plan, monthEndError(monthend.ErrTypeInvalid, "no period: want YYYY-MM")
	}
	owners, err := store.Owners(ctx, in.Period.String())
	if err != nil {
		return plan, err
	}
	// Without an endpoint there is nothing to announce; events are not
	// kept for an endpoint set later.
	_, err = store.WebhookOf(ctx)
	noEndpoint := errors.Is(err, reseller.ErrNotFound)
	if err != nil && !noEndpoint {
		return plan, err
	}
	ids := map[string]bool{}
	for _, c := range owners {
		if c != "" {
			ids[c] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		p := monthend.CustomerPlan{CustomerID: id}
		if c, err := store.CycleOf(ctx, id, in.Period.String()); err == nil {
			p.Closed, p.ClosedAt = true, c.ClosedAt
			p.Announced = noEndpoint
			if !noEndpoint {
				if p.Announced, err = store.EventDelivered(ctx, monthend.ClosedEventID(id, in.Period)); err != nil {
					return plan, err
				}
			}
		} else if !errors.Is(err, reseller.ErrNotFound) {
			return plan, err
		}
		if h, err := store.HoldOf(ctx, id); err == nil {
			p.Hold = &h
		} else if !errors.Is(err, reseller.ErrNotFound) {
			return plan, err
		}
		plan.Customers = append(plan.Customers, p)
	}
	return plan, nil
}

// CheckCloseGuards tells whether a customer's cycle may close: the
// period is final (cycle.CheckFinal's rule), every payer's last
// successful crawl is newer than MaxCrawlAge, and each owned linked
// account's line items match Cost Explorer's unblended cost within the
// tolerance, unless an operator accepted the payer's difference. The
// guards run in that order and stop at the first that refuses, so a
// period not final yet costs no Cost Explorer query.
func (a *MonthEnd) CheckCloseGuards(ctx context.Context, in monthend.GuardsInput) (monthend.GuardsResult, error) {
	var res monthend.GuardsResult
	store, err := a.store()
	if err != nil {
		return res, err
	}
	if in.Period.IsZero() || !payer.ValidCustomerID(in.CustomerID) {
		return res, monthEndError(monthend.ErrTypeInvalid, "customer %q and period %q: want a customer ID and YYYY-MM", in.CustomerID, in.Period)
	}
	in.Settings = in.Settings.WithDefaults()
	cyc := &Cycle{Lake: a.Lake, Reseller: store}
	fin, err := cyc.CheckCycleFinal(ctx, cycle.CheckFinalInput{CustomerID: in.CustomerID, Period: in.Period, FinalAfterDays: in.FinalAfterDays, AsOf: in.AsOf})
	if err != nil {
		return res, err
	}
	res.Final, res.FinalReason = fin.Final, fin.Reason
	if !fin.Final || fin.Closed {
		return res, nil
	}

	crawls := map[string]reseller.Crawl{}
	for _, p := range fin.Payers {
		c, err := store.LastCrawl(ctx, p.PayerAccountID)
		if err != nil && !errors.Is(err, reseller.ErrNotFound) {
			return res, err
		}
		crawls[p.PayerAccountID] = c
		if c.SucceededAt.IsZero() || in.AsOf.Sub(c.SucceededAt) > in.MaxCrawlAge {
			res.Stale = append(res.Stale, monthend.StalePayer{PayerAccountID: p.PayerAccountID, LastCrawl: c.SucceededAt, MaxAge: in.MaxCrawlAge.String()})
		}
	}
	if len(res.Stale) > 0 {
		var parts []string
		for _, s := range res.Stale {
			when := "never"
			if !s.LastCrawl.IsZero() {
				when = s.LastCrawl.UTC().Format(time.RFC3339)
			}
			parts = append(parts, fmt.Sprintf("payer %s last crawled successfully %s (must be within %s)", s.PayerAccountID, when, s.MaxAge))
		}
		res.Blocked, res.Message = monthend.BlockedStale, strings.Join(parts, "; ")
		return res, nil
	}

	assignments, err := store.CustomerAccounts(ctx, in.CustomerID, in.Period.String())
	if err != nil {
		return res, err
	}
	accepted, err := store.Acceptances(ctx, in.CustomerID, in.Period.String())
	if err != nil {
		return res, err
	}
	committed := map[string]cycle.PayerStatus{}
	for _, p := range fin.Payers {
		committed[p.PayerAccountID] = p
	}
	tolerance := *in.Tolerance
	var blocking []string
	for _, as := range assignments {
		st := committed[as.PayerAccountID]
		if !st.Committed {
			continue // no line items to compare (a Cost Explorer payer's costs are Cost Explorer's)
		}
		diffs, calls, err := a.compareCostExplorer(ctx, in, as, st.SnapshotID, crawls[as.PayerAccountID], tolerance)
		res.CostExplorerCalls += calls
		if err != nil {
			return res, err
		}
		acc, ok := accepted[as.PayerAccountID]
		// An acceptance covers the line items it saw; a restatement since
		// is checked afresh.
		ok = ok && acc.SnapshotID == st.SnapshotID
		for _, d := range diffs {
			d.Accepted, d.AcceptedBy = ok, acc.AcceptedBy
			if !ok {
				blocking = append(blocking, fmt.Sprintf("account %s of payer %s: line items %s, Cost Explorer %s (difference %s, tolerance %s)",
					d.AccountID, d.PayerAccountID, d.LineItems, d.CostExplorer, d.Difference, d.Tolerance))
			}
			res.Differences = append(res.Differences, d)
		}
	}
	if len(blocking) > 0 {
		res.Blocked, res.Message = monthend.BlockedCostExplorer, strings.Join(blocking, "; ")
	}
	return res, nil
}

// compareCostExplorer compares a payer's line items per owned account
// with Cost Explorer: the daily costs a crawl already stored for the
// month, else one monthly query with the crawl's access.
func (a *MonthEnd) compareCostExplorer(ctx context.Context, in monthend.GuardsInput, as reseller.Assignment, snapshot int64,
	crawled reseller.Crawl, tolerance money.Amount) ([]monthend.Difference, int, error) {
	totals, err := a.Lake.PeriodTotals(ctx, billing.LineItems, as.PayerAccountID, in.Period, snapshot)
	if err != nil {
		return nil, 0, err
	}
	lake := map[string]money.Amount{}
	for _, t := range billing.ByAccount(totals) {
		lake[t.Account] = t.UnblendedCost
	}
	start, end := in.Period.Start().Format(costexplorer.DateLayout), in.Period.End().Format(costexplorer.DateLayout)
	explorer := map[string]money.Amount{}
	stored, err := a.Lake.CostExplorerTotals(ctx, as.PayerAccountID, start, end, 0)
	if err != nil {
		return nil, 0, err
	}
	calls := 0
	if len(stored) > 0 {
		for _, t := range stored {
			explorer[t.LinkedAccount] = t.Unblended
		}
	} else {
		costs, n, err := a.monthlyCosts(ctx, in, as.PayerAccountID, crawled.Access, start, end)
		calls = n
		if err != nil {
			return nil, calls, err
		}
		for _, c := range costs {
			explorer[c.LinkedAccount] = c.Unblended
		}
	}
	owns := func(acct string) bool {
		return slices.Contains(as.Accounts, reseller.AllAccounts) || slices.Contains(as.Accounts, acct)
	}
	accounts := map[string]bool{}
	for acct := range lake {
		accounts[acct] = true
	}
	for acct := range explorer {
		accounts[acct] = true
	}
	var out []monthend.Difference
	for _, acct := range slices.Sorted(maps.Keys(accounts)) {
		if !owns(acct) {
			continue
		}
		d := lake[acct].Sub(explorer[acct])
		if abs(d).Cmp(tolerance) > 0 {
			out = append(out, monthend.Difference{PayerAccountID: as.PayerAccountID, AccountID: acct, LineItems: lake[acct],
				CostExplorer: explorer[acct], Difference: d, Tolerance: tolerance})
		}
	}
	return out, calls, nil
}

func abs(a money.Amount) money.Amount {
	if a.Cmp(money.Amount{}) < 0 {
		return money.Amount{}.Sub(a)
	}
	return a
}

// monthlyCosts is the one paid query of a CUR payer's month, kept for
// the day so the payer's other customers reuse it.
func (a *MonthEnd) monthlyCosts(ctx context.Context, in monthend.GuardsInput, payerID string, access payer.Access, start, end string) ([]costexplorer.AccountCost, int, error) {
	day := in.AsOf.UTC().Format(time.DateOnly)
	if body, ok, err := a.Reseller.CostExplorerMonth(ctx, payerID, in.Period.String(), day); err != nil {
		return nil, 0, err
	} else if ok {
		var costs []costexplorer.AccountCost
		if err := json.Unmarshal(body, &costs); err == nil {
			return costs, 0, nil
		}
	}
	access.Region = billingRegion
	cfg, err := a.payerConfig(ctx, access, awsauth.Session{Purpose: "month-end", Payer: payerID, Customer: in.CustomerID})
	if err != nil {
		return nil, 0, err
	}
	client := ce.NewFromConfig(cfg, func(o *ce.Options) {
		if a.CostExplorer.Retryer != nil {
			o.Retryer = a.CostExplorer.Retryer()
		}
	})
	backoff := a.CostExplorer.Backoff
	if backoff.Attempts == 0 {
		backoff = costexplorer.DefaultBackoff
	}
	costs, st, err := costexplorer.MonthlyByAccount(ctx, client, start, end, costexplorer.WithBackoff(backoff))
	if err != nil {
		//lint:ignore ST1005 Cost Explorer is the AWS product's name
		return nil, st.Calls, classifyCostExplorer(fmt.Errorf("Cost Explorer's %s costs of payer %s: %w", in.Period, payerID, err))
	}
	if body, err := json.Marshal(costs); err == nil {
		if err := a.Reseller.PutCostExplorerMonth(ctx, payerID, in.Period.String(), day, body); err != nil {
			return nil, st.Calls, err
		}
	}
	return costs, st.Calls, nil
}

// SendWebhookEvent delivers one event to the reseller's endpoint, signed
// with its secret. An event delivered before (same ID), to no endpoint
// or of a type the endpoint did not subscribe to is skipped. A refused
// or failed delivery returns its error, so Temporal retries it; a URL or
// secret costlake cannot use is not retried.
func (a *MonthEnd) SendWebhookEvent(ctx context.Context, in monthend.Notify) (monthend.NotifyResult, error) {
	var res monthend.NotifyResult
	store, err := a.store()
	if err != nil {
		return res, err
	}
	hook, err := store.WebhookOf(ctx)
	if errors.Is(err, reseller.ErrNotFound) {
		res.Skipped = "no webhook endpoint"
		return res, nil
	} else if err != nil {
		return res, err
	}
	res.WebhookURL = hook.URL
	if !hook.Wants(in.Type) {
		res.Skipped = "not subscribed to " + in.Type
		return res, nil
	}
	if done, err := store.EventDelivered(ctx, in.ID); err != nil {
		return res, err
	} else if done {
		res.Skipped = "delivered before"
		return res, nil
	}
	key, err := webhook.ResolveSecret(hook.SecretRef)
	if err != nil {
		return res, monthEndError(monthend.ErrTypeWebhook, "%v", err)
	}
	res.Status, err = a.Webhooks.Send(ctx, hook.URL, key, webhook.Event{ID: in.ID, Type: in.Type, Timestamp: in.Timestamp, Data: in.Data})
	if errors.Is(err, webhook.ErrURL) {
		return res, monthEndError(monthend.ErrTypeWebhook, "%v", err)
	} else if err != nil {
		if activity.IsActivity(ctx) {
			activity.GetLogger(ctx).Warn("webhook delivery failed; Temporal retries it", "event", in.ID, "type", in.Type, "error", err)
		}
		return res, err
	}
	res.Sent = true
	return res, store.MarkDelivered(ctx, in.ID, in.Type)
}

// RecordCrawlSuccess keeps a payer's newest successful crawl.
func (a *MonthEnd) RecordCrawlSuccess(ctx context.Context, in monthend.CrawlRecord) error {
	store, err := a.store()
	if err != nil {
		return err
	}
	return store.RecordCrawl(ctx, reseller.Crawl{PayerAccountID: in.PayerAccountID, SucceededAt: in.At, Access: in.Access, CostExplorer: in.CostExplorer, RunID: in.RunID})
}

// ApplyMonthEndOperation applies an operator's change: a hold, its
// release, an accepted difference, the webhook endpoint.
func (a *MonthEnd) ApplyMonthEndOperation(ctx context.Context, r monthend.Request) (monthend.Answer, error) {
	var out monthend.Answer
	store, err := a.store()
	if err != nil {
		return out, err
	}
	if fields := r.FieldErrors(a.Webhooks); len(fields) > 0 {
		return out, monthEndError(monthend.ErrTypeInvalid, "%s", monthend.Describe(fields))
	}
	switch {
	case r.Hold != nil:
		h := *r.Hold
		h.HeldBy = r.By
		h, err = store.PutHold(ctx, h)
		out.Hold = &h
	case r.Release != "":
		var h reseller.Hold
		h, err = store.ReleaseHold(ctx, r.Release)
		if errors.Is(err, reseller.ErrNotFound) {
			return out, monthEndError(monthend.ErrTypeNotFound, "%v", err)
		}
		out.Hold = &h
	case r.Accept != nil:
		acc := *r.Accept
		acc.AcceptedBy = r.By
		p, perr := period.Parse(acc.Period)
		if perr != nil {
			return out, monthEndError(monthend.ErrTypeInvalid, "period %q: want YYYY-MM", acc.Period)
		}
		// What is accepted is the payer's line items as committed now.
		c, found, cerr := a.Lake.LatestPeriodCommit(ctx, billing.LineItems, acc.PayerAccountID, p)
		if cerr != nil {
			return out, cerr
		}
		if !found {
			return out, monthEndError(monthend.ErrTypeNotFound, "payer %s has no line items for %s: there is no difference to accept", acc.PayerAccountID, p)
		}
		acc.SnapshotID = c.SnapshotID
		acc, err = store.AcceptDifference(ctx, acc)
		out.Acceptance = &acc
	case r.PutWebhook != nil:
		w := *r.PutWebhook
		w.UpdatedBy = r.By
		w, err = store.PutWebhook(ctx, w)
		out.Webhook = &w
	case r.DeleteWebhook:
		err = store.DeleteWebhook(ctx)
		out.Webhook = &reseller.Webhook{}
	}
	return out, err
}
