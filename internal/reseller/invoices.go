package reseller

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// invoiceSchema keeps each closed cycle's invoice: the record the
// customer is charged by, read back whatever Temporal still retains.
var invoiceSchema = []string{
	`CREATE TABLE IF NOT EXISTS costlake_invoices (
		customer_id TEXT NOT NULL,
		period      TEXT NOT NULL,
		pins        TEXT NOT NULL,
		currency    TEXT NOT NULL,
		total       TEXT NOT NULL,
		due         TEXT NOT NULL,
		body        TEXT NOT NULL,
		created_at  TEXT NOT NULL,
		PRIMARY KEY (customer_id, period))`,
}

// Invoice is a closed cycle's invoice as stored: Body is its JSON (a
// pricing.Bill), Pins the cycle's pins it was priced from; Currency,
// Total and Due repeat the bill's for queries.
type Invoice struct {
	CustomerID string
	Period     string
	Pins       string
	Currency   string
	Total      string
	Due        string
	Body       []byte
	CreatedAt  time.Time
}

// SaveInvoice records a closed cycle's invoice once: the first one saved
// for the customer's period stays (a closed cycle's pins, pricebook and
// adjustments do not change, so pricing it again gives the same bill),
// and SaveInvoice returns the one stored.
func (s *Store) SaveInvoice(ctx context.Context, inv Invoice) (Invoice, error) {
	if inv.CustomerID == "" || inv.Period == "" || len(inv.Body) == 0 {
		return Invoice{}, fmt.Errorf("%w: an invoice needs a customer, a period and a body", ErrInvalid)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO costlake_invoices (customer_id, period, pins, currency, total, due, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, period) DO NOTHING`),
		inv.CustomerID, inv.Period, inv.Pins, inv.Currency, inv.Total, inv.Due, string(inv.Body), time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return Invoice{}, fmt.Errorf("save the invoice of %s %s: %w", inv.CustomerID, inv.Period, err)
	}
	return s.InvoiceOf(ctx, inv.CustomerID, inv.Period)
}

// InvoiceOf reads a closed cycle's invoice; ErrNotFound when none is
// stored (the cycle is open, or was priced before invoices were kept).
func (s *Store) InvoiceOf(ctx context.Context, customer, period string) (Invoice, error) {
	inv := Invoice{CustomerID: customer, Period: period}
	var body, created string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT pins, currency, total, due, body, created_at FROM costlake_invoices WHERE customer_id = ? AND period = ?`),
		customer, period).Scan(&inv.Pins, &inv.Currency, &inv.Total, &inv.Due, &body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, fmt.Errorf("%w: customer %s has no invoice for %s", ErrNotFound, customer, period)
	}
	if err != nil {
		return inv, fmt.Errorf("read the invoice of %s %s: %w", customer, period, err)
	}
	inv.Body = []byte(body)
	inv.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
	return inv, nil
}
