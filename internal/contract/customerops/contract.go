// Package customerops is the contract between the ManageCustomer workflow
// and its activity: the gateway's changes to customers (their records,
// accounts and pricebooks) and its reads of them run as short workflows,
// so every change is durable and visible in Temporal. Bodies are JSON so
// that workflows need none of the storage types.
package customerops

import "encoding/json"

// ApplyActivity names the activity that applies a Request.
const ApplyActivity = "ApplyCustomerRequest"

// Request kinds.
const (
	PutCustomer    = "put_customer"    // Body: reseller.Customer
	GetCustomer    = "get_customer"    // Period: the accounts shown; answer: reseller.CustomerView
	SetAccounts    = "set_accounts"    // Body: AccountsChange
	PutPricebook   = "put_pricebook"   // Body: a pricing.Pricebook
	GetPricebook   = "get_pricebook"   // Period; answer: the version in force
	VerifyExport   = "verify_export"   // Body: reseller.Destination; answer: export.VerifyResult
	UnassignedCost = "unassigned_cost" // Period; answer: usage of accounts no customer owns
	ClaimPayer     = "claim_payer"     // Body: PayerClaim; answer: reseller.PayerClaim; another customer's payer is ErrTypeConflict
	ReleasePayer   = "release_payer"   // Body: PayerClaim; drops the customer's claim whose registration did not go ahead
)

// PayerClaim is the body of ClaimPayer and ReleasePayer.
type PayerClaim struct {
	PayerAccountID string `json:"payer_account_id"`
	// Takeover moves a payer another customer held (an unscoped
	// operator registering it again).
	Takeover bool `json:"takeover,omitempty"`
}

// Failure types the activity reports, for the gateway's status codes.
const (
	ErrTypeInvalid  = "InvalidRequest" // 400
	ErrTypeConflict = "Conflict"       // 409
	ErrTypeClosed   = "CycleClosed"    // 409
	ErrTypeNotFound = "NotFound"       // 404
)

// Request is one change or read.
type Request struct {
	Kind       string          `json:"kind"`
	CustomerID string          `json:"customer_id"`
	Period     string          `json:"period,omitempty"`
	By         string          `json:"by"` // the API key's name
	Body       json.RawMessage `json:"body,omitempty"`
}

// AccountsChange is the body of SetAccounts.
type AccountsChange struct {
	EffectiveFrom string `json:"effective_from"`
	Payers        []struct {
		PayerAccountID string   `json:"payer_account_id"`
		Accounts       []string `json:"accounts"`
	} `json:"payers"`
}
