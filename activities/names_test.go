package activities

import (
	"reflect"
	"testing"

	"github.com/costlake/costlake/internal/contract"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/contract/onboard"
)

// The workflow calls activities by the names in packages ingest, onboard and crawl; each must
// be a method here, or the workflow would wait forever for a handler.
func TestActivityNamesMatchMethods(t *testing.T) {
	typ := reflect.TypeOf(&Activities{})
	for _, name := range []string{
		ingest.LocateDeliveryActivity, ingest.ConvertChunkActivity, ingest.CommitPeriodActivity,
		ingest.ReconcilePeriodActivity, ingest.RemoveDataFilesActivity,
		onboard.PublishStackTemplateActivity, onboard.DescribeCustomerStackActivity,
		onboard.ValidateAccessActivity, onboard.RemindCustomerActivity, onboard.CheckSetupActivity,
		crawl.DiscoverDeliveriesActivity, crawl.RefreshAccountsActivity, crawl.ExportHealthActivity, crawl.EnsureScheduleActivity,
		crawl.DeleteScheduleActivity, crawl.IngestCostExplorerActivity,
		customerops.ApplyActivity,
		ingest.AdjustClosedCyclesActivity,
		cycle.CheckFinalActivity, cycle.FreezeActivity, cycle.PriceAndExportActivity, cycle.ResellerExportActivity,
		contract.BusinessNow.Name(),
	} {
		if _, ok := typ.MethodByName(name); !ok {
			t.Errorf("Activities has no method %s", name)
		}
	}
}
