// Package rebilling rebills a closed cycle's data exactly: it prices the
// line items a closed cycle pinned with the pricebook version it pinned,
// writes the customer's resale rows and exports, and writes the
// reseller's own export of a period, reconciled per payer to the last
// digit (total = customers + restated + open + unassigned).
//
// It knows nothing of Temporal: progress goes to a callback, failures a
// retry cannot fix are *Error values of a named kind, and the tables come
// in through the Lake interface, which the activities adapt the lakehouse
// to (internal packages do not import the lakehouse).
package rebilling

import (
	"context"
	"errors"
	"fmt"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/reseller"
)

// Kinds of failure a retry cannot fix. An *Error wraps one of them.
var (
	ErrInvalidInput  = errors.New("invalid cycle input")
	ErrNoPricebook   = errors.New("no pricebook")
	ErrBadPricebook  = errors.New("invalid pricebook")
	ErrNotClosed     = errors.New("cycle not closed")
	ErrOpenCycles    = errors.New("cycles open")
	ErrBadLineItem   = errors.New("bad line item")
	ErrSnapshotGone  = errors.New("snapshot missing")
	ErrNotReconciled = errors.New("reconciliation failed")
	// ErrCurrency: a customer's line items are in currencies one bill
	// cannot hold (see pricing.ErrCurrency).
	ErrCurrency = errors.New("mixed currencies")
	// ErrBadInvoice: a stored invoice record is unreadable, or was priced
	// from other pins than its cycle's.
	ErrBadInvoice = errors.New("bad invoice record")
	// ErrNoCostBasis: a line item lacks the cost its pricebook prices on
	// (see pricing.ErrNoCostBasis).
	ErrNoCostBasis = errors.New("no cost basis")
)

// Error is a failure a retry cannot fix: Kind says which (one of the
// Err* values above), Msg what and where.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// SnapshotGone names a pinned snapshot that is no longer in the table:
// Lake implementations return it for a scan of an expired snapshot.
func SnapshotGone(err error) error { return &Error{Kind: ErrSnapshotGone, Msg: err.Error()} }

// Scan selects one payer's billing period of billing.line_items as it
// was in one snapshot.
type Scan struct {
	Payer      string
	Period     string
	SnapshotID int64
	Accounts   []string // nil: every account
	Columns    []string // the canonical columns read
}

// ResaleRow is one priced line item of billing.resale_line_items.
type ResaleRow struct {
	CustomerID       string
	Period           string
	PayerAccountID   string
	UsageAccountID   string
	LineItemID       string
	LineItemType     string
	ProductCode      string
	ServiceCode      string
	UsageType        string
	UnblendedCost    money.Amount
	ResaleCost       money.Amount
	Rule             string
	PricebookVersion int
	SourceSnapshotID int64
}

// Lake is what rebilling reads and writes of the lakehouse.
type Lake interface {
	// PayersOfPeriod lists the payers that committed period to
	// billing.line_items, sorted.
	PayersOfPeriod(ctx context.Context, period string) ([]string, error)
	// LatestSnapshot is the snapshot that last replaced payer's period (0
	// when none did).
	LatestSnapshot(ctx context.Context, payer, period string) (int64, error)
	// AccountCosts are payer's period's totals per usage account in a
	// snapshot, sorted by account.
	AccountCosts(ctx context.Context, payer, period string, snapshot int64) ([]billing.AccountTotal, error)
	// TagKeys are the distinct resource_tags keys of the scan, sorted.
	TagKeys(ctx context.Context, s Scan) ([]string, error)
	// ScanLineItems streams the scan's records in a stable order; the
	// record is reused. An expired snapshot is a SnapshotGone error;
	// fn's errors come back as they are.
	ScanLineItems(ctx context.Context, s Scan, fn func(*billing.Record) error) error
	// LatestResale is the snapshot that last replaced customer's period in
	// billing.resale_line_items and the pins it recorded (ok false: none).
	LatestResale(ctx context.Context, customer, period string) (snapshot int64, pins string, ok bool, err error)
	// ScanResale streams customer's period's resale rows in a snapshot.
	ScanResale(ctx context.Context, customer, period string, snapshot int64, fn func(*ResaleRow) error) error
	// NewResaleWriter starts writing customer's period's resale rows into
	// files named after name (the same name gives the same files).
	NewResaleWriter(ctx context.Context, customer, period, name string) (ResaleWriter, error)
	// ReplaceInvoice makes lines the whole of customer's period in
	// billing.invoices.
	ReplaceInvoice(ctx context.Context, customer, period string, lines []InvoiceLine) error
}

// ResaleWriter writes one cycle's resale rows.
type ResaleWriter interface {
	Append(r *ResaleRow) error
	// Commit finishes the files and replaces the customer's period with
	// them in one snapshot recording pins; it returns that snapshot.
	Commit(ctx context.Context, pins string) (int64, error)
	// Abort removes what an unfinished writer wrote.
	Abort()
	// Checkpoint finishes the current file and returns the files written
	// so far and their rows; Resume continues after such a checkpoint of
	// an earlier attempt (the same name), keeping its files.
	Checkpoint() (files []string, rows int64, err error)
	Resume(files []string, rows int64)
}

// Records are the reseller's records rebilling reads; *reseller.Store
// has them.
type Records interface {
	CycleOf(ctx context.Context, customer, period string) (reseller.Cycle, error)
	ClosedCycles(ctx context.Context, period string) ([]reseller.Cycle, error)
	Owners(ctx context.Context, period string) (map[[2]string]string, error)
	Adjustments(ctx context.Context, customer, period string) ([]reseller.Adjustment, error)
	PricebookVersionOf(ctx context.Context, customer string, version int) (reseller.PricebookVersion, error)
	// SaveInvoice stores a cycle's invoice unless one is stored, and
	// returns the stored one; InvoiceOf reads it (reseller.ErrNotFound:
	// none).
	SaveInvoice(ctx context.Context, inv reseller.Invoice) (reseller.Invoice, error)
	InvoiceOf(ctx context.Context, customer, period string) (reseller.Invoice, error)
}

// Progress is what a pass reports as it goes.
type Progress struct {
	Stage          string `json:"stage"`
	CustomerID     string `json:"customer_id,omitempty"`
	PayerAccountID string `json:"payer_account_id,omitempty"`
	Rows           int64  `json:"rows"`
}

// DefaultReportEvery is how many line items a pass prices between
// progress reports.
const DefaultReportEvery = 5000

// Rebiller rebills closed cycles. Lake and Records are required.
type Rebiller struct {
	Lake    Lake
	Records Records
	// TempDir holds export parts while they are written; empty means the
	// system's temporary folder.
	TempDir string
	// Progress, when set, is called at the start of every pass, every
	// ReportEvery rows and before a commit (an activity heartbeats it).
	Progress func(Progress)
	// ReportEvery is the rows between progress reports; 0 means
	// DefaultReportEvery.
	ReportEvery int64
}

func (r *Rebiller) report(p *Progress) {
	if r.Progress != nil {
		r.Progress(*p)
	}
}

func (r *Rebiller) reportEvery() int64 {
	if r.ReportEvery > 0 {
		return r.ReportEvery
	}
	return DefaultReportEvery
}
