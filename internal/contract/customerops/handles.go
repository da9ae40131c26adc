package customerops

import "github.com/costlake/costlake/internal/contract"

// Typed handles of ManageCustomer's activities: workflows call them, the worker
// registers the implementations through them (see package contract).
var (
	Apply = contract.Activity[Request, Answer](ApplyActivity)
)
