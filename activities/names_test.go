package activities

import (
	"reflect"
	"testing"

	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/crawl"
	"github.com/costlake/costlake/internal/customerops"
	"github.com/costlake/costlake/internal/cycle"
	"github.com/costlake/costlake/internal/ingest"
	"github.com/costlake/costlake/internal/onboard"
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
		clock.NowActivity,
	} {
		if _, ok := typ.MethodByName(name); !ok {
			t.Errorf("Activities has no method %s", name)
		}
	}
}
