package maintain

import (
	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of the maintenance activities: workflows call them, the
// worker registers the implementations through them (see package
// contract).
var (
	Tables        = contract.Activity[struct{}, []string](TablesActivity)
	MaintainTable = contract.Activity[TableInput, TableResult](MaintainTableActivity)
)
