// Package reseller keeps a reseller's own records in the catalog database:
// which customer owns which accounts from which billing period, the
// customers' pricebook versions, and the billing cycles that are closed.
// SQLite and PostgreSQL both work; the tables are created on Open.
package reseller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/sqlbind"

	"github.com/costlake/costlake/internal/period"
)

// Errors a caller turns into clear messages.
var (
	// ErrConflict: the change contradicts another customer's records.
	ErrConflict = errors.New("conflict")
	// ErrClosed: the change would alter a closed billing cycle.
	ErrClosed = errors.New("billing cycle closed")
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a record costlake cannot use (a destination's fields).
	ErrInvalid = errors.New("invalid")
)

// AllAccounts stands for every account of a payer: the customer owns the
// whole organization.
const AllAccounts = "*"

// Store is the reseller's records.
type Store struct {
	db       *sql.DB
	postgres bool
}

var schema = []string{
	`CREATE TABLE IF NOT EXISTS costlake_account_owners (
		payer_account_id TEXT NOT NULL,
		account_id       TEXT NOT NULL,
		effective_from   TEXT NOT NULL,
		customer_id      TEXT NOT NULL,
		changed_by       TEXT NOT NULL,
		changed_at       TEXT NOT NULL,
		PRIMARY KEY (payer_account_id, account_id, effective_from))`,
	`CREATE TABLE IF NOT EXISTS costlake_pricebooks (
		customer_id    TEXT NOT NULL,
		version        INTEGER NOT NULL,
		effective_from TEXT NOT NULL,
		body           TEXT NOT NULL,
		created_by     TEXT NOT NULL,
		created_at     TEXT NOT NULL,
		PRIMARY KEY (customer_id, version))`,
	`CREATE TABLE IF NOT EXISTS costlake_cycles (
		customer_id       TEXT NOT NULL,
		period            TEXT NOT NULL,
		status            TEXT NOT NULL,
		pricebook_version INTEGER NOT NULL,
		snapshots         TEXT NOT NULL,
		totals            TEXT NOT NULL,
		closed_at         TEXT NOT NULL,
		PRIMARY KEY (customer_id, period))`,
	`CREATE TABLE IF NOT EXISTS costlake_customers (
		customer_id TEXT NOT NULL PRIMARY KEY,
		body        TEXT NOT NULL,
		updated_by  TEXT NOT NULL,
		updated_at  TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS costlake_adjustments (
		customer_id       TEXT NOT NULL,
		origin_period     TEXT NOT NULL,
		applies_to_period TEXT NOT NULL,
		payer_account_id  TEXT NOT NULL,
		amount            TEXT NOT NULL,
		recorded_at       TEXT NOT NULL,
		assembly_id       TEXT NOT NULL,
		snapshot_id       BIGINT NOT NULL,
		PRIMARY KEY (customer_id, origin_period, payer_account_id, assembly_id))`,
}

// Open creates the tables when missing.
func Open(ctx context.Context, db *sql.DB, postgres bool) (*Store, error) {
	s := &Store{db: db, postgres: postgres}
	err := sqlbind.WithSchemaLock(ctx, db, postgres, func() error {
		for _, stmt := range slices.Concat(schema, payerSchema, payerStatusSchema, invoiceSchema, adjustmentResaleSchema, monthEndSchema) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create reseller tables: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ReadOnly returns the records over db without creating tables: for a
// reader (the gateway) whose connection refuses writes. The tables are
// the workers' to create.
func ReadOnly(db *sql.DB, postgres bool) *Store {
	return &Store{db: db, postgres: postgres}
}

// q rewrites ? placeholders for PostgreSQL.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	return sqlbind.Dollar(query)
}

// Assignment is one payer's accounts a customer owns.
type Assignment struct {
	PayerAccountID string   `json:"payer_account_id"`
	Accounts       []string `json:"accounts"` // or ["*"] for the whole payer
}

// Owners returns, per payer and account, the customer owning it in period
// ("" when unassigned), from the rows effective at or before period; Owner
// reads it.
func (s *Store) Owners(ctx context.Context, period string) (map[[2]string]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT payer_account_id, account_id, effective_from, customer_id
		FROM costlake_account_owners WHERE effective_from <= ? ORDER BY effective_from`), period)
	if err != nil {
		return nil, fmt.Errorf("read account owners: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]string{}
	for rows.Next() {
		var payer, account, from, customer string
		if err := rows.Scan(&payer, &account, &from, &customer); err != nil {
			return nil, err
		}
		out[[2]string{payer, account}] = customer // later rows win
	}
	return out, rows.Err()
}

// CustomerAccounts returns what a customer owns in period.
func (s *Store) CustomerAccounts(ctx context.Context, customer, period string) ([]Assignment, error) {
	owners, err := s.Owners(ctx, period)
	if err != nil {
		return nil, err
	}
	byPayer := map[string][]string{}
	for k, c := range owners {
		if c == customer {
			byPayer[k[0]] = append(byPayer[k[0]], k[1])
		}
	}
	var out []Assignment
	for payer, accts := range byPayer {
		slices.Sort(accts)
		out = append(out, Assignment{PayerAccountID: payer, Accounts: accts})
	}
	slices.SortFunc(out, func(a, b Assignment) int { return strings.Compare(a.PayerAccountID, b.PayerAccountID) })
	return out, nil
}

// Owner returns the customer owning a usage account of a payer in period:
// the account's own assignment, else the payer's, else "" (unassigned).
func Owner(owners map[[2]string]string, payer, account string) string {
	if c, ok := owners[[2]string{payer, account}]; ok && c != "" {
		return c
	}
	return owners[[2]string{payer, AllAccounts}]
}

// SetAccounts makes want what customer owns from period on: accounts it
// no longer lists become unassigned, new ones become its own. An account
// another customer owns in that period is a conflict (move it by removing
// it there first), and a period at or before one of the customer's closed
// cycles is refused.
func (s *Store) SetAccounts(ctx context.Context, customer, period string, want []Assignment, by string) error {
	if closed, err := s.lastClosed(ctx, customer); err != nil {
		return err
	} else if closed != "" && period <= closed {
		return fmt.Errorf("%w: customer %s's cycle %s is closed; assignments may change from %s on", ErrClosed, customer, closed, nextPeriod(closed))
	}
	owners, err := s.Owners(ctx, period)
	if err != nil {
		return err
	}
	wanted := map[[2]string]bool{}
	for _, a := range want {
		for _, acct := range a.Accounts {
			k := [2]string{a.PayerAccountID, acct}
			wanted[k] = true
			if other := owners[k]; other != "" && other != customer {
				return fmt.Errorf("%w: account %s of payer %s belongs to customer %s in %s; remove it there first", ErrConflict, acct, a.PayerAccountID, other, period)
			}
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	upsert := func(k [2]string, owner string) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM costlake_account_owners WHERE payer_account_id = ? AND account_id = ? AND effective_from = ?`), k[0], k[1], period); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO costlake_account_owners (payer_account_id, account_id, effective_from, customer_id, changed_by, changed_at)
			VALUES (?, ?, ?, ?, ?, ?)`), k[0], k[1], period, owner, by, now)
		return err
	}
	for k, owner := range owners {
		if owner == customer && !wanted[k] {
			if err := upsert(k, ""); err != nil {
				return fmt.Errorf("unassign %s/%s: %w", k[0], k[1], err)
			}
		}
	}
	for k := range wanted {
		if owners[k] != customer {
			if err := upsert(k, customer); err != nil {
				return fmt.Errorf("assign %s/%s: %w", k[0], k[1], err)
			}
		}
	}
	return tx.Commit()
}

// PricebookVersion is one stored version of a customer's pricebook; Body
// is its JSON (package pricing reads it).
type PricebookVersion struct {
	CustomerID    string          `json:"customer_id"`
	Version       int             `json:"version"`
	EffectiveFrom string          `json:"effective_from"`
	Body          json.RawMessage `json:"pricebook"`
	CreatedBy     string          `json:"created_by"`
	CreatedAt     string          `json:"created_at"`
}

// PutPricebook stores a new version effective from a period, refusing a
// period at or before a closed cycle of the customer.
func (s *Store) PutPricebook(ctx context.Context, customer, effectiveFrom string, body json.RawMessage, by string) (int, error) {
	if closed, err := s.lastClosed(ctx, customer); err != nil {
		return 0, err
	} else if closed != "" && effectiveFrom <= closed {
		return 0, fmt.Errorf("%w: customer %s's cycle %s is closed with its pricebook; a new pricebook may take effect from %s", ErrClosed, customer, closed, nextPeriod(closed))
	}
	var last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT MAX(version) FROM costlake_pricebooks WHERE customer_id = ?`), customer).Scan(&last); err != nil {
		return 0, err
	}
	v := int(last.Int64) + 1
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO costlake_pricebooks (customer_id, version, effective_from, body, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		customer, v, effectiveFrom, string(body), by, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return 0, fmt.Errorf("store pricebook: %w", err)
	}
	return v, nil
}

// PricebookFor returns the version in force in period: the newest version
// among those with the latest effective period at or before it.
func (s *Store) PricebookFor(ctx context.Context, customer, period string) (PricebookVersion, error) {
	var p PricebookVersion
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT customer_id, version, effective_from, body, created_by, created_at FROM costlake_pricebooks
		WHERE customer_id = ? AND effective_from <= ? ORDER BY effective_from DESC, version DESC LIMIT 1`), customer, period).
		Scan(&p.CustomerID, &p.Version, &p.EffectiveFrom, &body, &p.CreatedBy, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: customer %s has no pricebook in force in %s", ErrNotFound, customer, period)
	}
	p.Body = json.RawMessage(body)
	return p, err
}

// PricebookVersionOf returns one stored version.
func (s *Store) PricebookVersionOf(ctx context.Context, customer string, version int) (PricebookVersion, error) {
	var p PricebookVersion
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT customer_id, version, effective_from, body, created_by, created_at FROM costlake_pricebooks
		WHERE customer_id = ? AND version = ?`), customer, version).
		Scan(&p.CustomerID, &p.Version, &p.EffectiveFrom, &body, &p.CreatedBy, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: customer %s has no pricebook version %d", ErrNotFound, customer, version)
	}
	p.Body = json.RawMessage(body)
	return p, err
}

// Cycle is a customer's billing cycle once frozen.
type Cycle struct {
	CustomerID       string           `json:"customer_id"`
	Period           string           `json:"period"`
	Status           string           `json:"status"` // closed
	PricebookVersion int              `json:"pricebook_version"`
	Snapshots        map[string]int64 `json:"snapshots"` // payer → the line_items snapshot the cycle read
	Totals           json.RawMessage  `json:"totals"`
	ClosedAt         string           `json:"closed_at"`
}

// CloseCycle records a cycle as closed; closing it again with the same
// pins is a no-op, with others a conflict: closed means closed.
func (s *Store) CloseCycle(ctx context.Context, c Cycle) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.lockCycles(ctx, tx, c.CustomerID); err != nil {
		return err
	}
	old, err := s.cycleOf(ctx, tx, c.CustomerID, c.Period)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case old.PricebookVersion == c.PricebookVersion && mapsEqual(old.Snapshots, c.Snapshots):
		return nil
	default:
		return fmt.Errorf("%w: customer %s's cycle %s was closed on %s with other data", ErrClosed, c.CustomerID, c.Period, old.ClosedAt)
	}
	snaps, _ := json.Marshal(c.Snapshots)
	if c.Totals == nil {
		c.Totals = json.RawMessage("{}")
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO costlake_cycles (customer_id, period, status, pricebook_version, snapshots, totals, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		c.CustomerID, c.Period, "closed", c.PricebookVersion, string(snaps), string(c.Totals), time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	return tx.Commit()
}

// lockCycles takes, for the rest of tx, the customer's lock on its
// cycles: closing a cycle and recording an adjustment (which picks the
// next open cycle) then happen one after the other, never interleaved,
// so an adjustment never lands on a cycle that closed while it was
// being recorded. PostgreSQL takes a transaction-scoped advisory lock;
// SQLite's one connection already runs one transaction at a time.
func (s *Store) lockCycles(ctx context.Context, tx *sql.Tx, customer string) error {
	if !s.postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('costlake-cycles/' || $1))`, customer)
	return err
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// CycleOf returns a closed cycle.
func (s *Store) CycleOf(ctx context.Context, customer, period string) (Cycle, error) {
	return s.cycleOf(ctx, s.db, customer, period)
}

func (s *Store) cycleOf(ctx context.Context, q rowQueryer, customer, period string) (Cycle, error) {
	c := Cycle{CustomerID: customer, Period: period}
	var snaps, totals string
	err := q.QueryRowContext(ctx, s.q(`SELECT status, pricebook_version, snapshots, totals, closed_at FROM costlake_cycles WHERE customer_id = ? AND period = ?`), customer, period).
		Scan(&c.Status, &c.PricebookVersion, &snaps, &totals, &c.ClosedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%w: customer %s's cycle %s is not closed", ErrNotFound, customer, period)
	}
	if err != nil {
		return c, err
	}
	c.Totals = json.RawMessage(totals)
	return c, json.Unmarshal([]byte(snaps), &c.Snapshots)
}

// lastClosed is the customer's latest closed period, or "".
func (s *Store) lastClosed(ctx context.Context, customer string) (string, error) {
	var p sql.NullString
	err := s.db.QueryRowContext(ctx, s.q(`SELECT MAX(period) FROM costlake_cycles WHERE customer_id = ?`), customer).Scan(&p)
	return p.String, err
}

func nextPeriod(s string) string {
	p, err := period.Parse(s)
	if err != nil {
		return s
	}
	return p.Next().String()
}
