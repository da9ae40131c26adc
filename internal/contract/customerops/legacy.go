package customerops

import "encoding/json"

// The contract before typed operations, kept so that a gateway of the
// previous release, and its runs still in flight during a deploy, are
// served by a new worker: ManageCustomer and ApplyCustomerRequest keep
// their old names and shapes, the typed ones have new names.
const (
	// LegacyWorkflow names the workflow that takes a LegacyRequest and
	// answers raw JSON.
	LegacyWorkflow = "ManageCustomer"
	// LegacyApplyActivity names its activity.
	LegacyApplyActivity = "ApplyCustomerRequest"
)

// LegacyRequest is one change or read as the previous release sent it: a
// Kind ("put_customer", …, the names Request.Op gives) with its body as
// JSON.
type LegacyRequest struct {
	Kind       string          `json:"kind"`
	CustomerID string          `json:"customer_id"`
	Period     string          `json:"period,omitempty"`
	By         string          `json:"by"`
	Body       json.RawMessage `json:"body,omitempty"`
}
