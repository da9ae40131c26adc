package lakehouse

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// costlake_commits records, per table and key, the newest snapshot that
// replaced the key's rows: a payer's period in line_items and focus, a
// customer's period in resale_line_items, a payer's range of days in
// ce_daily_costs. Finding "what does this payer's period hold" is then a
// keyed read that costs the same at the 10th and the 100,000th commit,
// where walking the snapshot history grew with it (and breaks once old
// snapshots expire). Every commit records itself right after the
// catalog accepts it (Lake.commit); the snapshot summary keeps the same
// properties, so a record lost to a crash costs at most one redundant
// commit, and ReplacePeriod recognises its own landed files either way.
const commitRecordsDDL = `CREATE TABLE IF NOT EXISTS costlake_commits (
	table_name      TEXT NOT NULL,
	owner           TEXT NOT NULL,
	period          TEXT NOT NULL,
	range_end       TEXT NOT NULL,
	snapshot_id     BIGINT NOT NULL,
	sequence_number BIGINT NOT NULL,
	properties      TEXT NOT NULL,
	PRIMARY KEY (table_name, owner, period))`

// commitKey is what a commit's snapshot summary replaced: owner (payer or
// customer) and period (YYYY-MM, or a Cost Explorer range's first day,
// with rangeEnd its day after the last). ok is false for commits that
// replace no key (schema changes, maintenance).
func commitKey(props map[string]string) (owner, period, rangeEnd string, ok bool) {
	switch {
	case props[PropSource] == SourceCostExplorer:
		return props[PropPayer], props[PropRangeStart], props[PropRangeEnd], props[PropPayer] != ""
	case props[PropCustomer] != "":
		return props[PropCustomer], props[PropPeriod], "", props[PropPeriod] != ""
	default:
		return props[PropPayer], props[PropPeriod], "", props[PropPayer] != "" && props[PropPeriod] != ""
	}
}

// commitRecord is one row of costlake_commits.
type commitRecord struct {
	SnapshotID int64
	Sequence   int64
	Props      map[string]string
}

// recordCommit records snap as its key's newest commit in tbl. A record
// never moves back: a slower writer (or the backfill) with an older
// snapshot leaves a newer record as it is.
func (l *Lake) recordCommit(ctx context.Context, q execer, tableName string, snap *table.Snapshot) error {
	if snap == nil || snap.Summary == nil {
		return nil
	}
	owner, period, rangeEnd, ok := commitKey(snap.Summary.Properties)
	if !ok {
		return nil
	}
	props := map[string]string{}
	for k, v := range snap.Summary.Properties {
		if strings.HasPrefix(k, "costlake.") {
			props[k] = v
		}
	}
	body, err := json.Marshal(props)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, l.q(`INSERT INTO costlake_commits
		(table_name, owner, period, range_end, snapshot_id, sequence_number, properties)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (table_name, owner, period) DO UPDATE SET
		range_end = excluded.range_end, snapshot_id = excluded.snapshot_id,
		sequence_number = excluded.sequence_number, properties = excluded.properties
		WHERE excluded.sequence_number > costlake_commits.sequence_number`),
		tableName, owner, period, rangeEnd, snap.SnapshotID, snap.SequenceNumber, string(body))
	if err != nil {
		return fmt.Errorf("record commit %d of %s %s %s: %w", snap.SnapshotID, tableName, owner, period, err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// latestCommit reads the newest recorded commit of tableName's key; ok is
// false when the key was never committed.
func (l *Lake) latestCommit(ctx context.Context, tableName, owner, period string) (commitRecord, bool, error) {
	return l.scanCommit(l.db.QueryRowContext(ctx, l.q(`SELECT snapshot_id, sequence_number, properties FROM costlake_commits
		WHERE table_name = ? AND owner = ? AND period = ?`), tableName, owner, period))
}

// latestOverlapping reads the newest recorded Cost Explorer commit of
// owner whose range overlaps [start, end).
func (l *Lake) latestOverlapping(ctx context.Context, tableName, owner, start, end string) (commitRecord, bool, error) {
	return l.scanCommit(l.db.QueryRowContext(ctx, l.q(`SELECT snapshot_id, sequence_number, properties FROM costlake_commits
		WHERE table_name = ? AND owner = ? AND period < ? AND ? < range_end
		ORDER BY sequence_number DESC LIMIT 1`), tableName, owner, end, start))
}

func (l *Lake) scanCommit(row *sql.Row) (commitRecord, bool, error) {
	var c commitRecord
	var body string
	err := row.Scan(&c.SnapshotID, &c.Sequence, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read costlake_commits: %w", err)
	}
	if err := json.Unmarshal([]byte(body), &c.Props); err != nil {
		return c, false, fmt.Errorf("read costlake_commits: snapshot %d's properties: %w", c.SnapshotID, err)
	}
	return c, true, nil
}

// ownersOfPeriod lists the owners with a recorded commit of period in
// tableName, sorted.
func (l *Lake) ownersOfPeriod(ctx context.Context, tableName, period string) ([]string, error) {
	return queryColumn[string](ctx, l, `SELECT owner FROM costlake_commits
		WHERE table_name = ? AND period = ? ORDER BY owner`, tableName, period)
}

// recordedSnapshots lists every snapshot a record of tableName names: the
// newest commit of each key, which readers look up by ID.
func (l *Lake) recordedSnapshots(ctx context.Context, tableName string) ([]int64, error) {
	return queryColumn[int64](ctx, l, `SELECT snapshot_id FROM costlake_commits WHERE table_name = ?`, tableName)
}

// queryColumn reads the one column of query's rows.
func queryColumn[T any](ctx context.Context, l *Lake, query string, args ...any) ([]T, error) {
	rows, err := l.db.QueryContext(ctx, l.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read costlake's records: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ensureCommitRecords creates costlake_commits and, for a table committed
// to before it existed, records each key's newest commit from the
// snapshot history, once: a table with any record is not walked again.
func (l *Lake) ensureCommitRecords(ctx context.Context, ids ...table.Identifier) error {
	if _, err := l.db.ExecContext(ctx, commitRecordsDDL); err != nil {
		return fmt.Errorf("create costlake_commits: %w", err)
	}
	for _, id := range ids {
		name := tableName(id)
		var n int
		if err := l.db.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM costlake_commits WHERE table_name = ?`), name).Scan(&n); err != nil {
			return fmt.Errorf("read costlake_commits: %w", err)
		}
		if n > 0 {
			continue
		}
		tbl, err := l.cat.LoadTable(ctx, id)
		if err != nil {
			return fmt.Errorf("load %s: %w", name, err)
		}
		if err := l.backfillCommits(ctx, name, tbl); err != nil {
			return err
		}
	}
	return nil
}

// backfillCommits records, from newest to oldest along the current
// snapshot's ancestry, the first commit seen of each key.
func (l *Lake) backfillCommits(ctx context.Context, name string, tbl *table.Table) error {
	type key struct{ owner, period string }
	seen := map[key]bool{}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			if owner, period, _, ok := commitKey(s.Summary.Properties); ok && !seen[key{owner, period}] {
				seen[key{owner, period}] = true
				if err := l.recordCommit(ctx, tx, name, s); err != nil {
					return err
				}
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return tx.Commit()
}

// tableName is how costlake_commits names a table: the identifier's last
// part, as costlake_period_reports does.
func tableName(id table.Identifier) string { return id[len(id)-1] }
