package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/rebilling"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// rebiller wires the rebilling of closed cycles to this worker: its lake,
// the reseller's records, and heartbeats for progress.
func (a *Cycle) rebiller(ctx context.Context, store *reseller.Store) *rebilling.Rebiller {
	return &rebilling.Rebiller{Lake: &rebillingLake{lake: a.Lake}, Records: store, TempDir: a.TempDir,
		Progress: func(p rebilling.Progress) { activity.RecordHeartbeat(ctx, p) }}
}

// rebillingErrorTypes are the failure types the workflows and the gateway
// know rebilling's failures by.
var rebillingErrorTypes = map[error]string{
	rebilling.ErrInvalidInput:  cycle.ErrTypeInvalidInput,
	rebilling.ErrNoPricebook:   cycle.ErrTypeNoPricebook,
	rebilling.ErrBadPricebook:  cycle.ErrTypeBadPricebook,
	rebilling.ErrNotClosed:     cycle.ErrTypeNotClosed,
	rebilling.ErrOpenCycles:    cycle.ErrTypeOpenCycles,
	rebilling.ErrBadLineItem:   cycle.ErrTypeBadLineItem,
	rebilling.ErrSnapshotGone:  cycle.ErrTypeSnapshotGone,
	rebilling.ErrNotReconciled: ingest.ErrTypeReconciliation,
	rebilling.ErrCurrency:      cycle.ErrTypeCurrency,
	rebilling.ErrBadInvoice:    cycle.ErrTypeBadInvoice,
	rebilling.ErrNoCostBasis:   cycle.ErrTypeNoCostBasis,
}

// rebillingError makes rebilling's named failures non-retryable
// application errors of their type; other errors stay as they are.
func rebillingError(err error) error {
	var re *rebilling.Error
	if !errors.As(err, &re) {
		return err
	}
	typ, ok := rebillingErrorTypes[re.Kind]
	if !ok {
		return err
	}
	return temporal.NewNonRetryableApplicationError(re.Msg, typ, nil)
}

// rebillingLake is the lakehouse as rebilling sees it. It reads which
// payers committed a period, and each payer's newest commit, once per
// pass, so a pass sees the records as they were when it first asked.
type rebillingLake struct {
	lake   *lakehouse.Lake
	payers map[period.Period][]string
	latest map[string]int64 // payer/period → snapshot
}

// recordPeriod reads a period that the reseller's records, or the
// rebilling pass reading them, hold as text. It was checked when it was
// written, so text that is no period is a corrupt record, named.
func recordPeriod(s string) (period.Period, error) {
	p, err := period.Parse(s)
	if err != nil {
		return p, cycleError(cycle.ErrTypeInvalidInput, "a stored record names %v", err)
	}
	return p, nil
}

func (l *rebillingLake) PayersOfPeriod(ctx context.Context, text string) ([]string, error) {
	p, err := recordPeriod(text)
	if err != nil {
		return nil, err
	}
	if payers, ok := l.payers[p]; ok {
		return payers, nil
	}
	payers, err := l.lake.PayersOfPeriod(ctx, billing.LineItems, p)
	if err != nil {
		return nil, err
	}
	if l.payers == nil {
		l.payers = map[period.Period][]string{}
	}
	l.payers[p] = payers
	return payers, nil
}

func (l *rebillingLake) LatestSnapshot(ctx context.Context, payer, text string) (int64, error) {
	p, err := recordPeriod(text)
	if err != nil {
		return 0, err
	}
	key := payer + "/" + p.String()
	if id, ok := l.latest[key]; ok {
		return id, nil
	}
	c, _, err := l.lake.LatestPeriodCommit(ctx, billing.LineItems, payer, p)
	if err != nil {
		return 0, err
	}
	if l.latest == nil {
		l.latest = map[string]int64{}
	}
	l.latest[key] = c.SnapshotID
	return c.SnapshotID, nil
}

func (l *rebillingLake) AccountCosts(ctx context.Context, payer, text string, snapshot int64) ([]billing.AccountTotal, error) {
	p, err := recordPeriod(text)
	if err != nil {
		return nil, err
	}
	totals, err := l.lake.PeriodTotals(ctx, billing.LineItems, payer, p, snapshot)
	if err != nil {
		return nil, err
	}
	return billing.ByAccount(totals), nil
}

func lineItemScan(s rebilling.Scan) (lakehouse.LineItemScan, error) {
	p, err := recordPeriod(s.Period)
	return lakehouse.LineItemScan{Payer: s.Payer, Period: p, SnapshotID: s.SnapshotID, Accounts: s.Accounts, Columns: s.Columns}, err
}

// snapshotError makes a pinned snapshot that no longer exists a named
// failure: retrying cannot bring it back.
func snapshotError(err error) error {
	if errors.Is(err, lakehouse.ErrSnapshotNotFound) {
		return rebilling.SnapshotGone(err)
	}
	return err
}

func (l *rebillingLake) TagKeys(ctx context.Context, s rebilling.Scan) ([]string, error) {
	scan, err := lineItemScan(s)
	if err != nil {
		return nil, err
	}
	keys, err := l.lake.TagKeys(ctx, scan)
	return keys, snapshotError(err)
}

func (l *rebillingLake) ScanLineItems(ctx context.Context, s rebilling.Scan, fn func(*billing.Record) error) error {
	scan, err := lineItemScan(s)
	if err != nil {
		return err
	}
	return snapshotError(l.lake.ScanLineItems(ctx, scan, fn))
}

func (l *rebillingLake) LatestResale(ctx context.Context, customer, period string) (int64, string, bool, error) {
	c, ok, err := l.lake.LatestResaleCommit(ctx, customer, period)
	return c.SnapshotID, c.Pins, ok, err
}

// lakehouse.ResaleRow is rebilling's row itself, so rows pass through.
func (l *rebillingLake) ScanResale(ctx context.Context, customer, period string, snapshot int64, fn func(*rebilling.ResaleRow) error) error {
	return l.lake.ScanResale(ctx, customer, period, snapshot, fn)
}

func (l *rebillingLake) ReplaceInvoice(ctx context.Context, customer, period string, lines []rebilling.InvoiceLine) error {
	return l.lake.ReplaceInvoice(ctx, customer, period, lines)
}

func (l *rebillingLake) NewResaleWriter(ctx context.Context, customer, period, name string) (rebilling.ResaleWriter, error) {
	w, err := l.lake.NewResaleWriter(ctx, customer, period, name)
	if err != nil {
		return nil, err
	}
	return &resaleWriter{lake: l.lake, w: w, customer: customer, period: period}, nil
}

// resaleWriter writes a cycle's resale rows and commits them with
// lakehouse.Lake.ReplaceResale.
type resaleWriter struct {
	lake             *lakehouse.Lake
	w                *lakehouse.ResaleWriter
	customer, period string
}

func (w *resaleWriter) Append(r *rebilling.ResaleRow) error {
	return w.w.Append(r)
}
func (w *resaleWriter) Abort() { w.w.Abort() }

func (w *resaleWriter) Checkpoint() ([]string, int64, error) { return w.w.Checkpoint() }
func (w *resaleWriter) Resume(files []string, rows int64)    { w.w.Resume(files, rows) }

func (w *resaleWriter) Commit(ctx context.Context, pins string) (int64, error) {
	files, err := w.w.Close()
	if err != nil {
		return 0, err
	}
	snap, _, err := w.lake.ReplaceResale(ctx, w.customer, w.period, pins, files, w.w.Rows())
	return snap, err
}
