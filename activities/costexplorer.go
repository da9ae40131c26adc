package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ce "github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/lakehouse"
)

// CostExplorerTuning tunes Cost Explorer crawls. Workers keep the zero
// value; tests shorten the waits so that throttling runs in milliseconds.
type CostExplorerTuning struct {
	// Backoff is the back-off between tries of a page whose throttling
	// outlasted the SDK's retryer; zero Attempts means
	// costexplorer.DefaultBackoff.
	Backoff costexplorer.Backoff
	// Retryer, when set, replaces the SDK's retryer (from the standard
	// config: 3 attempts, exponential back-off) of Cost Explorer clients.
	Retryer func() aws.Retryer
}

// Cost Explorer error codes that a retry does not fix.
var ceRejections = map[string]bool{
	"AccessDeniedException":       true, // the role lacks ce:GetCostAndUsage
	"ValidationException":         true,
	"BillExpirationException":     true, // older than Cost Explorer keeps
	"DataUnavailableException":    true,
	"UnrecognizedClientException": true,
}

// IngestCostExplorer pulls the payer's daily unblended, amortized and net
// unblended costs by linked account, service and record type for the days
// in [in.Start, in.End) from Cost Explorer, replaces those days of the
// payer in billing.ce_daily_costs in one snapshot, and reconciles the
// table's totals per account with what Cost Explorer returned, exactly.
// It heartbeats its Stats after every page and before every back-off
// wait. The result counts the paid requests the crawl made.
func (a *Crawl) IngestCostExplorer(ctx context.Context, in crawl.IngestCostExplorerInput) (crawl.IngestCostExplorerResult, error) {
	var res crawl.IngestCostExplorerResult
	if !payer.ValidAccountID(in.PayerAccountID) {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("payer account ID %q: want 12 digits", in.PayerAccountID), crawl.ErrTypeCostExplorerRejected, nil)
	}
	if err := costexplorer.CheckRange(in.Start, in.End); err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), crawl.ErrTypeCostExplorerRejected, err)
	}
	access := in.Access
	access.Region = billingRegion // Cost Explorer's endpoint is in us-east-1
	cfg, err := a.payerConfig(ctx, access, awsauth.Session{Purpose: "crawl", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return res, err
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
	inActivity := activity.IsActivity(ctx)
	rows, st, err := costexplorer.Fetch(ctx, client, in.Start, in.End,
		costexplorer.WithBackoff(backoff),
		costexplorer.WithProgress(func(st costexplorer.Stats) {
			if inActivity {
				activity.RecordHeartbeat(ctx, st)
			}
		}))
	res.Calls, res.Pages, res.Throttled = st.Calls, st.Pages, st.Throttled
	if err != nil {
		if inActivity {
			activity.GetLogger(ctx).Warn("Cost Explorer crawl failed", "payer", in.PayerAccountID,
				"start", in.Start, "end", in.End, "paid_calls", st.Calls, "throttled", st.Throttled, "error", err)
		}
		//lint:ignore ST1005 Cost Explorer is the AWS product's name
		return res, classifyCostExplorer(fmt.Errorf("Cost Explorer costs of %s from %s to %s (%d paid calls): %w",
			in.PayerAccountID, in.Start, in.End, st.Calls, err))
	}

	runID := "direct/" + time.Now().UTC().Format(time.RFC3339Nano)
	if inActivity {
		info := activity.GetInfo(ctx)
		runID = info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
	}
	snap, err := a.Lake.ReplaceCostExplorerDays(ctx, in.PayerAccountID, in.Start, in.End, rows, runID)
	if err != nil {
		return res, classifyCostExplorer(err)
	}
	res.SnapshotID = snap
	res.Rows = len(rows)

	// Reconcile: the committed snapshot's sums per account equal the
	// fetched ones, to the last digit.
	fetched := lakehouse.SumCostsByAccount(rows)
	stored, err := a.Lake.CostExplorerTotals(ctx, in.PayerAccountID, in.Start, in.End, snap)
	if err != nil {
		return res, err
	}
	if diff := diffCostTotals(fetched, stored); diff != "" {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("billing.%s of %s from %s to %s (snapshot %d) does not match Cost Explorer: %s",
				lakehouse.CostExplorerTable, in.PayerAccountID, in.Start, in.End, snap, diff),
			crawl.ErrTypeCostExplorerReconciliation, nil)
	}
	for _, t := range fetched {
		res.Accounts = append(res.Accounts, t.LinkedAccount)
		res.Unblended = res.Unblended.Add(t.Unblended)
	}
	for i, r := range rows {
		if i == 0 {
			res.Currency = r.Currency
		} else if r.Currency != res.Currency {
			res.Currency = "" // mixed: no single currency to report
			break
		}
	}
	if inActivity {
		activity.GetLogger(ctx).Info("Cost Explorer crawl committed", "payer", in.PayerAccountID, "start", in.Start, "end", in.End,
			"rows", res.Rows, "snapshot", snap, "paid_calls", res.Calls, "pages", res.Pages, "throttled", res.Throttled)
	}
	return res, nil
}

// diffCostTotals describes how two sets of per-account totals differ; ""
// when they are equal.
func diffCostTotals(want, got []lakehouse.CostTotal) string {
	byAccount := map[string]lakehouse.CostTotal{}
	for _, t := range got {
		byAccount[t.LinkedAccount] = t
	}
	var diffs []string
	for _, w := range want {
		g, ok := byAccount[w.LinkedAccount]
		delete(byAccount, w.LinkedAccount)
		if !ok {
			diffs = append(diffs, fmt.Sprintf("account %s: %d rows missing from the table", w.LinkedAccount, w.Rows))
			continue
		}
		if g.Rows != w.Rows {
			diffs = append(diffs, fmt.Sprintf("account %s: %d rows in the table, %d fetched", w.LinkedAccount, g.Rows, w.Rows))
		}
		for _, m := range []struct {
			name      string
			want, got money.Amount
		}{{"unblended", w.Unblended, g.Unblended}, {"amortized", w.Amortized, g.Amortized}, {"net unblended", w.NetUnblended, g.NetUnblended}} {
			if m.want.Cmp(m.got) != 0 {
				diffs = append(diffs, fmt.Sprintf("account %s: %s cost %s in the table, %s fetched", w.LinkedAccount, m.name, m.got, m.want))
			}
		}
	}
	for acct, g := range byAccount {
		diffs = append(diffs, fmt.Sprintf("account %s: %d rows in the table that were not fetched", acct, g.Rows))
	}
	return strings.Join(diffs, "; ")
}

// classifyCostExplorer makes errors a retry cannot fix non-retryable:
// requests Cost Explorer refuses, responses costlake cannot keep exactly,
// and whatever classify already names.
func classifyCostExplorer(err error) error {
	code, _ := awsError(err)
	switch {
	case ceRejections[code],
		errors.Is(err, costexplorer.ErrRange),
		errors.Is(err, costexplorer.ErrResponse),
		errors.Is(err, lakehouse.ErrCostRows):
		return temporal.NewNonRetryableApplicationError(err.Error(), crawl.ErrTypeCostExplorerRejected, err)
	}
	return classify(err)
}
