// Package crawl is the contract between the CrawlPayer workflow and its
// activities: activity names, inputs and results. Workflows and activities
// both import it; neither imports the other.
package crawl

import (
	"encoding/json"
	"time"

	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// Activity names. They equal the method names on activities.Crawl,
// which a test checks.
const (
	DiscoverDeliveriesActivity = "DiscoverDeliveries"
	RefreshAccountsActivity    = "RefreshAccounts"
	ExportHealthActivity       = "CheckExportHealth"
	EnsureScheduleActivity     = "EnsureCrawlSchedule"
	DeleteScheduleActivity     = "DeleteCrawlSchedule"
)

// DiscoverDeliveriesInput names a source and the periods to look at.
type DiscoverDeliveriesInput struct {
	PayerAccountID string
	CustomerID     string `json:"customer_id,omitempty"` // names the role session; "" in older histories
	Source         string
	Access         *payer.Access
	Periods        []period.Period // YYYY-MM
	// Accounts is the fingerprint of the account policy ingestions keep
	// now; a period held under another is reported AccountsChanged. ""
	// (older histories) compares none.
	Accounts string `json:"accounts,omitempty"`
}

// Delivery is what a period holds in the bucket and in the table.
type Delivery struct {
	Period       period.Period `json:"period"`
	Found        bool          `json:"found"`
	Format       string        `json:"format,omitempty"`
	AssemblyID   string        `json:"assembly_id,omitempty"`
	ManifestETag string        `json:"manifest_etag,omitempty"`
	DeliveredAt  time.Time     `json:"delivered_at,omitzero"`
	// Committed is the assembly the table holds for the period; empty when
	// it was never ingested. For a source with several reports, both name
	// every report's assembly (ingest.PeriodAssembly), and Reports lists
	// them one by one.
	Committed string        `json:"committed,omitempty"`
	Reports   []ReportState `json:"reports,omitempty"`
	// Error explains a delivery that cannot be read (a bad manifest, a missing chunk); the
	// ingestion would fail the same way, so it is reported, not started.
	Error string `json:"error,omitempty"`
	// AccountsChanged: the table holds the period under another account
	// policy than the payer's now (its connected accounts changed), so
	// the delivery is taken again even when its assembly is held.
	AccountsChanged bool `json:"accounts_changed,omitempty"`
}

// ReportState is one report of a period: its delivered assembly and the
// one the table holds for it.
type ReportState struct {
	Report      string    `json:"report"`
	AssemblyID  string    `json:"assembly_id"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	Committed   string    `json:"committed,omitempty"`
}

// Changed reports a delivery that the table does not hold yet: new, or a
// restatement (another assembly or execution).
func (d Delivery) Changed() bool {
	return d.Found && d.Error == "" && (d.AssemblyID != d.Committed || d.AccountsChanged)
}

// DiscoverDeliveriesResult lists the periods in the order asked.
type DiscoverDeliveriesResult struct {
	Deliveries []Delivery `json:"deliveries"`
}

// RefreshAccountsInput names the payer whose organization is listed.
type RefreshAccountsInput struct {
	PayerAccountID string
	CustomerID     string `json:"customer_id,omitempty"` // names the role session; "" in older histories
	Access         payer.Access
	At             time.Time // when the crawl saw the accounts
}

// AccountChanges is what changed in the organization since the last crawl.
type AccountChanges struct {
	Accounts int      `json:"accounts"`         // accounts now in the organization
	New      []string `json:"new,omitempty"`    // joined since the last crawl
	Closed   []string `json:"closed,omitempty"` // now suspended or closed
	Left     []string `json:"left,omitempty"`   // no longer in the organization (moved elsewhere)
	First    bool     `json:"first,omitempty"`  // no earlier list to compare with
	// Unchanged: the organization is as billing.accounts holds it, so
	// nothing was written (no snapshot per crawl).
	Unchanged bool `json:"unchanged,omitempty"`
}

// Defaults of payer.Schedule.
const (
	DefaultCron          = "0 0 * * *" // daily at 00:00 UTC
	DefaultJitter        = 30 * time.Minute
	DefaultCatchupWindow = 24 * time.Hour
)

// EnsureScheduleInput creates or updates a payer's crawl schedule; its
// action starts the workflow named Workflow with Args.
type EnsureScheduleInput struct {
	ScheduleID string
	Workflow   string
	WorkflowID string // Temporal appends the scheduled time
	TaskQueue  string
	Args       json.RawMessage // the workflow input, as JSON
	Schedule   payer.Schedule
	Paused     bool
	Note       string // shown in the Temporal UI
	// PayerAccountID and CustomerID are the crawls' search attributes
	// (searchattr); "" in older histories leaves them out.
	PayerAccountID string `json:",omitempty"`
	CustomerID     string `json:",omitempty"`
}

// DeleteScheduleInput removes a payer's crawl schedule.
type DeleteScheduleInput struct {
	ScheduleID string
}

// ExportHealthInput asks for the state of a payer's export definition.
type ExportHealthInput struct {
	PayerAccountID string
	CustomerID     string `json:"customer_id,omitempty"` // names the role session; "" in older histories
	Access         payer.Access
	Export         payer.Export
}

// ExportHealth is what the export's own definition and status say, as
// the onboarding's export check reports it: Result is passed, warning or
// failed, and Message says what to fix.
type ExportHealth struct {
	Result  string `json:"result"`
	Message string `json:"message"`
}
