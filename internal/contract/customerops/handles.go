package customerops

import (
	"encoding/json"

	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of CustomerRequest's (and the legacy ManageCustomer's) activities: workflows call them, the worker
// registers the implementations through them (see package contract).
var (
	Apply       = contract.Activity[Request, Answer](ApplyActivity)
	LegacyApply = contract.Activity[LegacyRequest, json.RawMessage](LegacyApplyActivity)
)
