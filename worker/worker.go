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
// and activity registered. The caller starts and stops it.
func New(c client.Client, acts *activities.Activities, o Options) sdkworker.Worker {
	if o.MaxConcurrentActivities <= 0 {
		o.MaxConcurrentActivities = 4
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if acts.Temporal == nil {
		acts.Temporal = c
	}
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
		// The build ID only names the code (see buildID); its successor,
		// a deployment version, would opt the worker into Worker Versioning.
		//lint:ignore SA1019 no Worker Versioning yet
		BuildID:           buildID(),
		WorkerStopTimeout: o.StopTimeout,
	})
	Register(w, acts)
	return w
}

// Register adds every costlake workflow and activity to a registry; the
// tests use it to wire the same set.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.IngestBillingPeriod, workflow.RegisterOptions{Name: "IngestBillingPeriod"})
	r.RegisterWorkflowWithOptions(workflows.OnboardPayer, workflow.RegisterOptions{Name: "OnboardPayer"})
	r.RegisterWorkflowWithOptions(workflows.CrawlPayer, workflow.RegisterOptions{Name: "CrawlPayer"})
	r.RegisterWorkflowWithOptions(workflows.ManageCustomer, workflow.RegisterOptions{Name: "ManageCustomer"})
	r.RegisterWorkflowWithOptions(workflows.CloseBillingCycle, workflow.RegisterOptions{Name: "CloseBillingCycle"})
	r.RegisterWorkflowWithOptions(workflows.ExportResellerPeriod, workflow.RegisterOptions{Name: "ExportResellerPeriod"})
	// Each activity through its contract's handle: an implementation of
	// the wrong type does not compile.
	ingest.LocateDelivery.Register(r, acts.LocateDelivery)
	ingest.ConvertChunk.Register(r, acts.ConvertChunk)
	ingest.CommitPeriod.Register(r, acts.CommitPeriod)
	ingest.ReconcilePeriod.Register(r, acts.ReconcilePeriod)
	ingest.RemoveDataFiles.Register(r, acts.RemoveDataFiles)
	ingest.AdjustClosedCycles.Register(r, acts.AdjustClosedCycles)
	onboard.PublishStackTemplate.Register(r, acts.PublishStackTemplate)
	onboard.DescribeCustomerStack.Register(r, acts.DescribeCustomerStack)
	onboard.ValidateAccess.Register(r, acts.ValidateAccess)
	onboard.RemindCustomer.Register(r, acts.RemindCustomer)
	onboard.CheckSetup.Register(r, acts.CheckOnboardingSetup)
	crawl.DiscoverDeliveries.Register(r, acts.DiscoverDeliveries)
	crawl.RefreshAccounts.Register(r, acts.RefreshAccounts)
	crawl.CheckExportHealth.Register(r, acts.CheckExportHealth)
	crawl.EnsureSchedule.Register(r, acts.EnsureCrawlSchedule)
	crawl.DeleteSchedule.Register(r, acts.DeleteCrawlSchedule)
	crawl.IngestCostExplorer.Register(r, acts.IngestCostExplorer)
	cycle.CheckFinal.Register(r, acts.CheckCycleFinal)
	cycle.Freeze.Register(r, acts.FreezeCycle)
	cycle.PriceAndExport.Register(r, acts.PriceAndExportCycle)
	cycle.ResellerExport.Register(r, acts.ExportResellerPeriod)
	customerops.Apply.Register(r, acts.ApplyCustomerRequest)
	contract.BusinessNow.Register(r, acts.BusinessNow)
}
