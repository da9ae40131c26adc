package lakehouse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/iceberg-go/table"
)

// Every writer of a billing table commits through commit and retries
// through retryLostRace: one rule for a commit another writer made stale,
// whichever table it is.

// errLostRace marks a commit that another writer's commit made stale: the
// caller redoes its decision on the newer snapshot.
var errLostRace = errors.New("another writer committed to the table first")

// commitTries bounds how often one call redoes a commit that lost a race;
// twenty payers committing at once need at most twenty.
const commitTries = 24

// commit commits tx, staged on base. A failure is errLostRace when the
// catalog says so (table.ErrCommitFailed) or when the table has moved past
// base: the SQL catalog reports a stale requirement ("branch main has
// changed") without ErrCommitFailed, so the table itself is asked. A
// commit that replaced a key's rows is recorded in costlake_commits.
func (l *Lake) commit(ctx context.Context, tx *table.Transaction, base *table.Table) (*table.Table, error) {
	committed, err := tx.Commit(ctx)
	if err == nil {
		if err := l.recordCommit(ctx, l.db, tableName(base.Identifier()), committed.CurrentSnapshot()); err != nil {
			return nil, fmt.Errorf("committed, but not recorded (the next run records it): %w", err)
		}
		return committed, nil
	}
	if errors.Is(err, table.ErrCommitFailed) || l.moved(ctx, base) {
		return nil, fmt.Errorf("%w: %w", errLostRace, err)
	}
	return nil, err
}

// moved reports whether the catalog's metadata of base's table is newer
// than base's.
func (l *Lake) moved(ctx context.Context, base *table.Table) bool {
	fresh, err := l.cat.LoadTable(ctx, base.Identifier())
	return err == nil && fresh.MetadataLocation() != base.MetadataLocation()
}

// retryLostRace calls attempt until it does not lose a race, at most
// commitTries times. Each attempt loads the table afresh and decides again;
// the waits between are random (up to 10 ms, doubling to 640 ms), so
// writers racing each other spread out.
func retryLostRace[T any](ctx context.Context, attempt func() (T, error)) (T, error) {
	for try := 1; ; try++ {
		v, err := attempt()
		if !errors.Is(err, errLostRace) || try == commitTries {
			return v, err
		}
		wait := time.Duration(rand.Int64N(int64(10*time.Millisecond) << min(try-1, 6)))
		select {
		case <-ctx.Done():
			return v, context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}
