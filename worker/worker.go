// Package worker wires costlake's workflows and activities onto a
// Temporal worker.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/contract"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/workflows"
)

// Options tune the worker.
type Options struct {
	// MaxConcurrentActivities bounds activities running at once on this
	// worker, whatever the workflows ask for; 0 means 4.
	MaxConcurrentActivities int
	// StopTimeout is how long Stop waits for running activities to
	// finish before it cancels them; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
}

// DefaultStopTimeout lets a stopping worker's activities finish a short
// step (a file, a commit) rather than be cut off and retried elsewhere.
const DefaultStopTimeout = 30 * time.Second

// New returns a worker on workflows.TaskQueue with every costlake workflow
// and activity registered, the activities wired from cfg. The caller
// starts and stops it.
func New(c client.Client, cfg activities.Config, o Options) sdkworker.Worker {
	if o.MaxConcurrentActivities <= 0 {
		o.MaxConcurrentActivities = 4
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if cfg.Temporal == nil {
		cfg.Temporal = c
	}
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
		// The build ID only names the code (see buildID); its successor,
		// a deployment version, would opt the worker into Worker Versioning.
		//lint:ignore SA1019 no Worker Versioning yet
		BuildID:           buildID(),
		WorkerStopTimeout: o.StopTimeout,
	})
	Register(w, activities.New(cfg))
	return w
}

// Register adds every costlake workflow and activity to a registry; the
// tests use it to wire the same set.
func Register(r sdkworker.Registry, acts *activities.Set) {
	r.RegisterWorkflowWithOptions(workflows.IngestBillingPeriod, workflow.RegisterOptions{Name: "IngestBillingPeriod"})
	r.RegisterWorkflowWithOptions(workflows.OnboardPayer, workflow.RegisterOptions{Name: "OnboardPayer"})
	r.RegisterWorkflowWithOptions(workflows.CrawlPayer, workflow.RegisterOptions{Name: "CrawlPayer"})
	r.RegisterWorkflowWithOptions(workflows.CustomerRequest, workflow.RegisterOptions{Name: customerops.Workflow})
	r.RegisterWorkflowWithOptions(workflows.ManageCustomer, workflow.RegisterOptions{Name: customerops.LegacyWorkflow})
	r.RegisterWorkflowWithOptions(workflows.CloseBillingCycle, workflow.RegisterOptions{Name: "CloseBillingCycle"})
	r.RegisterWorkflowWithOptions(workflows.ExportResellerPeriod, workflow.RegisterOptions{Name: "ExportResellerPeriod"})
	r.RegisterWorkflowWithOptions(workflows.MaintainTables, workflow.RegisterOptions{Name: maintain.Workflow})
	r.RegisterWorkflowWithOptions(workflows.MonthEnd, workflow.RegisterOptions{Name: monthend.Workflow})
	r.RegisterWorkflowWithOptions(workflows.MonthEndRequest, workflow.RegisterOptions{Name: monthend.RequestWorkflow})
	// Each activity through its contract's handle: an implementation of
	// the wrong type does not compile.
	ingest.LocateDelivery.Register(r, acts.Ingest.LocateDelivery)
	ingest.ConvertChunk.Register(r, acts.Ingest.ConvertChunk)
	ingest.CommitPeriod.Register(r, acts.Ingest.CommitPeriod)
	ingest.ReconcilePeriod.Register(r, acts.Ingest.ReconcilePeriod)
	ingest.RemoveDataFiles.Register(r, acts.Ingest.RemoveDataFiles)
	ingest.AdjustClosedCycles.Register(r, acts.Ingest.AdjustClosedCycles)
	onboard.PublishStackTemplate.Register(r, acts.Onboard.PublishStackTemplate)
	onboard.DescribeCustomerStack.Register(r, acts.Onboard.DescribeCustomerStack)
	onboard.ValidateAccess.Register(r, acts.Onboard.ValidateAccess)
	onboard.RemindCustomer.Register(r, acts.Onboard.RemindCustomer)
	onboard.CheckSetup.Register(r, acts.Onboard.CheckOnboardingSetup)
	onboard.RecordStatus.Register(r, acts.Onboard.RecordPayerStatus)
	crawl.DiscoverDeliveries.Register(r, acts.Crawl.DiscoverDeliveries)
	crawl.RefreshAccounts.Register(r, acts.Crawl.RefreshAccounts)
	crawl.CheckExportHealth.Register(r, acts.Crawl.CheckExportHealth)
	crawl.EnsureSchedule.Register(r, acts.Crawl.EnsureCrawlSchedule)
	crawl.DeleteSchedule.Register(r, acts.Crawl.DeleteCrawlSchedule)
	crawl.IngestCostExplorer.Register(r, acts.Crawl.IngestCostExplorer)
	cycle.CheckFinal.Register(r, acts.Cycle.CheckCycleFinal)
	cycle.Freeze.Register(r, acts.Cycle.FreezeCycle)
	cycle.PriceAndExport.Register(r, acts.Cycle.PriceAndExportCycle)
	cycle.ResellerExport.Register(r, acts.Cycle.ExportResellerPeriod)
	customerops.Apply.Register(r, acts.Customers.ApplyCustomerOperation)
	customerops.LegacyApply.Register(r, acts.Customers.ApplyCustomerRequest)
	maintain.Tables.Register(r, acts.Maintain.MaintenanceTables)
	maintain.MaintainTable.Register(r, acts.Maintain.MaintainTable)
	monthend.PlanMonth.Register(r, acts.MonthEnd.PlanMonthEnd)
	monthend.CheckGuards.Register(r, acts.MonthEnd.CheckCloseGuards)
	monthend.Send.Register(r, acts.MonthEnd.SendWebhookEvent)
	monthend.RecordCrawl.Register(r, acts.MonthEnd.RecordCrawlSuccess)
	monthend.Apply.Register(r, acts.MonthEnd.ApplyMonthEndOperation)
	contract.BusinessNow.Register(r, acts.Clock.BusinessNow)
}
