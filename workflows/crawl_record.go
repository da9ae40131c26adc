package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/monthend"
)

// CrawlPayer runs the crawl (crawlPayer) and, when it succeeds, records
// the payer's last successful crawl in the catalog: the freshness the
// month-end guard reads. A record in the catalog, not a search of
// Temporal's closed runs, because it outlasts history's retention, costs
// one keyed read, and also holds the access a Cost Explorer check uses.
// A crawl waiting for its first delivery has read nothing and is not
// recorded, nor is a backfill; failing to record is logged, never the crawl's failure.
func CrawlPayer(ctx workflow.Context, in CrawlPayerInput) (*CrawlPayerResult, error) {
	res, err := crawlPayer(ctx, in)
	// A backfill reads old months; only the daily crawl says the
	// current data is fresh.
	if err != nil || res == nil || res.Status != CrawlDone || len(in.Periods) > 0 {
		return res, err
	}
	if workflow.GetVersion(ctx, crawlRecordChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return res, nil
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	info := workflow.GetInfo(ctx)
	rec := monthend.CrawlRecord{PayerAccountID: in.PayerAccountID, At: businessNow(ctx), Access: in.Access, CostExplorer: in.CostExplorer,
		RunID: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID}
	if err := monthend.RecordCrawl.Execute(actx, rec).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not record the successful crawl", "payer", in.PayerAccountID, "error", err)
	}
	return res, nil
}
