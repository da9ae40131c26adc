// Package ingest is the contract between the IngestBillingPeriod workflow
// and its activities: activity names, their one-struct inputs and results,
// and the failure types activities report. Workflows and activities both
// import it; neither imports the other.
package ingest

import (
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// Activity names. They equal the method names on activities.Ingest,
// which a test checks.
const (
	LocateDeliveryActivity  = "LocateDelivery"
	ConvertChunkActivity    = "ConvertChunk"
	CommitPeriodActivity    = "CommitPeriod"
	ReconcilePeriodActivity = "ReconcilePeriod"
	RemoveDataFilesActivity = "RemoveDataFiles"
	// AdjustClosedCyclesActivity runs after a commit that replaced a
	// period: customers whose closed cycle pinned an earlier snapshot of
	// it get the difference as an adjustment of their next open cycle.
	AdjustClosedCyclesActivity = "AdjustClosedCycles"
)

// Failure types of non-retryable application errors. A workflow that sees
// one fails with it instead of retrying.
const (
	ErrTypeInvalidSource          = "InvalidSource"
	ErrTypeManifestNotFound       = "ManifestNotFound"
	ErrTypeInvalidManifest        = "InvalidManifest"
	ErrTypeChunkNotFound          = "ChunkNotFound"
	ErrTypeCorruptChunk           = "CorruptChunk"
	ErrTypeHeaderMismatch         = "HeaderMismatch"
	ErrTypeMalformedCSV           = "MalformedCSV"
	ErrTypeEmptyChunk             = "EmptyChunk"
	ErrTypeUnsupportedCompression = "UnsupportedCompression"
	ErrTypeBadValue               = "BadValue"
	ErrTypePayerMismatch          = "PayerMismatch"
	ErrTypeReconciliation         = "ReconciliationFailed"
	ErrTypeInvalidAccess          = "InvalidAccess" // payer credentials the worker cannot build
	ErrTypeAccessDenied           = "AccessDenied"  // the store refused the credentials used
	ErrTypeBucketNotFound         = "BucketNotFound"
	// A data file past the worker's bounds (cur.Limits): one record too
	// large or too wide, a file too large to download (or a Parquet file
	// whose column chunks or pages are), a chunk that inflates too far.
	ErrTypeRecordTooLarge    = "RecordTooLarge"
	ErrTypeChunkTooLarge     = "ChunkTooLarge"
	ErrTypeDecompressionBomb = "DecompressionBomb"
	// ErrTypeDeliveryChanged is the one failure type about the source that
	// is not final: AWS rewrote the delivery while it was read, and the
	// workflow locates it again and starts over (a bounded number of times).
	ErrTypeDeliveryChanged = "DeliveryChanged"
)

// ObjectPin is one version of a source file: what a conversion may read.
type ObjectPin struct {
	ETag       string `json:"etag,omitempty"`
	Size       int64  `json:"size"`
	Generation int64  `json:"generation,omitempty"` // GCS
}

// LocateDeliveryInput names a report and a period.
type LocateDeliveryInput struct {
	Source string        // s3://bucket/prefix/report or file:///path/prefix/report
	Period period.Period // YYYY-MM
	Access *payer.Access // the payer's credentials for an s3:// source; nil uses the worker's own
	// PayerAccountID and CustomerID name the role session only (the
	// manifest, not this, says whose delivery it is); "" in older histories.
	PayerAccountID string `json:"payer_account_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
}

// LocateDeliveryResult describes the delivery found; it carries keys, not rows.
type LocateDeliveryResult struct {
	Format         string // cur.Format: legacy-cur-csv, cur2-parquet, focus-csv, …
	Table          string // the billing table the rows go to: line_items or focus_line_items
	ManifestURL    string // the period manifest, for messages
	ManifestKey    string // a copy of the manifest that never changes
	ManifestETag   string
	DeliveredAt    time.Time // LastModified of the assembly's manifest
	AssemblyID     string
	PayerAccountID string
	Compression    string
	ChunkKeys      []string // keys inside the source's store, in manifest order
	// ChunkPins are the versions of ChunkKeys when the delivery was
	// located; a conversion reads exactly these or fails with
	// DeliveryChanged.
	ChunkPins []ObjectPin
	// Reports lists every report of the period (the fields above are the
	// first's); empty in results recorded before sources could hold
	// several, which stand for one report "".
	Reports []ReportDelivery `json:",omitempty"`
}

// ReportDelivery is one report's delivery of the period.
type ReportDelivery struct {
	Report       string // "" for a single-report source
	ManifestURL  string
	ManifestKey  string
	ManifestETag string
	DeliveredAt  time.Time
	AssemblyID   string
	Compression  string
	ChunkKeys    []string
	ChunkPins    []ObjectPin // the versions of ChunkKeys when located
	// Committed is the assembly the table holds for the report when
	// located; empty when it holds none.
	Committed string `json:",omitempty"`
}

// DeliveredReports returns r.Reports, or the one report the fields
// describe.
func (r LocateDeliveryResult) DeliveredReports() []ReportDelivery {
	if len(r.Reports) > 0 {
		return r.Reports
	}
	return []ReportDelivery{{ManifestURL: r.ManifestURL, ManifestKey: r.ManifestKey, ManifestETag: r.ManifestETag,
		DeliveredAt: r.DeliveredAt, AssemblyID: r.AssemblyID, Compression: r.Compression, ChunkKeys: r.ChunkKeys, ChunkPins: r.ChunkPins}}
}

// ConvertChunkInput asks for one chunk to be converted into one Parquet
// data file of billing.line_items.
type ConvertChunkInput struct {
	Source         string
	Period         period.Period
	Format         string
	ManifestKey    string // re-read by the activity for the header, so history stays small
	AssemblyID     string
	Report         string // the chunk's report; its rows carry it in costlake_report
	ChunkKey       string
	ChunkPin       ObjectPin // zero in histories from before pins: any version
	ChunkIndex     int
	PayerAccountID string
	// BillPayerAccountID, for a member account onboarded alone, is the
	// management account its rows name as bill payer: those rows are kept
	// under PayerAccountID, with the delivered value in other_columns.
	BillPayerAccountID string `json:",omitempty"`
	FilePrefix         string // unique per workflow run; data files are FilePrefix-<index>
	Accounts           payer.AccountPolicy
	Access             *payer.Access
	CustomerID         string `json:"customer_id,omitempty"` // names the role session; "" in older histories
}

// ConvertChunkResult is the data file written and the source's totals of
// the rows written and of the rows the account policy left out.
type ConvertChunkResult struct {
	DataFiles []string
	Rows      int64
	Totals    []billing.Total
	Excluded  []billing.Total
	// Rounded counts the Parquet doubles whose shortest decimal text had
	// more than 18 fractional digits and was rounded half-even to 18.
	Rounded int64
}

// CommitPeriodInput replaces one payer's period with the given files:
// each report's rows with that report's files, in one snapshot.
type CommitPeriodInput struct {
	Table          string // empty means line_items
	PayerAccountID string
	Period         period.Period
	AssemblyID     string
	DeliveredAt    time.Time // an assembly delivered before the period's current one never replaces it
	Source         string
	RunID          string // the workflow run; makes a retried commit recognise itself
	DataFiles      []string
	Rows           int64
	// Reports splits the files by report; empty means one report "" with
	// AssemblyID, DeliveredAt, DataFiles and Rows.
	Reports []ReportFiles `json:",omitempty"`
	// Accounts is the fingerprint of the account policy the rows were
	// kept by (payer.AccountPolicy.Fingerprint); "" in older histories.
	Accounts string `json:",omitempty"`
}

// ReportFiles is one report's part of a commit.
type ReportFiles struct {
	Report      string
	AssemblyID  string
	DeliveredAt time.Time // an assembly delivered before the report's current one never replaces it
	DataFiles   []string
	Rows        int64
}

// CommittedReports returns in.Reports, or the one report the fields describe.
func (in CommitPeriodInput) CommittedReports() []ReportFiles {
	if len(in.Reports) > 0 {
		return in.Reports
	}
	return []ReportFiles{{AssemblyID: in.AssemblyID, DeliveredAt: in.DeliveredAt, DataFiles: in.DataFiles, Rows: in.Rows}}
}

// What a commit did with a report.
const (
	ReportReplaced   = "replaced"   // its rows are now this assembly's
	ReportUnchanged  = "unchanged"  // the table already held this assembly
	ReportSuperseded = "superseded" // a later assembly is committed; this one was dropped
	// ReportNotDelivered: the table holds rows of a report the period's
	// delivery no longer has. They are kept (AWS may only have stopped
	// writing it) and counted in the result, so it shows, never silently.
	ReportNotDelivered = "not_delivered"
)

// ReportOutcome is what a commit did with one report.
type ReportOutcome struct {
	Report     string `json:"report"`
	AssemblyID string `json:"assembly_id"`
	Action     string `json:"action"`
}

// CommitPeriodResult says what the commit did.
type CommitPeriodResult struct {
	SnapshotID    int64
	Unchanged     bool // every report's assembly was already committed; nothing was committed
	Superseded    bool // nothing was committed, and a newer assembly of some report is
	ReplacedFiles int
	// OrphansRemoved counts leftover files of dead runs removed from the
	// period's folder after the commit.
	OrphansRemoved int
	Reports        []ReportOutcome `json:",omitempty"`
	// PeriodAssembly names what the period holds after the commit, every
	// report's assembly (PeriodAssembly); empty when nothing was committed.
	PeriodAssembly string `json:",omitempty"`
}

// ReconcilePeriodInput compares a committed snapshot with the source totals.
type ReconcilePeriodInput struct {
	Table          string
	PayerAccountID string
	Period         period.Period
	SnapshotID     int64
	Expected       []billing.Total
	// Reports, when set, are reconciled one by one (each report's rows in
	// the snapshot against its source) instead of the whole period.
	Reports []ReportTotals `json:",omitempty"`
}

// ReportTotals is the source's totals of one report.
type ReportTotals struct {
	Report   string
	Expected []billing.Total
}

// ReconcilePeriodResult holds the totals read back from the table.
type ReconcilePeriodResult struct {
	Actual []billing.Total
	// Reports are the named reports the snapshot holds rows of, sorted;
	// empty for a single-report source.
	Reports []string `json:",omitempty"`
}

// RemoveDataFilesInput lists files of an abandoned attempt in one payer's
// period. Files the table references are kept.
type RemoveDataFilesInput struct {
	Table          string
	PayerAccountID string
	Period         period.Period
	Files          []string
}

// AdjustClosedCyclesInput names the snapshot that restated a period.
type AdjustClosedCyclesInput struct {
	Table          string
	PayerAccountID string
	Period         period.Period
	AssemblyID     string
	SnapshotID     int64
}

// AdjustClosedCyclesResult lists the customers whose restated cycle got
// an adjustment.
type AdjustClosedCyclesResult struct {
	Customers []string `json:"customers,omitempty"`
}
