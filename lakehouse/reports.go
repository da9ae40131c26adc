package lakehouse

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/sqlbind"
)

// ReportCommit is what a payer's period holds of one report: the
// assembly its rows came from and the commit that put them there.
type ReportCommit struct {
	Report      string
	AssemblyID  string
	DeliveredAt time.Time // zero when the commit did not record it
	RunID       string
	SnapshotID  int64
	Rows        int64
}

// costlake_period_reports is the keyed record of which assembly each
// report of a payer's period holds: crawls and commits look it up on
// every run, so it is a row per key, never a walk over snapshot history.
// It is written right after the Iceberg commit; the rows themselves
// carry their report (costlake_report) and their files sit under the
// report's folder, so a record lost to a crash costs one redundant
// ingestion, never a wrong replacement.
const reportRecordsDDL = `CREATE TABLE IF NOT EXISTS costlake_period_reports (
	table_name       TEXT NOT NULL,
	payer_account_id TEXT NOT NULL,
	period           TEXT NOT NULL,
	report           TEXT NOT NULL,
	assembly_id      TEXT NOT NULL,
	delivered_at     TEXT NOT NULL,
	run_id           TEXT NOT NULL,
	snapshot_id      BIGINT NOT NULL,
	row_count        BIGINT NOT NULL,
	PRIMARY KEY (table_name, payer_account_id, period, report))`

func (l *Lake) ensureReportRecords(ctx context.Context) error {
	if _, err := l.db.ExecContext(ctx, reportRecordsDDL); err != nil {
		return fmt.Errorf("create costlake_period_reports: %w", err)
	}
	return nil
}

// q rewrites ? placeholders for PostgreSQL.
func (l *Lake) q(query string) string {
	if _, pg := l.DB(); !pg {
		return query
	}
	return sqlbind.Dollar(query)
}

// PeriodReports returns, per report, what payer's period holds. A period
// committed before the report records existed has no rows in them: its
// newest commit (costlake_commits) stands for report "" and is recorded.
func (l *Lake) PeriodReports(ctx context.Context, bs *billing.Schema, payer string, p period.Period) (map[string]ReportCommit, error) {
	out, err := l.readReportRecords(ctx, bs, payer, p)
	if err != nil || len(out) > 0 {
		return out, err
	}
	r, ok, err := l.latestCommit(ctx, bs.Table, payer, p.String())
	if !ok || err != nil {
		return out, err
	}
	c := periodCommitOf(r.SnapshotID, r.Props)
	rows, _ := strconv.ParseInt(r.Props[PropRows], 10, 64)
	rc := ReportCommit{AssemblyID: c.AssemblyID, DeliveredAt: c.DeliveredAt, RunID: c.RunID, SnapshotID: c.SnapshotID, Rows: rows}
	if err := l.recordReports(ctx, bs, payer, p, []ReportCommit{rc}); err != nil {
		return nil, err
	}
	out[""] = rc
	return out, nil
}

func (l *Lake) readReportRecords(ctx context.Context, bs *billing.Schema, payer string, p period.Period) (map[string]ReportCommit, error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT report, assembly_id, delivered_at, run_id, snapshot_id, row_count
		FROM costlake_period_reports WHERE table_name = ? AND payer_account_id = ? AND period = ?`), bs.Table, payer, p.String())
	if err != nil {
		return nil, fmt.Errorf("read reports of %s %s: %w", payer, p, err)
	}
	defer rows.Close()
	out := map[string]ReportCommit{}
	for rows.Next() {
		var c ReportCommit
		var delivered string
		if err := rows.Scan(&c.Report, &c.AssemblyID, &delivered, &c.RunID, &c.SnapshotID, &c.Rows); err != nil {
			return nil, err
		}
		c.DeliveredAt, _ = time.Parse(time.RFC3339Nano, delivered)
		out[c.Report] = c
	}
	return out, rows.Err()
}

// recordReports upserts reports' commits of payer's period, and removes
// the records of reports whose rows left the period, in one transaction.
func (l *Lake) recordReports(ctx context.Context, bs *billing.Schema, payer string, p period.Period, commits []ReportCommit, gone ...string) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range gone {
		if _, err := tx.ExecContext(ctx, l.q(`DELETE FROM costlake_period_reports
			WHERE table_name = ? AND payer_account_id = ? AND period = ? AND report = ?`), bs.Table, payer, p.String(), r); err != nil {
			return fmt.Errorf("forget report %q of %s %s: %w", r, payer, p, err)
		}
	}
	for _, c := range commits {
		delivered := ""
		if !c.DeliveredAt.IsZero() {
			delivered = c.DeliveredAt.UTC().Format(time.RFC3339Nano)
		}
		_, err := tx.ExecContext(ctx, l.q(`INSERT INTO costlake_period_reports
			(table_name, payer_account_id, period, report, assembly_id, delivered_at, run_id, snapshot_id, row_count)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (table_name, payer_account_id, period, report) DO UPDATE SET
			assembly_id = excluded.assembly_id, delivered_at = excluded.delivered_at, run_id = excluded.run_id,
			snapshot_id = excluded.snapshot_id, row_count = excluded.row_count`),
			bs.Table, payer, p.String(), c.Report, c.AssemblyID, delivered, c.RunID, c.SnapshotID, c.Rows)
		if err != nil {
			return fmt.Errorf("record report %q of %s %s: %w", c.Report, payer, p, err)
		}
	}
	return tx.Commit()
}

// reportFolder is the folder segment that holds a report's data files in
// its period's folder; a single-report source's files (report "") sit in
// the period's folder itself, as they always did.
const reportFolder = billing.ColReport + "="

// ReportDataFilePath is DataFilePath for one report of the period: under
// "<period folder>/costlake_report=<report>/" unless the report is "".
func ReportDataFilePath(dataFile string, report string) string {
	if report == "" {
		return dataFile
	}
	i := strings.LastIndex(dataFile, "/")
	return dataFile[:i+1] + reportFolder + url.PathEscape(report) + dataFile[i:]
}

// reportOfFile tells a data file's report from its path: "" for files in
// the period's folder itself (single-report sources, and every file
// written before reports existed).
func reportOfFile(path string) string {
	dir := path[:max(strings.LastIndex(path, "/"), 0)]
	seg := dir[strings.LastIndex(dir, "/")+1:]
	v, ok := strings.CutPrefix(seg, reportFolder)
	if !ok {
		return ""
	}
	if r, err := url.PathUnescape(v); err == nil {
		return r
	}
	return v
}
