package reseller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/blob"
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
	// OperatorOverride: an unscoped operator vouches for a destination
	// that has no role of the customer's (S3) or ownership proof (GCS),
	// or is a folder on the worker; it is then written with the worker's
	// own credentials.
	OperatorOverride bool `json:"operator_override,omitempty"`
}

// OwnershipFile is the object a customer writes under a gs:// export
// prefix to prove the bucket is theirs: its first line is the customer's
// ID. costlake only reads it; no export ever writes it.
const OwnershipFile = "costlake-owner.txt"

// FieldErrors checks a destination as it is saved; keys are JSON field
// names under "export". It cannot see the bucket: the worker proves a
// gs:// destination's ownership and refuses its own buckets when it
// stores the record and again before each export.
func (d Destination) FieldErrors() map[string]string {
	f := map[string]string{}
	loc, err := blob.ParseLocation(d.URL)
	switch {
	case err != nil:
		f["url"] = "s3://bucket/prefix or gs://bucket/prefix"
	case loc.Scheme == "file" && !d.OperatorOverride:
		f["url"] = "a folder on the worker needs operator_override; customers' exports go to s3:// or gs://"
	case loc.Scheme == "s3" && d.Access == nil && !d.OperatorOverride:
		f["access"] = "required for s3://: the customer's role costlake assumes to write (assume_role or web_identity); or operator_override to write with the worker's own credentials"
	}
	if d.Mode != "" && d.Mode != "at_cost" && d.Mode != "at_resale" {
		f["mode"] = `"at_cost" or "at_resale"`
	}
	if a := d.Access; a != nil {
		if err == nil && loc.Scheme != "s3" {
			f["access"] = "S3 only: gs:// destinations are written with the worker's Google identity, which the customer grants on the bucket"
		} else {
			for k, v := range a.FieldErrors() {
				f["access."+k] = v
			}
			if a.Mode == payer.Local {
				f["access.mode"] = "local is a payer's mode in costlake dev; a folder on the worker is a file:// URL with operator_override"
			}
			if a.Mode == payer.AccessKeys && !d.OperatorOverride {
				f["access.mode"] = "an export destination needs the customer's role (assume_role or web_identity); access_keys live on the worker and need operator_override"
			}
		}
	}
	return f
}

// Validate returns an ErrInvalid error naming every bad field.
func (d Destination) Validate() error {
	f := d.FieldErrors()
	if len(f) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(f))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = "export." + k + ": " + f[k]
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(parts, "; "))
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

// CustomerView is a customer's record with the accounts it owns in a
// period: what GET /v1/customers/{id} answers.
type CustomerView struct {
	Customer
	Period   string       `json:"period"`
	Accounts []Assignment `json:"accounts"`
}

// View reads a customer's record and its accounts in period. A customer
// without a record yet (accounts assigned, no PUT) is shown by its ID.
func (s *Store) View(ctx context.Context, id, period string) (CustomerView, error) {
	c, err := s.CustomerOf(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return CustomerView{}, err
	}
	accts, err := s.CustomerAccounts(ctx, id, period)
	if err != nil {
		return CustomerView{}, err
	}
	if accts == nil {
		accts = []Assignment{} // "accounts": [], not null
	}
	c.ID = id
	return CustomerView{Customer: c, Period: period, Accounts: accts}, nil
}
