package lakehouse

import (
	"context"
	"fmt"
	"sync"
)

// Closing a cycle reads each payer's newest commit and pins it; table
// maintenance reads the pins and expires what they do not keep. Were the
// two to interleave, a cycle could pin a snapshot the maintenance expires
// in the same moment. The pin lock orders them: closes hold it shared
// (many at once), maintenance holds it alone from reading the pins to
// the records repointed. On PostgreSQL it is an advisory lock, so it
// holds across worker processes; a SQLite catalog (one machine, dev and
// tests) uses a lock per catalog file in the process.
const pinLockKey = 0x636c2d70696e73 // "cl-pins"; the schema lock (sqlbind) has its own key

var sqlitePinLocks sync.Map // catalog → *sync.RWMutex

// HoldSnapshots runs fn while no maintenance can expire a snapshot, so
// the snapshots fn reads from the records (to pin them) stay until the
// pins are stored.
func (l *Lake) HoldSnapshots(ctx context.Context, fn func(context.Context) error) error {
	return l.withPinLock(ctx, false, fn)
}

func (l *Lake) withPinLock(ctx context.Context, exclusive bool, fn func(context.Context) error) error {
	if _, pg := l.DB(); !pg {
		v, _ := sqlitePinLocks.LoadOrStore(l.catalog, &sync.RWMutex{})
		mu := v.(*sync.RWMutex)
		if exclusive {
			mu.Lock()
			defer mu.Unlock()
		} else {
			mu.RLock()
			defer mu.RUnlock()
		}
		return fn(ctx)
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lock, unlock := "SELECT pg_advisory_lock_shared($1)", "SELECT pg_advisory_unlock_shared($1)"
	if exclusive {
		lock, unlock = "SELECT pg_advisory_lock($1)", "SELECT pg_advisory_unlock($1)"
	}
	if _, err := conn.ExecContext(ctx, lock, int64(pinLockKey)); err != nil {
		return fmt.Errorf("take the snapshot pin lock: %w", err)
	}
	// Unlocked on a context of its own: a cancelled fn must not leave
	// the session holding the lock (closing the connection would too, but
	// the pool may keep it).
	defer conn.ExecContext(context.WithoutCancel(ctx), unlock, int64(pinLockKey))
	return fn(ctx)
}
