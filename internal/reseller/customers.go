package reseller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/costlake/costlake/internal/payer"
)

// Destination is where a customer's exports go: s3://bucket/prefix
// (reached with Access, typically a role the customer lets costlake
// assume) or gs://bucket/prefix (reached with the worker's Google
// credentials, which the customer grants on the bucket).
type Destination struct {
	URL    string        `json:"url"`
	Access *payer.Access `json:"access,omitempty"` // S3 only; nil uses the worker's own credentials
	// Mode is "at_cost" or "at_resale" (the default: customers see their
	// price, not the reseller's cost).
	Mode string `json:"mode,omitempty"`
	Gzip bool   `json:"gzip,omitempty"`
}

// Customer is a reseller's customer.
type Customer struct {
	ID     string       `json:"id"`
	Name   string       `json:"name,omitempty"`
	Export *Destination `json:"export,omitempty"`
}

// PutCustomer creates or replaces a customer's record.
func (s *Store) PutCustomer(ctx context.Context, c Customer, by string) error {
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM costlake_customers WHERE customer_id = ?`), c.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO costlake_customers (customer_id, body, updated_by, updated_at) VALUES (?, ?, ?, ?)`),
		c.ID, string(body), by, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("store customer %s: %w", c.ID, err)
	}
	return tx.Commit()
}

// CustomerOf returns a customer's record.
func (s *Store) CustomerOf(ctx context.Context, id string) (Customer, error) {
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT body FROM costlake_customers WHERE customer_id = ?`), id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Customer{ID: id}, fmt.Errorf("%w: no customer %s", ErrNotFound, id)
	}
	if err != nil {
		return Customer{ID: id}, err
	}
	var c Customer
	return c, json.Unmarshal([]byte(body), &c)
}

// Customers lists every customer record, by ID.
func (s *Store) Customers(ctx context.Context) ([]Customer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM costlake_customers ORDER BY customer_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Customer
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var c Customer
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
