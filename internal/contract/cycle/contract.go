// Package cycle is the contract between the billing-cycle workflows
// (CloseBillingCycle, ExportResellerPeriod) and their activities: activity
// names, their one-struct inputs and results, and the failure types the
// activities report. Payloads carry references (snapshot IDs, object
// keys) and sums, never line items.
package cycle

import (
	"time"

	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/rebilling"
)

// Activity names. They equal the method names on activities.Cycle,
// which a test checks.
const (
	CheckFinalActivity     = "CheckCycleFinal"
	FreezeActivity         = "FreezeCycle"
	PriceAndExportActivity = "PriceAndExportCycle"
	ResellerExportActivity = "ExportResellerPeriod"
)

// Defaults of CloseBillingCycle's input. Without invoice IDs a period is
// final once the 10th of the next month has passed, when AWS's support
// fees have landed; runs started before that default keep
// LegacyFinalAfterDays.
const (
	DefaultFinalAfterDays = 10
	LegacyFinalAfterDays  = 5
	DefaultCheckEvery     = 24 * time.Hour
)

// Stages of a CloseBillingCycle run, in Status.Stage.
const (
	StatusWaiting  = "waiting"  // the period is not final yet
	StatusFreezing = "freezing" // pinning snapshots and pricebook
	StatusPricing  = "pricing"  // streaming, pricing, exporting
	StatusDone     = "done"
	StatusFailed   = "failed"
)

// The rebilling pass's results and export layout, as this contract
// carries them (defined by package rebilling, where they are computed).
type (
	ExportRef            = rebilling.ExportRef
	PriceResult          = rebilling.PriceResult
	PayerReconciliation  = rebilling.PayerReconciliation
	ResellerExportResult = rebilling.ResellerExportResult
)

const (
	ExportFolderAtCost      = rebilling.ExportFolderAtCost
	ExportFolderAtResale    = rebilling.ExportFolderAtResale
	ResellerCustomersFolder = rebilling.ResellerCustomersFolder
	ResellerUnassigned      = rebilling.ResellerUnassigned
)

// Pins is rebilling.Pins: the canonical text of a closed cycle's pins.
func Pins(pricebookVersion int, snapshots map[string]int64) string {
	return rebilling.Pins(pricebookVersion, snapshots)
}

// Failure types of non-retryable application errors.
const (
	ErrTypeInvalidInput = "InvalidCycleInput" // a bad customer ID or period
	ErrTypeNoPricebook  = "NoPricebook"       // no pricebook in force in the period
	ErrTypeBadPricebook = "InvalidPricebook"  // the pinned version does not decode
	ErrTypeNotClosed    = "CycleNotClosed"    // pricing a cycle that was never frozen
	ErrTypeOpenCycles   = "CyclesOpen"        // a reseller export with customers' cycles still open
	ErrTypeNoReseller   = "InvalidSetup"      // the worker has no reseller records
	ErrTypeBadLineItem  = "BadLineItem"       // a committed line item that cannot be read
	ErrTypeDestination  = "InvalidDestination"
	ErrTypeSnapshotGone = "SnapshotMissing" // a pinned snapshot was expired from the table
	ErrTypeCurrency     = "MixedCurrencies" // a customer's line items in currencies one bill cannot hold
	ErrTypeBadInvoice   = "InvalidInvoiceRecord"
	ErrTypeNoCostBasis  = "NoCostBasis" // a line item without the cost its pricebook prices on
)

// CheckFinalInput asks whether a customer's period is final.
type CheckFinalInput struct {
	CustomerID     string
	Period         period.Period
	FinalAfterDays int       // a period is final this many days after its month ends
	AsOf           time.Time // workflow.Now: when the workflow asks
}

// PayerStatus is one payer's state for a cycle.
type PayerStatus struct {
	PayerAccountID string `json:"payer_account_id"`
	Committed      bool   `json:"committed"` // the period was ingested
	SnapshotID     int64  `json:"snapshot_id,omitempty"`
	AssemblyID     string `json:"assembly_id,omitempty"`
	// Invoiced: every committed line item carries bill_invoice_id (AWS
	// writes it in the month's final delivery).
	Invoiced bool `json:"invoiced"`
}

// CheckFinalResult says whether the cycle may close, and why.
type CheckFinalResult struct {
	Final   bool          `json:"final"`
	Reason  string        `json:"reason"`   // for people
	FinalAt time.Time     `json:"final_at"` // month end + FinalAfterDays
	Closed  bool          `json:"closed"`   // the cycle is already closed
	Payers  []PayerStatus `json:"payers"`
}

// FreezeInput closes a customer's cycle.
type FreezeInput struct {
	CustomerID string
	Period     period.Period
}

// FreezeResult is what the closed cycle pinned.
type FreezeResult struct {
	PricebookVersion int              `json:"pricebook_version"`
	Snapshots        map[string]int64 `json:"snapshots"` // payer → line_items snapshot (0: nothing committed at close)
	ClosedAt         string           `json:"closed_at"`
	AlreadyClosed    bool             `json:"already_closed"`
}

// PriceInput prices and exports a closed cycle.
type PriceInput struct {
	CustomerID string
	Period     period.Period
}

// ResellerExportInput asks for a reseller-wide export of a period.
type ResellerExportInput struct {
	Period period.Period `json:"period"`
	// URL is the reseller's destination: s3://, gs:// or file:///.
	URL    string        `json:"url"`
	Access *payer.Access `json:"access,omitempty"` // S3 only; nil uses the worker's own credentials
	Gzip   bool          `json:"gzip,omitempty"`
	// AllowOpenCycles exports even when some customers owning accounts in
	// the period have not closed it: their usage is counted (as Open) but
	// not exported. Without it such a period fails with ErrTypeOpenCycles.
	AllowOpenCycles bool `json:"allow_open_cycles,omitempty"`
}

// Status is what a CloseBillingCycle workflow answers to its status query.
type Status struct {
	Stage     string        `json:"stage"` // StatusWaiting, …
	Checks    int           `json:"checks"`
	Reason    string        `json:"reason,omitempty"`
	FinalAt   time.Time     `json:"final_at,omitzero"`
	LastCheck time.Time     `json:"last_check,omitzero"`
	NextCheck time.Time     `json:"next_check,omitzero"`
	Payers    []PayerStatus `json:"payers,omitempty"`
	// PricebookVersion and Snapshots are the pins, once frozen.
	PricebookVersion int              `json:"pricebook_version,omitempty"`
	Snapshots        map[string]int64 `json:"snapshots,omitempty"`
}
