package lakehouse

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
)

// Defaults of MaintainOptions.
const (
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultOrphanAge is Iceberg's own default: longer than any ingestion
	// takes between writing its files and committing them.
	DefaultOrphanAge = 72 * time.Hour
)

// keepTagPrefix names the tags that keep pinned snapshots through expiry:
// Iceberg keeps every snapshot a tag points at, and engines can read them
// by name (FOR VERSION AS OF 'costlake-keep-…').
const keepTagPrefix = "costlake-keep-"

// MaintainOptions tune MaintainTable.
type MaintainOptions struct {
	// Retention: snapshots older than this expire, unless kept (0:
	// DefaultRetention). The current snapshot never expires.
	Retention time.Duration
	// Keep are snapshots that stay whatever their age.
	Keep []int64
	// Pinned, when set, lists more snapshots to keep (the line_items
	// snapshots closed cycles pin); it is read under the pin lock, so no
	// cycle closes between the reading and the expiry (HoldSnapshots).
	Pinned func(context.Context) ([]int64, error)
	// OrphanAge: files in the table's location that no snapshot
	// references and older than this are removed (0: DefaultOrphanAge).
	OrphanAge time.Duration
	// Now is when the maintenance runs; the expiry cut-off is Now minus
	// Retention (zero: the wall clock).
	Now time.Time
}

// MaintainResult says what MaintainTable did.
type MaintainResult struct {
	Table                           string
	ManifestsBefore, ManifestsAfter int
	SnapshotsBefore, SnapshotsAfter int
	Kept                            int // snapshots kept by Keep
	OrphansRemoved                  int
	// Repointed are records (costlake_commits, costlake_period_reports)
	// whose snapshot expired and that now name the current one, which
	// holds the same rows of their key.
	Repointed int
}

// MaintainTable keeps a table cheap to commit to and to scan as its
// history grows: it rewrites the current snapshot's manifests into few
// target-sized ones, tags the snapshots to keep, expires the other
// snapshots older than the retention (removing the files only they
// referenced), points records of expired snapshots at the current one,
// and removes orphan files. Rows are never changed: totals at the current
// snapshot and at every kept one are the same before and after.
func (l *Lake) MaintainTable(ctx context.Context, id table.Identifier, o MaintainOptions) (MaintainResult, error) {
	res := MaintainResult{Table: tableName(id)}
	o.Retention = cmpOr(o.Retention, DefaultRetention)
	o.OrphanAge = cmpOr(o.OrphanAge, DefaultOrphanAge)
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	tbl, err := l.cat.LoadTable(ctx, id)
	if err != nil {
		return res, fmt.Errorf("load %s: %w", res.Table, err)
	}
	if tbl.CurrentSnapshot() == nil {
		return res, nil
	}
	res.SnapshotsBefore = len(tbl.Metadata().Snapshots())
	if res.ManifestsBefore, err = manifestCount(ctx, tbl); err != nil {
		return res, err
	}
	if err := l.rewriteManifests(ctx, id); err != nil {
		return res, err
	}
	err = l.withPinLock(ctx, true, func(ctx context.Context) error {
		keep := o.Keep
		if o.Pinned != nil {
			pinned, err := o.Pinned(ctx)
			if err != nil {
				return err
			}
			keep = append(slices.Clone(keep), pinned...)
		}
		if res.Kept, err = l.tagKept(ctx, id, keep); err != nil {
			return err
		}
		if tbl, err = l.expire(ctx, id, o); err != nil {
			return err
		}
		if id[0] != Namespace {
			// A customer's copy has no records of its own: costlake_commits
			// names the billing table of the same name.
			return nil
		}
		res.Repointed, err = l.repointRecords(ctx, tbl)
		return err
	})
	if err != nil {
		return res, err
	}
	res.SnapshotsAfter = len(tbl.Metadata().Snapshots())
	if res.ManifestsAfter, err = manifestCount(ctx, tbl); err != nil {
		return res, err
	}
	orphans, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(o.OrphanAge))
	if err != nil {
		return res, fmt.Errorf("remove orphan files of %s: %w", res.Table, err)
	}
	res.OrphansRemoved = len(orphans.DeletedFiles)
	return res, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func manifestCount(ctx context.Context, tbl *table.Table) (int, error) {
	s := tbl.CurrentSnapshot()
	if s == nil {
		return 0, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return 0, err
	}
	m, err := s.Manifests(fs)
	if err != nil {
		return 0, fmt.Errorf("read manifests of %s: %w", tbl.Identifier(), err)
	}
	return len(m), nil
}

// rewriteManifests merges the current snapshot's small manifests, in a
// replace snapshot that changes no rows.
func (l *Lake) rewriteManifests(ctx context.Context, id table.Identifier) error {
	_, err := retryLostRace(ctx, func() (struct{}, error) {
		tbl, err := l.cat.LoadTable(ctx, id)
		if err != nil {
			return struct{}{}, err
		}
		tx := tbl.NewTransaction()
		rw, err := tx.RewriteManifests(ctx)
		if err != nil {
			return struct{}{}, fmt.Errorf("rewrite manifests of %s: %w", tableName(id), err)
		}
		if rw.IsNoOp() {
			return struct{}{}, nil
		}
		_, err = l.commit(ctx, tx, tbl)
		return struct{}{}, err
	})
	return err
}

// tagKept points a keep tag at each snapshot of keep the table still has,
// and removes the keep tags of snapshots no longer kept. It returns how
// many are kept.
func (l *Lake) tagKept(ctx context.Context, id table.Identifier, keep []int64) (int, error) {
	return retryLostRace(ctx, func() (int, error) {
		tbl, err := l.cat.LoadTable(ctx, id)
		if err != nil {
			return 0, err
		}
		meta := tbl.Metadata()
		want := map[string]int64{}
		for _, s := range keep {
			if tbl.SnapshotByID(s) != nil {
				want[keepTagPrefix+strconv.FormatInt(s, 10)] = s
			}
		}
		var updates []table.Update
		for name := range meta.Refs() {
			if _, ok := want[name]; strings.HasPrefix(name, keepTagPrefix) && !ok {
				updates = append(updates, table.NewRemoveSnapshotRefUpdate(name))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if _, ok := refOf(meta, name); !ok {
				updates = append(updates, table.NewSetSnapshotRefUpdate(name, want[name], table.TagRef, 0, 0, 0))
			}
		}
		if len(updates) == 0 {
			return len(want), nil
		}
		_, _, err = l.cat.CommitTable(ctx, id, []table.Requirement{table.AssertTableUUID(meta.TableUUID())}, updates)
		if err != nil {
			if l.moved(ctx, tbl) {
				return 0, fmt.Errorf("%w: %w", errLostRace, err)
			}
			return 0, fmt.Errorf("tag kept snapshots of %s: %w", tableName(id), err)
		}
		return len(want), nil
	})
}

func refOf(meta table.Metadata, name string) (table.SnapshotRef, bool) {
	for n, r := range meta.Refs() {
		if n == name {
			return r, true
		}
	}
	return table.SnapshotRef{}, false
}

// expire removes the snapshots older than the retention that no tag
// keeps, and the files only they referenced.
func (l *Lake) expire(ctx context.Context, id table.Identifier, o MaintainOptions) (*table.Table, error) {
	return retryLostRace(ctx, func() (*table.Table, error) {
		tbl, err := l.cat.LoadTable(ctx, id)
		if err != nil {
			return nil, err
		}
		// Iceberg measures age from its own clock; the cut-off is Now
		// minus Retention, whatever the clock says.
		age := time.Since(o.Now.Add(-o.Retention))
		tx := tbl.NewTransaction()
		if err := tx.ExpireSnapshots(table.WithOlderThan(max(age, 0)), table.WithRetainLast(1)); err != nil {
			return nil, fmt.Errorf("expire snapshots of %s: %w", tableName(id), err)
		}
		committed, err := l.commit(ctx, tx, tbl)
		if err != nil {
			return nil, fmt.Errorf("expire snapshots of %s: %w", tableName(id), err)
		}
		return committed, nil
	})
}

// repointRecords moves the records that name a snapshot the table no
// longer has to its current snapshot: no commit of their key came after
// the one they name, so the current snapshot holds the same rows of it.
// A record a newer commit moved meanwhile is left as it is.
func (l *Lake) repointRecords(ctx context.Context, tbl *table.Table) (int, error) {
	name := tableName(tbl.Identifier())
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return 0, nil
	}
	gone := func(ids []int64) []int64 {
		var out []int64
		for _, s := range ids {
			if tbl.SnapshotByID(s) == nil && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	recorded, err := l.recordedSnapshots(ctx, name)
	if err != nil {
		return 0, err
	}
	reports, err := l.reportSnapshots(ctx, name)
	if err != nil {
		return 0, err
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n := 0
	for _, s := range gone(recorded) {
		r, err := tx.ExecContext(ctx, l.q(`UPDATE costlake_commits SET snapshot_id = ?, sequence_number = ?
			WHERE table_name = ? AND snapshot_id = ?`), cur.SnapshotID, cur.SequenceNumber, name, s)
		if err != nil {
			return 0, fmt.Errorf("repoint records of %s: %w", name, err)
		}
		k, _ := r.RowsAffected()
		n += int(k)
	}
	for _, s := range gone(reports) {
		r, err := tx.ExecContext(ctx, l.q(`UPDATE costlake_period_reports SET snapshot_id = ?
			WHERE table_name = ? AND snapshot_id = ?`), cur.SnapshotID, name, s)
		if err != nil {
			return 0, fmt.Errorf("repoint report records of %s: %w", name, err)
		}
		k, _ := r.RowsAffected()
		n += int(k)
	}
	return n, tx.Commit()
}

func (l *Lake) reportSnapshots(ctx context.Context, name string) ([]int64, error) {
	return queryColumn[int64](ctx, l, `SELECT DISTINCT snapshot_id FROM costlake_period_reports WHERE table_name = ?`, name)
}
