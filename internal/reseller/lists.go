package reseller

import (
	"context"
	"encoding/json"
	"fmt"
)

// CustomerListing is one customer as the customer list shows it.
type CustomerListing struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Accounts counts the assignments in force in the period asked (an
	// account, or a whole payer, each one).
	Accounts int `json:"accounts"`
	// PricebookVersion is the version in force in the period; 0 when none.
	PricebookVersion int `json:"pricebook_version,omitempty"`
	// LastClosedPeriod is the newest closed cycle, "" when none is.
	LastClosedPeriod string `json:"last_closed_period,omitempty"`
	OnHold           bool   `json:"on_hold"`
}

// customerIDs is every customer the records know: a customer record,
// accounts assigned (ever), a payer held, a pricebook or a closed cycle.
const customerIDs = `SELECT customer_id FROM costlake_customers
	UNION SELECT customer_id FROM costlake_account_owners WHERE customer_id <> ''
	UNION SELECT customer_id FROM costlake_payer_owners
	UNION SELECT customer_id FROM costlake_pricebooks
	UNION SELECT customer_id FROM costlake_cycles`

// CustomerKnown reports whether the records know a customer (see
// ListCustomers for which records count).
func (s *Store) CustomerKnown(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM (`+customerIDs+`) ids WHERE customer_id = ?`), id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look customer %s up: %w", id, err)
	}
	return n > 0, nil
}

// ListCustomers lists the customers the records know (a customer record,
// accounts ever assigned, a payer held, a pricebook or a closed cycle), by
// ID, after the ID after and at most limit of them; only, when set, is
// the one customer to list (a customer-scoped reader's own). Accounts and
// pricebook are those in force in period.
func (s *Store) ListCustomers(ctx context.Context, after, only, period string, limit int) ([]CustomerListing, error) {
	query := `SELECT ids.customer_id, COALESCE(c.body, '') FROM (` + customerIDs + `) ids
		LEFT JOIN costlake_customers c ON c.customer_id = ids.customer_id
		WHERE ids.customer_id > ?`
	args := []any{after}
	if only != "" {
		query += ` AND ids.customer_id = ?`
		args = append(args, only)
	}
	query += ` ORDER BY ids.customer_id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	out := []CustomerListing{}
	for rows.Next() {
		var l CustomerListing
		var body string
		if err := rows.Scan(&l.ID, &body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list customers: %w", err)
		}
		if body != "" {
			var c Customer
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("customer %s's record: %w", l.ID, err)
			}
			l.Name = c.Name
		}
		out = append(out, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	return out, s.fillCustomers(ctx, out, period)
}

// fillCustomers adds to a page of customers their accounts and pricebook
// in force in period, last closed cycle and hold: a few queries a page,
// not a few a customer.
func (s *Store) fillCustomers(ctx context.Context, page []CustomerListing, period string) error {
	ids := make([]any, len(page))
	at := map[string]*CustomerListing{}
	for i := range page {
		ids[i] = page[i].ID
		at[page[i].ID] = &page[i]
	}
	in := `(` + placeholders(len(ids)) + `)`
	owners, err := s.Owners(ctx, period)
	if err != nil {
		return err
	}
	for _, customer := range owners {
		if l := at[customer]; l != nil {
			l.Accounts++
		}
	}
	// Pricebook in force: the newest version among those with the latest
	// effective period at or before period.
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id, version, effective_from FROM costlake_pricebooks
		WHERE effective_from <= ? AND customer_id IN `+in+` ORDER BY customer_id, effective_from, version`), append([]any{period}, ids...)...)
	if err != nil {
		return fmt.Errorf("list customers' pricebooks: %w", err)
	}
	for rows.Next() {
		var id, from string
		var v int
		if err := rows.Scan(&id, &v, &from); err != nil {
			rows.Close()
			return err
		}
		at[id].PricebookVersion = v // later rows win
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT customer_id, MAX(period) FROM costlake_cycles WHERE customer_id IN `+in+` GROUP BY customer_id`), ids...)
	if err != nil {
		return fmt.Errorf("list customers' cycles: %w", err)
	}
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return err
		}
		at[id].LastClosedPeriod = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT customer_id FROM costlake_holds WHERE customer_id IN `+in), ids...)
	if err != nil {
		return fmt.Errorf("list customers' holds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		at[id].OnHold = true
	}
	return rows.Err()
}

// CycleListing is one closed cycle as the cycle list shows it: "closed"
// (frozen) or "invoiced" (its invoice is recorded, with the amounts the
// customer is charged).
type CycleListing struct {
	Period           string `json:"period"`
	Status           string `json:"status"`
	ClosedAt         string `json:"closed_at"`
	PricebookVersion int    `json:"pricebook_version"`
	Currency         string `json:"currency,omitempty"`
	Total            string `json:"total,omitempty"`
	Due              string `json:"due,omitempty"`
}

// Cycle list statuses.
const (
	CycleClosed   = "closed"
	CycleInvoiced = "invoiced"
)

// ListCycles lists a customer's closed cycles, newest period first,
// before the period before ("" for the newest) and at most limit.
func (s *Store) ListCycles(ctx context.Context, customer, before string, limit int) ([]CycleListing, error) {
	query := `SELECT c.period, c.closed_at, c.pricebook_version, i.period IS NOT NULL, COALESCE(i.currency, ''), COALESCE(i.total, ''), COALESCE(i.due, '')
		FROM costlake_cycles c LEFT JOIN costlake_invoices i ON i.customer_id = c.customer_id AND i.period = c.period
		WHERE c.customer_id = ?`
	args := []any{customer}
	if before != "" {
		query += ` AND c.period < ?`
		args = append(args, before)
	}
	query += ` ORDER BY c.period DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list customer %s's cycles: %w", customer, err)
	}
	defer rows.Close()
	out := []CycleListing{}
	for rows.Next() {
		var c CycleListing
		var invoiced bool
		if err := rows.Scan(&c.Period, &c.ClosedAt, &c.PricebookVersion, &invoiced, &c.Currency, &c.Total, &c.Due); err != nil {
			return nil, fmt.Errorf("list customer %s's cycles: %w", customer, err)
		}
		c.Status = CycleClosed
		if invoiced {
			c.Status = CycleInvoiced
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
