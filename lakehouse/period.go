package lakehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
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
	// PropReports lists the reports a commit replaced, for sources with
	// several per period; PropAssembly then names every report's assembly.
	PropReports = "costlake.reports"
	// PropAccounts is the account policy the rows were kept by
	// (payer.AccountPolicy.Fingerprint); absent in older commits.
	PropAccounts = "costlake.accounts"
)

// PeriodReplacement is what ReplacePeriod commits: payer's period, report
// by report.
type PeriodReplacement struct {
	Payer  string
	Period period.Period
	// Source is the delivery's location, recorded on the snapshot.
	Source string
	// RunID is the run committing; it makes a retried commit recognise
	// itself.
	RunID string
	// Accounts is the account policy the files were kept by; a period
	// held under another one is replaced even by the same assembly (the
	// payer's connected accounts changed). "" says nothing.
	Accounts string
	Reports  []ReportFiles
}

// ReportFiles is one report's part of a replacement. Report "" is a
// single-report source's one report.
type ReportFiles struct {
	Report      string
	AssemblyID  string
	DeliveredAt time.Time // an assembly delivered before the report's current one never replaces it
	DataFiles   []string
	Rows        int64
}

// What a replacement did with a report.
const (
	ReportReplaced   = "replaced"   // its rows are now this assembly's
	ReportUnchanged  = "unchanged"  // the table already held this assembly
	ReportSuperseded = "superseded" // a later assembly is committed; this one was dropped
)

// ReportOutcome is what a replacement did with one report.
type ReportOutcome struct {
	Report     string
	AssemblyID string
	Action     string
}

// PeriodReplaced says what ReplacePeriod did.
type PeriodReplaced struct {
	SnapshotID    int64
	Unchanged     bool // every report's assembly was already committed; nothing was committed
	Superseded    bool // nothing was committed, and a newer assembly of some report is
	ReplacedFiles int
	Reports       []ReportOutcome
	// PeriodAssembly names what the period holds after the commit, every
	// report's assembly (cur.PeriodAssembly); empty when nothing was
	// committed.
	PeriodAssembly string
}

// PeriodCommit describes the snapshot that last replaced a period.
type PeriodCommit struct {
	SnapshotID  int64
	AssemblyID  string
	RunID       string
	Source      string
	DeliveredAt time.Time // zero when the commit did not record it
	Accounts    string    // the account policy's fingerprint; "" when the commit did not record it
}

// LatestPeriodCommit reads the newest commit of payer's period from its
// record (costlake_commits). ok is false when the period was never
// committed.
func (l *Lake) LatestPeriodCommit(ctx context.Context, bs *billing.Schema, payer string, p period.Period) (c PeriodCommit, ok bool, err error) {
	r, ok, err := l.latestCommit(ctx, bs.Table, payer, p.String())
	if !ok || err != nil {
		return PeriodCommit{}, false, err
	}
	return periodCommitOf(r.SnapshotID, r.Props), true, nil
}

func periodCommitOf(snapshotID int64, props map[string]string) PeriodCommit {
	c := PeriodCommit{SnapshotID: snapshotID, AssemblyID: props[PropAssembly], RunID: props[PropRunID], Source: props[PropSource], Accounts: props[PropAccounts]}
	c.DeliveredAt, _ = time.Parse(time.RFC3339Nano, props[PropDelivery])
	return c
}

// periodCommitInHistory walks the current snapshot's ancestry for the
// newest commit of payer's period: only for what the records may lack (a
// commit whose record a crash lost, a period committed before records).
func periodCommitInHistory(tbl *table.Table, payer string, p period.Period) (*table.Snapshot, bool) {
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			props := s.Summary.Properties
			if props[PropPayer] == payer && props[PropPeriod] == p.String() {
				return s, true
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return nil, false
}

func periodFilter(bs *billing.Schema, payer string, p period.Period) iceberg.BooleanExpression {
	return iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(bs.Payer), payer),
		iceberg.EqualTo(iceberg.Reference(bs.Period), p.String()),
	)
}

// ReplacePeriod commits files as payer's period in one snapshot: each
// report of the input replaces that report's rows, and only those, so
// readers see the period before or after, never half. The other reports'
// rows stay as they are. A report whose assembly the period already
// holds changes nothing: a commit by the same run (a retried activity)
// is reported as done, and a different run's files are removed. An
// assembly delivered before the committed one arrives late and is
// dropped the same way, so an old delivery never overwrites a
// restatement; that order holds within one source, and a delivery of
// another source (an export cut-over) replaces the period whatever its
// date. Which assembly each report holds is read from, and
// recorded in, costlake_period_reports. A commit that loses a race with
// another payer's is decided again on the newer snapshot.
func (l *Lake) ReplacePeriod(ctx context.Context, bs *billing.Schema, in PeriodReplacement) (PeriodReplaced, error) {
	return retryLostRace(ctx, func() (PeriodReplaced, error) { return l.replacePeriodOnce(ctx, bs, in) })
}

// replacePeriodOnce is one attempt of ReplacePeriod, on the table as it is
// now; nothing changes before its commit, so a lost race leaves nothing.
func (l *Lake) replacePeriodOnce(ctx context.Context, bs *billing.Schema, in PeriodReplacement) (PeriodReplaced, error) {
	var res PeriodReplaced
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return res, err
	}
	held, err := l.PeriodReports(ctx, bs, in.Payer, in.Period)
	if err != nil {
		return res, err
	}
	recorded, err := l.readReportRecords(ctx, bs, in.Payer, in.Period)
	if err != nil {
		return res, err
	}
	existing, err := periodFiles(ctx, tbl, bs, in.Payer, in.Period)
	if err != nil {
		return res, err
	}
	referenced := map[string]bool{}
	for _, f := range existing {
		referenced[f] = true
	}
	// Delivery times order one export's assemblies; two exports' (a
	// payer's cut-over from legacy CUR to CUR 2.0) are not comparable, so
	// a delivery from another source than the period's replaces it
	// whatever its date. Which export a period is taken from is the
	// crawl's decision (payer.Cutover).
	// Likewise rows kept by another account policy are taken again,
	// even from the same assembly; a commit that recorded none is taken
	// as kept by this one, so older periods are not all ingested again.
	otherSource, otherAccounts := false, false
	if c, ok, err := l.latestCommit(ctx, bs.Table, in.Payer, in.Period.String()); err != nil {
		return res, err
	} else if ok {
		held, now := strings.TrimRight(c.Props[PropSource], "/"), strings.TrimRight(in.Source, "/")
		otherSource = now != "" && held != "" && held != now
		otherAccounts = in.Accounts != "" && c.Props[PropAccounts] != "" && c.Props[PropAccounts] != in.Accounts
	}

	reports := in.Reports
	if len(reports) == 0 {
		return res, fmt.Errorf("replace %s %s: no reports", in.Payer, in.Period)
	}
	replace := map[string]bool{} // reports this call commits
	landed := false              // this run's commit is in the table already; only its record is missing
	var drop []string            // files of reports that change nothing
	// The newest commit of the period, for a call that commits nothing:
	// snapshot IDs are random, sequence numbers grow.
	var latest int64
	var seq int64 = -1
	for _, c := range held {
		if s := tbl.SnapshotByID(c.SnapshotID); s != nil && s.SequenceNumber > seq {
			latest, seq = c.SnapshotID, s.SequenceNumber
		}
	}
	after := map[string]string{} // report → assembly once committed
	for r, c := range recorded {
		after[r] = c.AssemblyID
	}
	for _, r := range reports {
		prev, ok := held[r.Report]
		action := ReportReplaced
		switch {
		case slices.ContainsFunc(r.DataFiles, func(f string) bool { return referenced[f] }):
			landed = true
		case ok && prev.AssemblyID == r.AssemblyID && prev.RunID == in.RunID:
			// our own commit, retried
		case ok && prev.AssemblyID == r.AssemblyID && !otherAccounts:
			action = ReportUnchanged
		case ok && !otherSource && !prev.DeliveredAt.IsZero() && r.DeliveredAt.Before(prev.DeliveredAt):
			action = ReportSuperseded
		default:
			replace[r.Report] = true
		}
		res.Reports = append(res.Reports, ReportOutcome{Report: r.Report, AssemblyID: r.AssemblyID, Action: action})
		switch action {
		case ReportReplaced:
			after[r.Report] = r.AssemblyID
		default:
			drop = append(drop, r.DataFiles...)
			after[r.Report] = prev.AssemblyID
		}
	}
	if len(replace) == 0 {
		if err := l.RemoveFiles(ctx, bs, drop); err != nil {
			return res, err
		}
		res.SnapshotID = latest
		if landed {
			// The commit went through but its record did not: find it and
			// record it now.
			snap, _ := periodCommitInHistory(tbl, in.Payer, in.Period)
			if snap == nil {
				return res, fmt.Errorf("replace %s %s: this run's files are in the table but no commit of the period is", in.Payer, in.Period)
			}
			if err := l.recordCommit(ctx, l.db, bs.Table, snap); err != nil {
				return res, err
			}
			c := periodCommitOf(snap.SnapshotID, snap.Summary.Properties)
			res.SnapshotID, res.PeriodAssembly = c.SnapshotID, c.AssemblyID
			if err := l.recordReports(ctx, bs, in.Payer, in.Period, reportCommits(in, reports, res.Reports, c.SnapshotID)); err != nil {
				return res, err
			}
			return res, nil
		}
		if slices.ContainsFunc(res.Reports, func(o ReportOutcome) bool { return o.Action == ReportReplaced }) {
			return res, nil // a retried commit of this run
		}
		res.Superseded = slices.ContainsFunc(res.Reports, func(o ReportOutcome) bool { return o.Action == ReportSuperseded })
		res.Unchanged = !res.Superseded
		return res, nil
	}

	// The files that leave. A single-report source (report "") replaces
	// the whole period, as it always did. Named reports replace their own
	// files, those of report "" (the period as ingested before the source
	// had several reports, or from another, single-report source), and
	// those of no report that is delivered now or recorded.
	single := len(reports) == 1 && reports[0].Report == ""
	delivered := map[string]bool{}
	for _, r := range reports {
		delivered[r.Report] = true
	}
	var remove, add, forget []string
	for _, f := range existing {
		r := reportOfFile(f)
		_, kept := recorded[r]
		if single || replace[r] || r == "" || (!delivered[r] && !kept) {
			remove = append(remove, f)
		}
	}
	for r := range recorded {
		if single && r != "" || !single && r == "" {
			forget = append(forget, r)
			delete(after, r)
		}
	}
	var rows int64
	var deliveredAt time.Time
	var replaced []string
	for _, r := range reports {
		if replace[r.Report] {
			add = append(add, r.DataFiles...)
			rows += r.Rows
			if r.DeliveredAt.After(deliveredAt) {
				deliveredAt = r.DeliveredAt
			}
			replaced = append(replaced, r.Report)
		}
	}
	props := iceberg.Properties{
		PropPayer:    in.Payer,
		PropPeriod:   in.Period.String(),
		PropAssembly: cur.PeriodAssembly(after),
		PropSource:   in.Source,
		PropRunID:    in.RunID,
		PropRows:     strconv.FormatInt(rows, 10),
	}
	if !deliveredAt.IsZero() {
		props[PropDelivery] = deliveredAt.UTC().Format(time.RFC3339Nano)
	}
	if in.Accounts != "" {
		props[PropAccounts] = in.Accounts
	}
	if len(replaced) > 1 || replaced[0] != "" {
		props[PropReports] = strings.Join(replaced, ",")
	}
	tx := tbl.NewTransaction()
	if len(remove) == 0 {
		// No duplicate check: it reads every manifest of the table, and
		// the files are new (named by this run, under the period's own
		// folder, which was just found to hold none of them).
		err = tx.AddFiles(ctx, add, props, true)
	} else {
		err = tx.ReplaceDataFiles(ctx, remove, add, props)
	}
	if err != nil {
		return res, fmt.Errorf("stage commit of %s %s: %w", in.Payer, in.Period, err)
	}
	committed, err := l.commit(ctx, tx, tbl)
	if err != nil {
		return res, fmt.Errorf("commit %s %s: %w", in.Payer, in.Period, err)
	}
	res.SnapshotID, res.ReplacedFiles, res.PeriodAssembly = committed.CurrentSnapshot().SnapshotID, len(remove), props[PropAssembly]
	if err := l.recordReports(ctx, bs, in.Payer, in.Period, reportCommits(in, reports, res.Reports, res.SnapshotID), forget...); err != nil {
		return res, err
	}
	if err := l.RemoveFiles(ctx, bs, drop); err != nil {
		return res, err
	}
	return res, nil
}

// reportCommits are the records of the reports a commit replaced.
func reportCommits(in PeriodReplacement, reports []ReportFiles, outcomes []ReportOutcome, snapshot int64) []ReportCommit {
	var out []ReportCommit
	for i, r := range reports {
		if outcomes[i].Action == ReportReplaced {
			out = append(out, ReportCommit{Report: r.Report, AssemblyID: r.AssemblyID, DeliveredAt: r.DeliveredAt, RunID: in.RunID, SnapshotID: snapshot, Rows: r.Rows})
		}
	}
	return out
}

// periodFiles lists the data files of payer's period in the current snapshot.
func periodFiles(ctx context.Context, tbl *table.Table, bs *billing.Schema, payer string, p period.Period) ([]string, error) {
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	tasks, err := tbl.Scan(table.WithRowFilter(periodFilter(bs, payer, p))).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s %s: %w", payer, p, err)
	}
	out := make([]string, 0, len(tasks))
	for _, t := range tasks {
		out = append(out, t.File.FilePath())
	}
	return out, nil
}

// RemoveUncommitted deletes the files of payer's period that the current
// snapshot does not reference, so cleaning up after a failure can never
// remove committed data.
func (l *Lake) RemoveUncommitted(ctx context.Context, bs *billing.Schema, payer string, p period.Period, files []string) error {
	if len(files) == 0 {
		return nil
	}
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return err
	}
	referenced := map[string]bool{}
	if tbl.CurrentSnapshot() != nil {
		tasks, err := tbl.Scan(table.WithRowFilter(periodFilter(bs, payer, p))).PlanFiles(ctx)
		if err != nil {
			return fmt.Errorf("plan files of %s %s: %w", payer, p, err)
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
func (l *Lake) RemoveOrphans(ctx context.Context, bs *billing.Schema, payer string, p period.Period, olderThan time.Duration) ([]string, error) {
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return nil, err
	}
	dir := path.Dir(DataFilePath(tbl, bs, payer, p, "x"))
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
func (l *Lake) PeriodTotals(ctx context.Context, bs *billing.Schema, payer string, p period.Period, snapshotID int64) ([]billing.Total, error) {
	byReport, err := l.periodTotals(ctx, bs, payer, p, snapshotID, false)
	return byReport[""], err
}

// PeriodReportTotals is PeriodTotals per report of the period (rows
// written before reports existed count as report "").
func (l *Lake) PeriodReportTotals(ctx context.Context, bs *billing.Schema, payer string, p period.Period, snapshotID int64) (map[string][]billing.Total, error) {
	return l.periodTotals(ctx, bs, payer, p, snapshotID, true)
}

func (l *Lake) periodTotals(ctx context.Context, bs *billing.Schema, payer string, p period.Period, snapshotID int64, byReport bool) (map[string][]billing.Total, error) {
	tbl, err := l.Table(ctx, bs)
	if err != nil {
		return nil, err
	}
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	fields := []string{bs.Account, bs.ChargeType, bs.Cost}
	if byReport {
		fields = append(fields, bs.Report)
	}
	opts := []table.ScanOption{
		table.WithRowFilter(periodFilter(bs, payer, p)),
		table.WithSelectedFields(fields...),
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
		return nil, fmt.Errorf("scan %s %s: %w", payer, p, err)
	}
	type key struct{ report, account, typ string }
	sums := map[key]*billing.Total{}
	for rec, err := range records {
		if err != nil {
			return nil, fmt.Errorf("scan %s %s: %w", payer, p, err)
		}
		sc := rec.Schema()
		acct := rec.Column(sc.FieldIndices(bs.Account)[0]).(*array.String)
		typ := rec.Column(sc.FieldIndices(bs.ChargeType)[0]).(*array.String)
		cost := rec.Column(sc.FieldIndices(bs.Cost)[0]).(*array.Decimal128)
		var report *array.String
		if byReport {
			report = rec.Column(sc.FieldIndices(bs.Report)[0]).(*array.String)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k := key{"", acct.Value(i), typ.Value(i)}
			if report != nil && report.IsValid(i) {
				k.report = report.Value(i)
			}
			t, ok := sums[k]
			if !ok {
				t = &billing.Total{Account: k.account, LineItemType: k.typ}
				sums[k] = t
			}
			t.Rows++
			if cost.IsValid(i) {
				t.UnblendedCost = t.UnblendedCost.Add(money.FromNum(cost.Value(i)))
			}
		}
		rec.Release()
	}
	lists := map[string][]billing.Total{}
	for k, t := range sums {
		lists[k.report] = append(lists[k.report], *t)
	}
	out := make(map[string][]billing.Total, len(lists))
	for r, l := range lists {
		out[r] = billing.MergeTotals(l)
	}
	return out, nil
}

// PayersOfPeriod lists the payers that committed period, sorted.
func (l *Lake) PayersOfPeriod(ctx context.Context, bs *billing.Schema, p period.Period) ([]string, error) {
	return l.ownersOfPeriod(ctx, bs.Table, p.String())
}
