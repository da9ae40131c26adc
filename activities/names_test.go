package activities

import (
	"reflect"
	"testing"

	"github.com/costlake/costlake/internal/contract"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/lakehouse"
)

// The workflows call activities by their contracts' names; each must be a
// method of one of Set's structs, or the workflow would wait forever for a
// handler.
func TestActivityNamesMatchMethods(t *testing.T) {
	set := reflect.ValueOf(*New(Config{}))
	has := func(name string) bool {
		for i := range set.NumField() {
			if _, ok := set.Field(i).Type().MethodByName(name); ok {
				return true
			}
		}
		return false
	}
	for _, name := range []string{
		ingest.LocateDeliveryActivity, ingest.ConvertChunkActivity, ingest.CommitPeriodActivity,
		ingest.ReconcilePeriodActivity, ingest.RemoveDataFilesActivity,
		onboard.PublishStackTemplateActivity, onboard.DescribeCustomerStackActivity,
		onboard.ValidateAccessActivity, onboard.RemindCustomerActivity, onboard.CheckSetupActivity, onboard.RecordStatusActivity,
		crawl.DiscoverDeliveriesActivity, crawl.RefreshAccountsActivity, crawl.ExportHealthActivity, crawl.EnsureScheduleActivity,
		crawl.DeleteScheduleActivity, crawl.IngestCostExplorerActivity,
		customerops.ApplyActivity, customerops.LegacyApplyActivity,
		ingest.AdjustClosedCyclesActivity,
		cycle.CheckFinalActivity, cycle.FreezeActivity, cycle.PriceAndExportActivity, cycle.ResellerExportActivity,
		maintain.TablesActivity, maintain.MaintainTableActivity,
		monthend.PlanActivity, monthend.GuardsActivity, monthend.NotifyActivity, monthend.RecordCrawlActivity, monthend.ApplyActivity,
		contract.BusinessNow.Name(),
	} {
		if !has(name) {
			t.Errorf("no activities struct has a method %s", name)
		}
	}
}

// CommitPeriod hands the lakehouse's report outcomes on as the contract's:
// the actions must be the same words.
func TestReportActionsMatchTheLakehouse(t *testing.T) {
	for lake, wire := range map[string]string{
		lakehouse.ReportReplaced:   ingest.ReportReplaced,
		lakehouse.ReportUnchanged:  ingest.ReportUnchanged,
		lakehouse.ReportSuperseded: ingest.ReportSuperseded,
	} {
		if lake != wire {
			t.Errorf("lakehouse action %q is %q on the wire", lake, wire)
		}
	}
}
