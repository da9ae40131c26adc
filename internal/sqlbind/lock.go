package sqlbind

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// schemaLockKey is the PostgreSQL advisory lock that schema setup holds:
// one number for the whole database, taken by every costlake process.
const schemaLockKey = 0x636f73746c616b65 // "costlake"

// ErrSchemaLock reports that the schema lock could not be taken or given back.
var ErrSchemaLock = errors.New("catalog schema lock")

// WithSchemaLock runs setup, which creates tables, while holding the
// database's schema lock, so processes starting at once set the schema up
// one after another: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe
// against itself (two at once fail with a unique violation on pg_type).
// On PostgreSQL the lock is a session advisory lock held on a connection
// of its own, so setup may use db's other connections; SQLite takes one
// writer at a time anyway, and runs setup as it is.
func WithSchemaLock(ctx context.Context, db *sql.DB, postgres bool, setup func() error) error {
	if !postgres {
		return setup()
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSchemaLock, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(schemaLockKey)); err != nil {
		return fmt.Errorf("%w: %w", ErrSchemaLock, err)
	}
	setupErr := setup()
	// A cancelled ctx must not leave the lock held on a pooled connection.
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(schemaLockKey)); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discard the connection, and the lock with it
		return errors.Join(setupErr, fmt.Errorf("%w: unlock: %w", ErrSchemaLock, err))
	}
	return setupErr
}
