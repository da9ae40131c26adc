package cycle

import (
	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of the billing cycle's activities: workflows call them, the worker
// registers the implementations through them (see package contract).
var (
	CheckFinal     = contract.Activity[CheckFinalInput, CheckFinalResult](CheckFinalActivity)
	Freeze         = contract.Activity[FreezeInput, FreezeResult](FreezeActivity)
	PriceAndExport = contract.Activity[PriceInput, PriceResult](PriceAndExportActivity)
	ResellerExport = contract.Activity[ResellerExportInput, ResellerExportResult](ResellerExportActivity)
)
