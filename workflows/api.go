// Package workflows holds costlake's Temporal workflow definitions and
// their public contract: task queue, workflow IDs, query names, and the
// input and result types the gateway, the CLI and the worker share.
package workflows

import (
	"github.com/costlake/costlake/internal/ingest"
	"github.com/costlake/costlake/internal/money"
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
func IngestWorkflowID(payer, source, period string) string {
	if payer == "" {
		payer = source
	}
	return "ingest/" + payer + "/" + period
}

// IngestBillingPeriodInput asks for one billing period of one report.
type IngestBillingPeriodInput struct {
	Source         string // s3://bucket/prefix/report or file:///path/prefix/report
	Period         string // YYYY-MM
	PayerAccountID string // optional; when set, the manifest's account must match
	Concurrency    int    // chunks converted at once; 0 means DefaultChunkConcurrency
}

// IngestBillingPeriodResult summarises a finished ingestion.
type IngestBillingPeriodResult struct {
	PayerAccountID string
	Period         string
	AssemblyID     string
	ManifestURL    string
	SnapshotID     int64
	Unchanged      bool // this assembly was already the period's latest
	Chunks         int
	Rows           int64
	UnblendedCost  money.Amount
	Accounts       []ingest.AccountTotal
	Totals         []ingest.Total // per account and line item type, reconciled with the table
}

// IngestProgress is what IngestProgressQuery returns.
type IngestProgress struct {
	Stage       string // locating, converting, committing, reconciling, done, failed
	AssemblyID  string
	ChunksTotal int
	ChunksDone  int
	Rows        int64
}
