package crawl

import (
	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of the crawl's activities: workflows call them, the worker
// registers the implementations through them (see package contract).
var (
	DiscoverDeliveries = contract.Activity[DiscoverDeliveriesInput, DiscoverDeliveriesResult](DiscoverDeliveriesActivity)
	RefreshAccounts    = contract.Activity[RefreshAccountsInput, AccountChanges](RefreshAccountsActivity)
	CheckExportHealth  = contract.Activity[ExportHealthInput, ExportHealth](ExportHealthActivity)
	EnsureSchedule     = contract.Action[EnsureScheduleInput](EnsureScheduleActivity)
	DeleteSchedule     = contract.Action[DeleteScheduleInput](DeleteScheduleActivity)
	IngestCostExplorer = contract.Activity[IngestCostExplorerInput, IngestCostExplorerResult](IngestCostExplorerActivity)
)
