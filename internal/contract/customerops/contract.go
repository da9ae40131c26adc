// Package customerops is the contract between the CustomerRequest workflow
// and its activity: the gateway's changes to customers (their records,
// accounts and pricebooks) and its reads of them run as short workflows,
// so every change is durable and visible in Temporal. A Request carries
// exactly one typed operation; an Answer carries the one result that
// operation gives.
package customerops

import (
	"encoding/json"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
)

// Workflow names the workflow that applies one Request; ApplyActivity
// names its activity. (The previous release's names are in legacy.go.)
const (
	Workflow      = "CustomerRequest"
	ApplyActivity = "ApplyCustomerOperation"
)

// Failure types the activity reports, for the gateway's status codes.
const (
	ErrTypeInvalid  = "InvalidRequest" // 400
	ErrTypeConflict = "Conflict"       // 409
	ErrTypeClosed   = "CycleClosed"    // 409
	ErrTypeNotFound = "NotFound"       // 404
)

// Request is one change to, or read of, a customer's records: who asks,
// whose records, and exactly one operation.
type Request struct {
	CustomerID string `json:"customer_id"`
	By         string `json:"by"` // the API key's name

	// PutCustomer saves the customer's record (the ID is CustomerID's);
	// answers Customer.
	PutCustomer *reseller.Customer `json:"put_customer,omitempty"`
	// GetCustomer reads the record and the accounts of a period; answers
	// View.
	GetCustomer *PeriodRead `json:"get_customer,omitempty"`
	// SetAccounts assigns accounts from a period on; answers View.
	SetAccounts *AccountsChange `json:"set_accounts,omitempty"`
	// PutPricebook saves a pricebook version; answers Pricebook.
	PutPricebook *PricebookChange `json:"put_pricebook,omitempty"`
	// GetPricebook reads the version in force in a period; answers
	// PricebookVersion.
	GetPricebook *PeriodRead `json:"get_pricebook,omitempty"`
	// VerifyExport probes a destination with a write; answers Verify.
	VerifyExport *reseller.Destination `json:"verify_export,omitempty"`
	// UnassignedCost sums the usage of accounts no customer owns in a
	// period; answers Unassigned.
	UnassignedCost *PeriodRead `json:"unassigned_cost,omitempty"`
	// ClaimPayer records that the payer is CustomerID's; another
	// customer's payer is ErrTypeConflict unless Takeover. Answers Claim.
	ClaimPayer *PayerClaim `json:"claim_payer,omitempty"`
	// ReleasePayer drops a claim whose registration did not go ahead;
	// answers Claim.
	ReleasePayer *PayerClaim `json:"release_payer,omitempty"`
}

// Op names the request's operation ("put_customer", …), "" when it sets
// none or more than one.
func (r Request) Op() string {
	op := ""
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"put_customer", r.PutCustomer != nil}, {"get_customer", r.GetCustomer != nil},
		{"set_accounts", r.SetAccounts != nil}, {"put_pricebook", r.PutPricebook != nil},
		{"get_pricebook", r.GetPricebook != nil}, {"verify_export", r.VerifyExport != nil},
		{"unassigned_cost", r.UnassignedCost != nil}, {"claim_payer", r.ClaimPayer != nil},
		{"release_payer", r.ReleasePayer != nil},
	} {
		switch {
		case !o.set:
		case op != "":
			return ""
		default:
			op = o.name
		}
	}
	return op
}

// Change reports whether the operation changes the customer's records, so
// that it runs under the customer's one workflow ID (one change at a
// time). Claims change the payer's record, not the customer's.
func (r Request) Change() bool {
	return r.PutCustomer != nil || r.SetAccounts != nil || r.PutPricebook != nil
}

// PeriodRead is a read of one billing period ("YYYY-MM").
type PeriodRead struct {
	Period period.Period `json:"period"`
}

// AccountsChange assigns, from EffectiveFrom on, each payer's accounts
// ("*" for the whole payer) to the customer.
type AccountsChange struct {
	EffectiveFrom period.Period   `json:"effective_from"`
	Payers        []PayerAccounts `json:"payers"`
}

// PayerAccounts is one payer's accounts in an AccountsChange.
type PayerAccounts struct {
	PayerAccountID string   `json:"payer_account_id"`
	Accounts       []string `json:"accounts"`
}

// PricebookChange is a pricebook as the operator sent it: the document is
// stored verbatim (pricing.Decode checks it), so a later reader sees
// exactly what was agreed.
type PricebookChange struct {
	Document json.RawMessage `json:"document"`
}

// PayerClaim is the body of ClaimPayer and ReleasePayer.
type PayerClaim struct {
	PayerAccountID string `json:"payer_account_id"`
	// Takeover moves a payer another customer held (an unscoped
	// operator registering it again).
	Takeover bool `json:"takeover,omitempty"`
}

// Answer is what a Request's operation gives: one field is set.
type Answer struct {
	Customer         *reseller.Customer         `json:"customer,omitempty"`
	View             *reseller.CustomerView     `json:"view,omitempty"`
	Pricebook        *pricing.Pricebook         `json:"pricebook,omitempty"`
	PricebookVersion *reseller.PricebookVersion `json:"pricebook_version,omitempty"`
	Verify           *export.VerifyResult       `json:"verify,omitempty"`
	Unassigned       *UnassignedView            `json:"unassigned,omitempty"`
	Claim            *reseller.PayerClaim       `json:"claim,omitempty"`
}

// Value is the answer's one set field, for a response body; nil when
// none is set.
func (a Answer) Value() any {
	switch {
	case a.Customer != nil:
		return a.Customer
	case a.View != nil:
		return a.View
	case a.Pricebook != nil:
		return a.Pricebook
	case a.PricebookVersion != nil:
		return a.PricebookVersion
	case a.Verify != nil:
		return a.Verify
	case a.Unassigned != nil:
		return a.Unassigned
	case a.Claim != nil:
		return a.Claim
	}
	return nil
}

// UnassignedView is what UnassignedCost answers: per payer, the usage of
// accounts that no customer owns in the period.
type UnassignedView struct {
	Period period.Period          `json:"period"`
	Payers []UnassignedPayerTotal `json:"payers"`
}

// UnassignedPayerTotal is one payer's unassigned usage.
type UnassignedPayerTotal struct {
	PayerAccountID string                 `json:"payer_account_id"`
	Accounts       []billing.AccountTotal `json:"accounts"`
	UnblendedCost  money.Amount           `json:"unblended_cost"`
}
