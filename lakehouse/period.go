package lakehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/ingest"
	"github.com/costlake/costlake/internal/money"
)

// Snapshot summary properties that record where a period's data came from.
const (
	PropPayer    = "costlake.payer"
	PropPeriod   = "costlake.period"
	PropAssembly = "costlake.assembly-id"
	PropSource   = "costlake.source"
	PropRunID    = "costlake.run-id"
	PropRows     = "costlake.rows"
	PropDelivery = "costlake.delivered-at"
)

// PeriodCommit describes the snapshot that last replaced a period.
type PeriodCommit struct {
	SnapshotID  int64
	AssemblyID  string
	RunID       string
	Source      string
	DeliveredAt time.Time // zero when the commit did not record it
}

// LatestPeriodCommit walks the current snapshot's ancestry for the newest
// commit of payer and period. ok is false when the period was never committed.
func LatestPeriodCommit(tbl *table.Table, payer, period string) (c PeriodCommit, ok bool) {
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			p := s.Summary.Properties
			if p[PropPayer] == payer && p[PropPeriod] == period {
				c := PeriodCommit{SnapshotID: s.SnapshotID, AssemblyID: p[PropAssembly], RunID: p[PropRunID], Source: p[PropSource]}
				c.DeliveredAt, _ = time.Parse(time.RFC3339Nano, p[PropDelivery])
				return c, true
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return PeriodCommit{}, false
}

func periodFilter(bs *billing.Schema, payer, period string) iceberg.BooleanExpression {
	return iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(bs.Payer), payer),
		iceberg.EqualTo(iceberg.Reference(bs.Period), period),
	)
}

// ReplacePeriod commits files as the whole of payer's period in one
// snapshot: the period's previous files leave the table and the new ones
// enter it atomically, so readers see the old period or the new one,
// never half. When the period's latest commit already holds this
// assembly, nothing changes: a commit by the same run (a retried
// activity) is reported as done, and a different run's files are removed.
// An assembly delivered before the committed one arrives late and is
// dropped the same way, so an old delivery never overwrites a restatement.
func (l *Lake) ReplacePeriod(ctx context.Context, bs *billing.Schema, in ingest.CommitPeriodInput) (ingest.CommitPeriodResult, error) {
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return ingest.CommitPeriodResult{}, err
	}
	if prev, ok := LatestPeriodCommit(tbl, in.PayerAccountID, in.Period); ok {
		same := prev.AssemblyID == in.AssemblyID
		late := !same && !prev.DeliveredAt.IsZero() && in.DeliveredAt.Before(prev.DeliveredAt)
		if same && prev.RunID == in.RunID {
			return ingest.CommitPeriodResult{SnapshotID: prev.SnapshotID}, nil // our own commit, retried
		}
		if same || late {
			if err := l.RemoveFiles(ctx, bs, in.DataFiles); err != nil {
				return ingest.CommitPeriodResult{}, err
			}
			return ingest.CommitPeriodResult{SnapshotID: prev.SnapshotID, Unchanged: same, Superseded: late}, nil
		}
	}
	var existing []string
	if tbl.CurrentSnapshot() != nil {
		tasks, err := tbl.Scan(table.WithRowFilter(periodFilter(bs, in.PayerAccountID, in.Period))).PlanFiles(ctx)
		if err != nil {
			return ingest.CommitPeriodResult{}, fmt.Errorf("plan files of %s %s: %w", in.PayerAccountID, in.Period, err)
		}
		for _, t := range tasks {
			existing = append(existing, t.File.FilePath())
		}
	}
	props := iceberg.Properties{
		PropPayer:    in.PayerAccountID,
		PropPeriod:   in.Period,
		PropAssembly: in.AssemblyID,
		PropSource:   in.Source,
		PropRunID:    in.RunID,
		PropRows:     strconv.FormatInt(in.Rows, 10),
	}
	if !in.DeliveredAt.IsZero() {
		props[PropDelivery] = in.DeliveredAt.UTC().Format(time.RFC3339Nano)
	}
	tx := tbl.NewTransaction()
	if len(existing) == 0 {
		err = tx.AddFiles(ctx, in.DataFiles, props, false)
	} else {
		err = tx.ReplaceDataFiles(ctx, existing, in.DataFiles, props)
	}
	if err != nil {
		return ingest.CommitPeriodResult{}, fmt.Errorf("stage commit of %s %s: %w", in.PayerAccountID, in.Period, err)
	}
	committed, err := tx.Commit(ctx)
	if err != nil {
		return ingest.CommitPeriodResult{}, fmt.Errorf("commit %s %s: %w", in.PayerAccountID, in.Period, err)
	}
	return ingest.CommitPeriodResult{SnapshotID: committed.CurrentSnapshot().SnapshotID, ReplacedFiles: len(existing)}, nil
}

// RemoveUncommitted deletes the files of payer's period that the current
// snapshot does not reference, so cleaning up after a failure can never
// remove committed data.
func (l *Lake) RemoveUncommitted(ctx context.Context, bs *billing.Schema, payer, period string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return err
	}
	referenced := map[string]bool{}
	if tbl.CurrentSnapshot() != nil {
		tasks, err := tbl.Scan(table.WithRowFilter(periodFilter(bs, payer, period))).PlanFiles(ctx)
		if err != nil {
			return fmt.Errorf("plan files of %s %s: %w", payer, period, err)
		}
		for _, t := range tasks {
			referenced[t.File.FilePath()] = true
		}
	}
	var orphans []string
	for _, f := range files {
		if !referenced[f] {
			orphans = append(orphans, f)
		}
	}
	return l.RemoveFiles(ctx, bs, orphans)
}

// RemoveOrphans deletes the files in a period's data folder that no
// snapshot references and that are older than olderThan: the leftovers of
// runs that died without cleaning up (a terminated workflow, a lost
// worker). The age keeps it clear of a run still writing. It returns the
// files removed.
func (l *Lake) RemoveOrphans(ctx context.Context, bs *billing.Schema, payer, period string, olderThan time.Duration) ([]string, error) {
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return nil, err
	}
	dir := path.Dir(DataFilePath(tbl, bs, payer, period, "x"))
	res, err := tbl.DeleteOrphanFiles(ctx, table.WithLocation(dir), table.WithFilesOlderThan(olderThan))
	if err != nil {
		return nil, fmt.Errorf("remove orphans under %s: %w", dir, err)
	}
	return res.DeletedFiles, nil
}

// RemoveFiles deletes data files that no snapshot references (files of a
// failed or superseded attempt). Missing files are fine.
func (l *Lake) RemoveFiles(ctx context.Context, bs *billing.Schema, files []string) error {
	if len(files) == 0 {
		return nil
	}
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if err := fsys.Remove(f); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("remove %s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}

// PeriodTotals reads payer's period from a snapshot (0 for the current one)
// and returns rows and cost per usage account and charge type (for
// line_items: unblended cost per account and line item type).
func (l *Lake) PeriodTotals(ctx context.Context, bs *billing.Schema, payer, period string, snapshotID int64) ([]ingest.Total, error) {
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return nil, err
	}
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	opts := []table.ScanOption{
		table.WithRowFilter(periodFilter(bs, payer, period)),
		table.WithSelectedFields(bs.Account, bs.ChargeType, bs.Cost),
		// A row group per batch, one file at a time: reading 4M rows with
		// the defaults (131,072-row batches, a file per CPU) took 165 MiB
		// more RSS, this 80 MiB, and 10% more time (0.66 s).
		table.WithArrowBatchSize(rowGroupRows),
		table.WithMaxConcurrency(1),
	}
	if snapshotID != 0 {
		opts = append(opts, table.WithSnapshotID(snapshotID))
	}
	_, records, err := tbl.Scan(opts...).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %s %s: %w", payer, period, err)
	}
	type key struct{ account, typ string }
	sums := map[key]*ingest.Total{}
	for rec, err := range records {
		if err != nil {
			return nil, fmt.Errorf("scan %s %s: %w", payer, period, err)
		}
		sc := rec.Schema()
		acct := rec.Column(sc.FieldIndices(bs.Account)[0]).(*array.String)
		typ := rec.Column(sc.FieldIndices(bs.ChargeType)[0]).(*array.String)
		cost := rec.Column(sc.FieldIndices(bs.Cost)[0]).(*array.Decimal128)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := key{acct.Value(i), typ.Value(i)}
			t, ok := sums[k]
			if !ok {
				t = &ingest.Total{Account: k.account, LineItemType: k.typ}
				sums[k] = t
			}
			t.Rows++
			if cost.IsValid(i) {
				t.UnblendedCost = t.UnblendedCost.Add(money.FromNum(cost.Value(i)))
			}
		}
		rec.Release()
	}
	out := make([]ingest.Total, 0, len(sums))
	for _, t := range sums {
		out = append(out, *t)
	}
	return ingest.MergeTotals(out), nil
}

// PayersOfPeriod lists the payers whose period the table holds, from the
// snapshot summaries of the current snapshot's ancestry.
func PayersOfPeriod(tbl *table.Table, period string) []string {
	seen := map[string]bool{}
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil && s.Summary.Properties[PropPeriod] == period && s.Summary.Properties[PropPayer] != "" {
			seen[s.Summary.Properties[PropPayer]] = true
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return slices.Sorted(maps.Keys(seen))
}
