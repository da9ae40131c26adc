package monthend

import (
	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of the month-end activities: workflows call them, the
// worker registers the implementations through them (see package
// contract).
var (
	PlanMonth   = contract.Activity[PlanInput, Plan](PlanActivity)
	CheckGuards = contract.Activity[GuardsInput, GuardsResult](GuardsActivity)
	Send        = contract.Activity[Notify, NotifyResult](NotifyActivity)
	RecordCrawl = contract.Action[CrawlRecord](RecordCrawlActivity)
	Apply       = contract.Activity[Request, Answer](ApplyActivity)
)
