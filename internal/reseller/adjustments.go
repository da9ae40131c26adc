package reseller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/costlake/costlake/internal/money"
)

// Adjustment is a change AWS made to a closed cycle's line items after the
// cycle closed: the closed cycle never changes (closed means closed), so
// the difference is carried to the customer's next open cycle, where it
// appears as an invoice line.
//
// Amount is the customer's cost (line_item_unblended_cost of the
// customer's accounts) in the restated snapshot minus the cost the closed
// cycle pinned, minus the adjustments already recorded for the same
// customer, origin period and payer: however often a period is restated,
// the adjustments of a closed cycle add up to the latest restatement's
// cost minus the pinned cost.
//
// Resale, when set, is the same difference priced with the closed
// cycle's pinned pricebook (PricebookVersion): what the customer is
// charged for it, like the lines it adjusts. Nil is at cost (the
// pricebook says so, or the adjustment was recorded before resales were).
type Adjustment struct {
	CustomerID      string        `json:"customer_id"`
	OriginPeriod    string        `json:"origin_period"`     // the closed cycle that was restated
	AppliesToPeriod string        `json:"applies_to_period"` // the cycle whose invoice carries it
	PayerAccountID  string        `json:"payer_account_id"`
	Amount          money.Amount  `json:"amount"`
	AssemblyID      string        `json:"assembly_id"` // the restated delivery; one adjustment per assembly
	SnapshotID      int64         `json:"snapshot_id"` // the line_items snapshot of that delivery
	RecordedAt      string        `json:"recorded_at"`
	Resale          *money.Amount `json:"resale,omitempty"`
	// PricebookVersion priced Resale: the origin cycle's pinned version.
	PricebookVersion int `json:"pricebook_version,omitempty"`
}

// adjustmentResaleSchema keeps adjustments' resale beside them (a table
// of its own, so older catalogs need no column added).
var adjustmentResaleSchema = []string{
	`CREATE TABLE IF NOT EXISTS costlake_adjustment_resale (
		customer_id       TEXT NOT NULL,
		origin_period     TEXT NOT NULL,
		payer_account_id  TEXT NOT NULL,
		assembly_id       TEXT NOT NULL,
		resale            TEXT NOT NULL,
		pricebook_version INTEGER NOT NULL,
		PRIMARY KEY (customer_id, origin_period, payer_account_id, assembly_id))`,
}

// RecordAdjustment stores an adjustment of a closed cycle (a.OriginPeriod)
// for the customer's next open cycle: the period after the customer's
// latest closed cycle. The target is chosen in the same transaction as the
// insert, so an adjustment never lands on a cycle that closed meanwhile.
// It is idempotent per customer, origin period, payer and assembly: the
// adjustment already stored is returned with created false. The origin
// cycle must be closed (ErrNotFound otherwise).
func (s *Store) RecordAdjustment(ctx context.Context, a Adjustment) (stored Adjustment, created bool, err error) {
	if a.CustomerID == "" || a.OriginPeriod == "" || a.PayerAccountID == "" || a.AssemblyID == "" {
		return a, false, errors.New("reseller: an adjustment needs a customer, an origin period, a payer and an assembly")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return a, false, err
	}
	defer tx.Rollback()
	if err := s.lockCycles(ctx, tx, a.CustomerID); err != nil {
		return a, false, err
	}
	if old, ok, err := s.adjustmentTx(ctx, tx, a.CustomerID, a.OriginPeriod, a.PayerAccountID, a.AssemblyID); err != nil {
		return a, false, err
	} else if ok {
		return old, false, nil
	}
	var origin sql.NullString
	if err := tx.QueryRowContext(ctx, s.q(`SELECT period FROM costlake_cycles WHERE customer_id = ? AND period = ?`), a.CustomerID, a.OriginPeriod).Scan(&origin); errors.Is(err, sql.ErrNoRows) {
		return a, false, fmt.Errorf("%w: customer %s's cycle %s is not closed; its restatements need no adjustment", ErrNotFound, a.CustomerID, a.OriginPeriod)
	} else if err != nil {
		return a, false, err
	}
	var last sql.NullString
	if err := tx.QueryRowContext(ctx, s.q(`SELECT MAX(period) FROM costlake_cycles WHERE customer_id = ?`), a.CustomerID).Scan(&last); err != nil {
		return a, false, err
	}
	a.AppliesToPeriod = nextPeriod(max(last.String, a.OriginPeriod))
	a.RecordedAt = time.Now().UTC().Format(time.RFC3339)
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO costlake_adjustments (customer_id, origin_period, applies_to_period, payer_account_id, amount, recorded_at, assembly_id, snapshot_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		a.CustomerID, a.OriginPeriod, a.AppliesToPeriod, a.PayerAccountID, a.Amount.String(), a.RecordedAt, a.AssemblyID, a.SnapshotID)
	if err != nil {
		return a, false, fmt.Errorf("store adjustment: %w", err)
	}
	if a.Resale != nil {
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO costlake_adjustment_resale (customer_id, origin_period, payer_account_id, assembly_id, resale, pricebook_version)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
			a.CustomerID, a.OriginPeriod, a.PayerAccountID, a.AssemblyID, a.Resale.String(), a.PricebookVersion)
		if err != nil {
			return a, false, fmt.Errorf("store adjustment resale: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return a, false, err
	}
	// A concurrent writer may have stored the same key first: answer with
	// what is stored.
	stored, ok, err := s.adjustment(ctx, a.CustomerID, a.OriginPeriod, a.PayerAccountID, a.AssemblyID)
	if err != nil {
		return a, false, err
	}
	if !ok {
		return a, false, fmt.Errorf("adjustment of %s %s for %s vanished", a.CustomerID, a.OriginPeriod, a.AssemblyID)
	}
	return stored, stored.RecordedAt == a.RecordedAt && stored.Amount.Cmp(a.Amount) == 0, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const adjustmentColumns = `a.customer_id, a.origin_period, a.applies_to_period, a.payer_account_id, a.amount, a.recorded_at, a.assembly_id, a.snapshot_id, r.resale, r.pricebook_version`

func (s *Store) adjustment(ctx context.Context, customer, origin, payer, assembly string) (Adjustment, bool, error) {
	return s.adjustmentTx(ctx, s.db, customer, origin, payer, assembly)
}

func (s *Store) adjustmentTx(ctx context.Context, q queryer, customer, origin, payer, assembly string) (Adjustment, bool, error) {
	list, err := s.queryAdjustments(ctx, q, `WHERE a.customer_id = ? AND a.origin_period = ? AND a.payer_account_id = ? AND a.assembly_id = ?`, customer, origin, payer, assembly)
	if err != nil || len(list) == 0 {
		return Adjustment{}, false, err
	}
	return list[0], true, nil
}

func (s *Store) queryAdjustments(ctx context.Context, q queryer, where string, args ...any) ([]Adjustment, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+adjustmentColumns+` FROM costlake_adjustments a
		LEFT JOIN costlake_adjustment_resale r ON r.customer_id = a.customer_id AND r.origin_period = a.origin_period
			AND r.payer_account_id = a.payer_account_id AND r.assembly_id = a.assembly_id `+where+
		` ORDER BY a.origin_period, a.payer_account_id, a.recorded_at, a.assembly_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("read adjustments: %w", err)
	}
	defer rows.Close()
	var out []Adjustment
	for rows.Next() {
		var a Adjustment
		var amount string
		var resale sql.NullString
		var version sql.NullInt64
		if err := rows.Scan(&a.CustomerID, &a.OriginPeriod, &a.AppliesToPeriod, &a.PayerAccountID, &amount, &a.RecordedAt, &a.AssemblyID, &a.SnapshotID, &resale, &version); err != nil {
			return nil, err
		}
		if a.Amount, err = money.Parse(amount); err != nil {
			return nil, fmt.Errorf("adjustment %s/%s/%s: amount %q: %w", a.CustomerID, a.OriginPeriod, a.AssemblyID, amount, err)
		}
		if resale.Valid {
			r, err := money.Parse(resale.String)
			if err != nil {
				return nil, fmt.Errorf("adjustment %s/%s/%s: resale %q: %w", a.CustomerID, a.OriginPeriod, a.AssemblyID, resale.String, err)
			}
			a.Resale, a.PricebookVersion = &r, int(version.Int64)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Adjustments returns the adjustments that apply to a customer's cycle
// period (its invoice carries them), oldest origin first. Once that cycle
// is closed the list no longer changes: later adjustments go to the next
// open cycle.
func (s *Store) Adjustments(ctx context.Context, customer, period string) ([]Adjustment, error) {
	return s.queryAdjustments(ctx, s.db, `WHERE a.customer_id = ? AND a.applies_to_period = ?`, customer, period)
}

// AdjustmentsOf returns the adjustments recorded for restatements of a
// customer's closed cycle origin, for one payer ("" for all).
func (s *Store) AdjustmentsOf(ctx context.Context, customer, origin, payer string) ([]Adjustment, error) {
	if payer == "" {
		return s.queryAdjustments(ctx, s.db, `WHERE a.customer_id = ? AND a.origin_period = ?`, customer, origin)
	}
	return s.queryAdjustments(ctx, s.db, `WHERE a.customer_id = ? AND a.origin_period = ? AND a.payer_account_id = ?`, customer, origin, payer)
}

// ClosedCycles returns every customer's closed cycle of a period, by
// customer.
func (s *Store) ClosedCycles(ctx context.Context, period string) ([]Cycle, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id FROM costlake_cycles WHERE period = ? ORDER BY customer_id`), period)
	if err != nil {
		return nil, fmt.Errorf("read closed cycles: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Cycle, 0, len(ids))
	for _, id := range ids {
		c, err := s.CycleOf(ctx, id, period)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// CyclesOf returns a customer's closed cycles, oldest first.
func (s *Store) CyclesOf(ctx context.Context, customer string) ([]Cycle, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT period FROM costlake_cycles WHERE customer_id = ? ORDER BY period`), customer)
	if err != nil {
		return nil, fmt.Errorf("read closed cycles: %w", err)
	}
	var periods []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		periods = append(periods, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Cycle, 0, len(periods))
	for _, p := range periods {
		c, err := s.CycleOf(ctx, customer, p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// PinnedSnapshots lists every line_items snapshot a closed cycle pins,
// sorted: table maintenance keeps them whatever their age, so a closed
// cycle can always be read again exactly as it was priced.
func (s *Store) PinnedSnapshots(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id, period, snapshots FROM costlake_cycles`)
	if err != nil {
		return nil, fmt.Errorf("read closed cycles: %w", err)
	}
	defer rows.Close()
	seen := map[int64]bool{}
	for rows.Next() {
		var customer, period, body string
		if err := rows.Scan(&customer, &period, &body); err != nil {
			return nil, err
		}
		var snaps map[string]int64
		if err := json.Unmarshal([]byte(body), &snaps); err != nil {
			return nil, fmt.Errorf("closed cycle %s %s: its pinned snapshots are not readable: %w", customer, period, err)
		}
		for _, id := range snaps {
			if id != 0 {
				seen[id] = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(seen)), nil
}
