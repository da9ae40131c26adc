package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/searchattr"
	"github.com/costlake/costlake/lakehouse"
)

// Crawl holds CrawlPayer's activities: discover deliveries, refresh the
// organization's accounts, check the export's health, keep the payer's
// schedule, and crawl Cost Explorer.
type Crawl struct {
	Lake *lakehouse.Lake
	AWS
	// Temporal manages payers' crawl schedules; worker.New sets it.
	Temporal client.Client
	// CostExplorer tunes Cost Explorer crawls; the zero value is what
	// workers use.
	CostExplorer CostExplorerTuning
}

// DiscoverDeliveries reports, per period, the delivery in the bucket and
// the assembly the table holds, so the crawl ingests only what changed.
func (a *Crawl) DiscoverDeliveries(ctx context.Context, in crawl.DiscoverDeliveriesInput) (crawl.DiscoverDeliveriesResult, error) {
	var res crawl.DiscoverDeliveriesResult
	store, loc, err := a.openSource(ctx, in.Source, in.Access, awsauth.Session{Purpose: "crawl", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return res, err
	}
	for _, p := range in.Periods {
		found := crawl.Delivery{Period: p}
		period := p.String()
		ds, err := cur.LocateReports(ctx, store, loc, period)
		switch {
		case errors.Is(err, cur.ErrManifestNotFound):
		case errors.Is(err, cur.ErrInvalidManifest) || errors.Is(err, cur.ErrInvalidPeriod) || errors.Is(err, cur.ErrChunkNotFound):
			found.Found, found.Error = true, err.Error()
		case errors.Is(err, cur.ErrDeliveryChanged):
			return res, err // AWS is writing the delivery: look again on the activity's retry
		case err != nil:
			return res, classify(err)
		default:
			// Per report: the period changed when any report's assembly
			// differs from the one the table holds for it. A report no
			// longer in the bucket keeps its rows and is not compared.
			held, err := a.Lake.PeriodReports(ctx, ds[0].Format.Schema(), in.PayerAccountID, p)
			if err != nil {
				return res, err
			}
			delivered, committed := map[string]string{}, map[string]string{}
			found.Found, found.Format, found.ManifestETag = true, string(ds[0].Format), ds[0].ManifestETag
			for _, d := range ds {
				delivered[d.Report] = d.AssemblyID
				r := crawl.ReportState{Report: d.Report, AssemblyID: d.AssemblyID, DeliveredAt: d.DeliveredAt}
				if c, ok := held[d.Report]; ok {
					committed[d.Report], r.Committed = c.AssemblyID, c.AssemblyID
				}
				if d.DeliveredAt.After(found.DeliveredAt) {
					found.DeliveredAt = d.DeliveredAt
				}
				if len(ds) > 1 || d.Report != "" {
					found.Reports = append(found.Reports, r)
				}
			}
			found.AssemblyID = cur.PeriodAssembly(delivered)
			if len(committed) > 0 {
				found.Committed = cur.PeriodAssembly(committed)
				if in.Accounts != "" {
					c, ok, err := a.Lake.LatestPeriodCommit(ctx, ds[0].Format.Schema(), in.PayerAccountID, p)
					if err != nil {
						return res, err
					}
					found.AccountsChanged = ok && c.Accounts != "" && c.Accounts != in.Accounts
				}
			}
		}
		res.Deliveries = append(res.Deliveries, found)
	}
	return res, nil
}

// listAccounts lists every account of the organization, page by page.
func listAccounts(ctx context.Context, client *organizations.Client) ([]orgtypes.Account, error) {
	var out []orgtypes.Account
	p := organizations.NewListAccountsPaginator(client, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Accounts...)
		activity.RecordHeartbeat(ctx, len(out))
	}
	return out, nil
}

// accountStatus prefers the newer State field over the deprecated Status.
func accountStatus(a orgtypes.Account) string {
	if a.State != "" {
		return string(a.State)
	}
	return string(a.Status)
}

// RefreshAccounts lists the payer's organization, records it in
// billing.accounts, and reports the accounts that joined, closed or left
// since the last crawl.
func (a *Crawl) RefreshAccounts(ctx context.Context, in crawl.RefreshAccountsInput) (crawl.AccountChanges, error) {
	var ch crawl.AccountChanges
	listed, err := a.listPayerAccounts(ctx, in)
	if err != nil {
		return ch, err
	}
	before, err := a.Lake.Accounts(ctx, in.PayerAccountID)
	if err != nil {
		return ch, err
	}
	prev := map[string]lakehouse.Account{}
	for _, acct := range before {
		prev[acct.AccountID] = acct
	}
	ch.First = len(before) == 0
	rows := make([]lakehouse.Account, 0, len(listed))
	seen := map[string]bool{}
	for _, acct := range listed {
		id := aws.ToString(acct.Id)
		seen[id] = true
		row := lakehouse.Account{
			PayerAccountID: in.PayerAccountID, AccountID: id, Name: aws.ToString(acct.Name), Email: aws.ToString(acct.Email),
			Status: accountStatus(acct), JoinedMethod: string(acct.JoinedMethod), JoinedAt: aws.ToTime(acct.JoinedTimestamp),
			FirstSeen: in.At, LastSeen: in.At,
		}
		old, known := prev[id]
		if known {
			row.FirstSeen = old.FirstSeen
		} else if !ch.First {
			ch.New = append(ch.New, id)
		}
		if row.Status != "ACTIVE" && (!known || old.Status == "ACTIVE") && !ch.First {
			ch.Closed = append(ch.Closed, id)
		}
		rows = append(rows, row)
	}
	for id := range prev {
		if !seen[id] {
			ch.Left = append(ch.Left, id)
		}
	}
	slices.Sort(ch.New)
	slices.Sort(ch.Closed)
	slices.Sort(ch.Left)
	ch.Accounts = len(rows)
	if sameAccounts(before, rows) {
		ch.Unchanged = true
		return ch, nil
	}
	if err := a.Lake.ReplaceAccounts(ctx, in.PayerAccountID, rows); err != nil {
		return ch, err
	}
	return ch, nil
}

// listPayerAccounts lists the payer's organization; a local payer is its
// own only account.
func (a *Crawl) listPayerAccounts(ctx context.Context, in crawl.RefreshAccountsInput) ([]orgtypes.Account, error) {
	if in.Access.Mode == payer.Local {
		return []orgtypes.Account{{Id: aws.String(in.PayerAccountID), State: orgtypes.AccountStateActive}}, nil
	}
	cfg, err := a.payerConfig(ctx, in.Access, awsauth.Session{Purpose: "crawl", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return nil, err
	}
	cfg.Region = billingRegion
	org := organizations.NewFromConfig(cfg)
	listed, err := listAccounts(ctx, org)
	if code := apiErrorCode(err); code == "AWSOrganizationsNotInUseException" || code == "AccessDeniedException" {
		// A standalone or member account is its own only account.
		scope, serr := organizationScope(ctx, org, in.PayerAccountID)
		if serr == nil && scope.single {
			listed, err = []orgtypes.Account{{Id: aws.String(in.PayerAccountID), State: orgtypes.AccountStateActive}}, nil
		}
	}
	if err != nil {
		code, msg := awsError(err)
		if code == "AccessDeniedException" || code == "AWSOrganizationsNotInUseException" {
			// Retrying asks the same question: it is the role or the payer.
			return nil, temporal.NewNonRetryableApplicationError(organizationAdvice(in.PayerAccountID, err), "OrganizationUnreadable", err)
		}
		return nil, fmt.Errorf("list accounts of %s: %s %s", in.PayerAccountID, code, msg)
	}
	return listed, nil
}

// sameAccounts tells whether the organization listed now is the one the
// table holds: the same accounts with the same attributes. LastSeen is
// left out, or every crawl would write a snapshot.
func sameAccounts(held, now []lakehouse.Account) bool {
	if len(held) != len(now) {
		return false
	}
	byID := make(map[string]lakehouse.Account, len(held))
	for _, a := range held {
		byID[a.AccountID] = a
	}
	for _, a := range now {
		h, ok := byID[a.AccountID]
		if !ok || h.Name != a.Name || h.Email != a.Email || h.Status != a.Status || h.JoinedMethod != a.JoinedMethod ||
			!sameInstant(h.JoinedAt, a.JoinedAt) || !sameInstant(h.FirstSeen, a.FirstSeen) {
			return false
		}
	}
	return true
}

// sameInstant compares times as the table stores them: to the microsecond.
func sameInstant(x, y time.Time) bool {
	return x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond))
}

// CheckExportHealth reads the payer's export definition and status the
// way the onboarding's export check does, so a crawl reports an export
// AWS stopped delivering (or that lost resource IDs or its refresh).
func (a *Crawl) CheckExportHealth(ctx context.Context, in crawl.ExportHealthInput) (crawl.ExportHealth, error) {
	access := in.Access
	access.Region = billingRegion
	cfg, err := a.payerConfig(ctx, access, awsauth.Session{Purpose: "crawl", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return crawl.ExportHealth{}, err
	}
	_, msg, result := checkExport(ctx, cfg, in.Export)
	return crawl.ExportHealth{Result: result, Message: msg}, nil
}

// EnsureCrawlSchedule creates a payer's crawl schedule, or updates it to
// the given settings when it exists, so approving twice is harmless.
func (a *Crawl) EnsureCrawlSchedule(ctx context.Context, in crawl.EnsureScheduleInput) error {
	if a.Temporal == nil {
		return temporal.NewNonRetryableApplicationError("the worker has no Temporal client for schedules", "InvalidSetup", nil)
	}
	spec, policies, err := scheduleSpec(in.Schedule)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("crawl schedule: "+err.Error(), "InvalidSchedule", err)
	}
	action := &client.ScheduleWorkflowAction{ID: in.WorkflowID, Workflow: in.Workflow, Args: []any{in.Args}, TaskQueue: in.TaskQueue,
		TypedSearchAttributes: searchattr.Run{Kind: searchattr.KindCrawl, Payer: in.PayerAccountID, Customer: in.CustomerID}.Attributes()}
	if in.PayerAccountID != "" {
		action.StaticSummary = "crawl payer " + in.PayerAccountID
	}
	_, err = a.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: in.ScheduleID, Spec: spec, Action: action,
		Overlap: policies.Overlap, CatchupWindow: policies.CatchupWindow,
		Paused: in.Paused, Note: in.Note,
	})
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		return temporal.NewNonRetryableApplicationError("Temporal refused the crawl schedule: "+invalid.Message, "InvalidSchedule", err)
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	h := a.Temporal.ScheduleClient().GetHandle(ctx, in.ScheduleID)
	return h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := u.Description.Schedule
		s.Spec, s.Action, s.Policy = &spec, action, &policies
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
}

func scheduleSpec(s payer.Schedule) (client.ScheduleSpec, client.SchedulePolicies, error) {
	dur := func(v string, def time.Duration) (time.Duration, error) {
		if v == "" {
			return def, nil
		}
		return time.ParseDuration(v)
	}
	jitter, err := dur(s.Jitter, crawl.DefaultJitter)
	if err != nil {
		return client.ScheduleSpec{}, client.SchedulePolicies{}, err
	}
	catchup, err := dur(s.CatchupWindow, crawl.DefaultCatchupWindow)
	if err != nil {
		return client.ScheduleSpec{}, client.SchedulePolicies{}, err
	}
	every, err := dur(s.Interval, 0)
	if err != nil {
		return client.ScheduleSpec{}, client.SchedulePolicies{}, err
	}
	spec := client.ScheduleSpec{TimeZoneName: "UTC", Jitter: jitter}
	switch {
	case every > 0:
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: every}}
	case s.Cron != "":
		spec.CronExpressions = []string{s.Cron}
	default:
		spec.CronExpressions = []string{crawl.DefaultCron}
	}
	// Skip, never queue: the next crawl finds whatever the running one
	// did not, and two crawls of one payer at once gain nothing.
	return spec, client.SchedulePolicies{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: catchup}, nil
}

// DeleteCrawlSchedule removes a payer's schedule; a missing one is fine.
func (a *Crawl) DeleteCrawlSchedule(ctx context.Context, in crawl.DeleteScheduleInput) error {
	err := a.Temporal.ScheduleClient().GetHandle(ctx, in.ScheduleID).Delete(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}
