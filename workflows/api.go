// Package workflows holds costlake's Temporal workflow definitions and
// their public contract: task queue, workflow IDs, query names, and the
// input and result types the gateway, the CLI and the worker share.
package workflows

import (
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// TaskQueue is the task queue every costlake workflow and activity runs on.
const TaskQueue = "costlake"

// IngestProgressQuery returns an IngestProgress of a running ingestion.
const IngestProgressQuery = "progress"

// DefaultChunkConcurrency is how many chunks an ingestion converts at once.
const DefaultChunkConcurrency = 2

// IngestWorkflowID is the business key of an ingestion:
// "ingest/<payer>/<period>". When the payer is not known before the
// manifest is read, the source URL stands in for it, so starting the same
// ingestion twice still meets the same workflow.
func IngestWorkflowID(payer, source string, p period.Period) string {
	if payer == "" {
		payer = source
	}
	return "ingest/" + payer + "/" + p.String()
}

// IngestBillingPeriodInput asks for one billing period of one report.
type IngestBillingPeriodInput struct {
	Source         string        `json:"source"`           // s3://bucket/prefix/report or file:///path/prefix/report
	Period         period.Period `json:"period"`           // YYYY-MM
	PayerAccountID string        `json:"payer_account_id"` // optional; when set, the manifest's account must match
	// BillPayerAccountID, for a member account onboarded alone, is the
	// management account AWS writes as the bill payer of the member's
	// rows: a delivery of that payer is accepted, and its rows are kept
	// under PayerAccountID, its own usage account only.
	BillPayerAccountID string `json:"bill_payer_account_id,omitempty"`
	Concurrency        int    `json:"concurrency"` // chunks converted at once; 0 means DefaultChunkConcurrency
	// Accounts says which usage accounts are ingested; the zero value keeps all.
	Accounts payer.AccountPolicy `json:"accounts"`
	// Access reaches a payer's bucket with its own credentials (an assumed
	// role); nil reads with the worker's.
	Access *payer.Access `json:"access,omitempty"`
	// Retake reads every report of the delivery, even those whose
	// assembly the table holds, and replaces them: the crawl found the
	// period held under another account policy.
	Retake bool `json:"retake,omitempty"`
	// CustomerID, the payer's customer, names the role sessions, so the
	// customer's CloudTrail shows whom each read was for; "" (a manual
	// ingestion, an older schedule) leaves it out of the names.
	CustomerID string `json:"customer_id,omitempty"`
}

// IngestBillingPeriodResult summarises a finished ingestion.
type IngestBillingPeriodResult struct {
	PayerAccountID string        `json:"payer_account_id"`
	Period         period.Period `json:"period"`
	Table          string        `json:"table"`  // billing table the rows went to
	Format         string        `json:"format"` // delivery format found in the bucket
	AssemblyID     string        `json:"assembly_id"`
	ManifestURL    string        `json:"manifest_url"`
	SnapshotID     int64         `json:"snapshot_id"`
	Unchanged      bool          `json:"unchanged"`  // this assembly was already the period's latest
	Superseded     bool          `json:"superseded"` // a newer assembly was already committed; the table was left as it was
	Chunks         int           `json:"chunks"`
	// Reports says, per report of the period, which assembly was read and
	// whether it replaced the report's rows, was already held, or arrived
	// late.
	Reports []ingest.ReportOutcome `json:"reports,omitempty"`
	Rows    int64                  `json:"rows"`
	// RoundedValues counts Parquet doubles with more than 18 fractional
	// digits, rounded half-even to 18 (see money.FloatText).
	RoundedValues int64 `json:"rounded_values"`
	// DeliveryChanges counts how often the delivery was rewritten while it
	// was read, and the ingestion started over from the new manifest.
	DeliveryChanges int                    `json:"delivery_changes"`
	UnblendedCost   money.Amount           `json:"unblended_cost"`
	Accounts        []billing.AccountTotal `json:"accounts"`
	Totals          []billing.Total        `json:"totals"` // per account and line item type, reconciled with the table
	// Excluded counts the rows the account policy left out, per account.
	Excluded     []billing.AccountTotal `json:"excluded,omitempty"`
	ExcludedRows int64                  `json:"excluded_rows"`
	ExcludedCost money.Amount           `json:"excluded_unblended_cost"`
}

// IngestProgress is what IngestProgressQuery returns.
type IngestProgress struct {
	Stage       string `json:"stage"` // locating, converting, committing, reconciling, done, failed
	AssemblyID  string `json:"assembly_id"`
	ChunksTotal int    `json:"chunks_total"`
	ChunksDone  int    `json:"chunks_done"`
	Rows        int64  `json:"rows"`
}

// keptAccounts is the account policy an ingestion of payerID keeps: a
// member account onboarded alone (billPayer set) keeps its own usage only,
// whatever the policy says; the crawl compares the same with the table's.
func keptAccounts(payerID, billPayer string, p payer.AccountPolicy) payer.AccountPolicy {
	if billPayer != "" {
		return payer.AccountPolicy{ConnectedOnly: true, Connected: []string{payerID}}
	}
	return p
}
