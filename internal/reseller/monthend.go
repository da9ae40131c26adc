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

// monthEndSchema holds what month-end closing reads besides the cycles:
// holds on customers, accepted Cost Explorer differences, the webhook
// endpoint, the events delivered, and each payer's last successful crawl.
// They live here, not in Temporal, so they outlast history's retention.
var monthEndSchema = []string{
	`CREATE TABLE IF NOT EXISTS costlake_holds (
		customer_id TEXT NOT NULL PRIMARY KEY,
		reason      TEXT NOT NULL,
		held_by     TEXT NOT NULL,
		held_at     TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS costlake_ce_acceptances (
		customer_id      TEXT NOT NULL,
		period           TEXT NOT NULL,
		payer_account_id TEXT NOT NULL,
		reason           TEXT NOT NULL,
		accepted_by      TEXT NOT NULL,
		accepted_at      TEXT NOT NULL,
		snapshot_id      BIGINT NOT NULL,
		PRIMARY KEY (customer_id, period, payer_account_id))`,
	`CREATE TABLE IF NOT EXISTS costlake_webhooks (
		name       TEXT NOT NULL PRIMARY KEY,
		body       TEXT NOT NULL,
		updated_by TEXT NOT NULL,
		updated_at TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS costlake_webhook_events (
		event_id     TEXT NOT NULL PRIMARY KEY,
		event_type   TEXT NOT NULL,
		delivered_at TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS costlake_ce_months (
		payer_account_id TEXT NOT NULL,
		period           TEXT NOT NULL,
		as_of_day        TEXT NOT NULL,
		body             TEXT NOT NULL,
		PRIMARY KEY (payer_account_id, period))`,
	`CREATE TABLE IF NOT EXISTS costlake_payer_crawls (
		payer_account_id TEXT NOT NULL PRIMARY KEY,
		succeeded_at     TEXT NOT NULL,
		body             TEXT NOT NULL)`,
}

// Hold keeps a customer's cycles open at month end, with the reason.
type Hold struct {
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`
	HeldBy     string `json:"held_by"`
	HeldAt     string `json:"held_at"`
}

// PutHold holds a customer (replacing an earlier hold's reason).
func (s *Store) PutHold(ctx context.Context, h Hold) (Hold, error) {
	h.HeldAt = time.Now().UTC().Format(time.RFC3339)
	return h, s.replace(ctx, `DELETE FROM costlake_holds WHERE customer_id = ?`, []any{h.CustomerID},
		`INSERT INTO costlake_holds (customer_id, reason, held_by, held_at) VALUES (?, ?, ?, ?)`, []any{h.CustomerID, h.Reason, h.HeldBy, h.HeldAt})
}

// ReleaseHold lifts a customer's hold; ErrNotFound when none is held.
func (s *Store) ReleaseHold(ctx context.Context, customer string) (Hold, error) {
	h, err := s.HoldOf(ctx, customer)
	if err != nil {
		return h, err
	}
	_, err = s.db.ExecContext(ctx, s.q(`DELETE FROM costlake_holds WHERE customer_id = ?`), customer)
	return h, err
}

// HoldOf returns a customer's hold, ErrNotFound when it has none.
func (s *Store) HoldOf(ctx context.Context, customer string) (Hold, error) {
	h := Hold{CustomerID: customer}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT reason, held_by, held_at FROM costlake_holds WHERE customer_id = ?`), customer).Scan(&h.Reason, &h.HeldBy, &h.HeldAt)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("%w: customer %s is not on hold", ErrNotFound, customer)
	}
	return h, err
}

// Acceptance records that an operator accepted the difference between a
// payer's line items and Cost Explorer for a customer's period.
type Acceptance struct {
	CustomerID     string `json:"customer_id"`
	Period         string `json:"period"`
	PayerAccountID string `json:"payer_account_id"`
	Reason         string `json:"reason"`
	AcceptedBy     string `json:"accepted_by"`
	AcceptedAt     string `json:"accepted_at"`
	// SnapshotID is the payer's line items the operator accepted: a
	// restatement (a new snapshot) asks again.
	SnapshotID int64 `json:"snapshot_id"`
}

// AcceptDifference records an acceptance (replacing an earlier one's
// reason and author).
func (s *Store) AcceptDifference(ctx context.Context, a Acceptance) (Acceptance, error) {
	a.AcceptedAt = time.Now().UTC().Format(time.RFC3339)
	return a, s.replace(ctx, `DELETE FROM costlake_ce_acceptances WHERE customer_id = ? AND period = ? AND payer_account_id = ?`, []any{a.CustomerID, a.Period, a.PayerAccountID},
		`INSERT INTO costlake_ce_acceptances (customer_id, period, payer_account_id, reason, accepted_by, accepted_at, snapshot_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		[]any{a.CustomerID, a.Period, a.PayerAccountID, a.Reason, a.AcceptedBy, a.AcceptedAt, a.SnapshotID})
}

// Acceptances returns a customer's accepted differences of a period, by
// payer.
func (s *Store) Acceptances(ctx context.Context, customer, period string) (map[string]Acceptance, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT payer_account_id, reason, accepted_by, accepted_at, snapshot_id FROM costlake_ce_acceptances WHERE customer_id = ? AND period = ?`), customer, period)
	if err != nil {
		return nil, fmt.Errorf("read accepted differences: %w", err)
	}
	defer rows.Close()
	out := map[string]Acceptance{}
	for rows.Next() {
		a := Acceptance{CustomerID: customer, Period: period}
		if err := rows.Scan(&a.PayerAccountID, &a.Reason, &a.AcceptedBy, &a.AcceptedAt, &a.SnapshotID); err != nil {
			return nil, err
		}
		out[a.PayerAccountID] = a
	}
	return out, rows.Err()
}

// Webhook is the reseller's endpoint for costlake's events. SecretRef
// names the signing secret on the worker ("env:NAME"); the secret itself
// is never stored here.
type Webhook struct {
	URL       string   `json:"url"`
	SecretRef string   `json:"secret_ref"`
	Events    []string `json:"events,omitempty"` // empty: every type
	UpdatedBy string   `json:"updated_by,omitempty"`
	UpdatedAt string   `json:"updated_at,omitempty"`
}

// Wants says whether the endpoint subscribed to an event type.
func (w Webhook) Wants(typ string) bool {
	if len(w.Events) == 0 {
		return true
	}
	for _, e := range w.Events {
		if e == typ {
			return true
		}
	}
	return false
}

// webhookName is the one endpoint's key: a deployment serves one
// reseller.
const webhookName = "default"

// PutWebhook saves the reseller's endpoint.
func (s *Store) PutWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	w.UpdatedAt = time.Now().UTC().Format(time.RFC3339)
	body, err := json.Marshal(w)
	if err != nil {
		return w, err
	}
	return w, s.replace(ctx, `DELETE FROM costlake_webhooks WHERE name = ?`, []any{webhookName},
		`INSERT INTO costlake_webhooks (name, body, updated_by, updated_at) VALUES (?, ?, ?, ?)`, []any{webhookName, string(body), w.UpdatedBy, w.UpdatedAt})
}

// DeleteWebhook removes the endpoint: no more events are sent.
func (s *Store) DeleteWebhook(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM costlake_webhooks WHERE name = ?`), webhookName)
	return err
}

// WebhookOf returns the endpoint, ErrNotFound when none is set.
func (s *Store) WebhookOf(ctx context.Context) (Webhook, error) {
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT body FROM costlake_webhooks WHERE name = ?`), webhookName).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Webhook{}, fmt.Errorf("%w: no webhook endpoint is set", ErrNotFound)
	}
	if err != nil {
		return Webhook{}, err
	}
	var w Webhook
	return w, json.Unmarshal([]byte(body), &w)
}

// EventDelivered says whether an event ID was delivered already.
func (s *Store) EventDelivered(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM costlake_webhook_events WHERE event_id = ?`), id).Scan(&n)
	return n > 0, err
}

// MarkDelivered records an event ID as delivered; twice is a no-op.
func (s *Store) MarkDelivered(ctx context.Context, id, typ string) error {
	if ok, err := s.EventDelivered(ctx, id); err != nil || ok {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO costlake_webhook_events (event_id, event_type, delivered_at) VALUES (?, ?, ?)`),
		id, typ, time.Now().UTC().Format(time.RFC3339))
	if ok, _ := s.EventDelivered(ctx, id); ok {
		return nil // a concurrent delivery recorded it first
	}
	return err
}

// Crawl is a payer's last successful crawl: when (on the business
// clock), and the access the crawl used, which the month-end check uses
// to ask Cost Explorer (references only, never keys).
type Crawl struct {
	PayerAccountID string       `json:"payer_account_id"`
	SucceededAt    time.Time    `json:"succeeded_at"`
	Access         payer.Access `json:"access"`
	CostExplorer   bool         `json:"cost_explorer,omitempty"`
	RunID          string       `json:"run_id,omitempty"`
}

// RecordCrawl keeps a payer's newest successful crawl; an older one than
// the record changes nothing.
func (s *Store) RecordCrawl(ctx context.Context, c Crawl) error {
	if old, err := s.LastCrawl(ctx, c.PayerAccountID); err == nil && !old.SucceededAt.Before(c.SucceededAt) {
		return nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.replace(ctx, `DELETE FROM costlake_payer_crawls WHERE payer_account_id = ?`, []any{c.PayerAccountID},
		`INSERT INTO costlake_payer_crawls (payer_account_id, succeeded_at, body) VALUES (?, ?, ?)`,
		[]any{c.PayerAccountID, c.SucceededAt.UTC().Format(time.RFC3339Nano), string(body)}); err != nil {
		return err
	}
	return s.activeIfUnrecorded(ctx, c.PayerAccountID)
}

// LastCrawl returns a payer's last successful crawl, ErrNotFound when
// none was recorded.
func (s *Store) LastCrawl(ctx context.Context, payerID string) (Crawl, error) {
	var body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT body FROM costlake_payer_crawls WHERE payer_account_id = ?`), payerID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Crawl{PayerAccountID: payerID}, fmt.Errorf("%w: payer %s was never crawled successfully", ErrNotFound, payerID)
	}
	if err != nil {
		return Crawl{PayerAccountID: payerID}, err
	}
	var c Crawl
	return c, json.Unmarshal([]byte(body), &c)
}

// replace runs a delete and an insert in one transaction.
func (s *Store) replace(ctx context.Context, del string, delArgs []any, ins string, insArgs []any) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(del), delArgs...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(ins), insArgs...); err != nil {
		return err
	}
	return tx.Commit()
}

// CostExplorerMonth returns the monthly Cost Explorer answer of a payer's
// period stored on day (YYYY-MM-DD), if any: the customers sharing a
// payer are checked with one paid query a day, not one each.
func (s *Store) CostExplorerMonth(ctx context.Context, payerID, period, day string) (json.RawMessage, bool, error) {
	var stored, body string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT as_of_day, body FROM costlake_ce_months WHERE payer_account_id = ? AND period = ?`), payerID, period).Scan(&stored, &body)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && stored != day) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return json.RawMessage(body), true, nil
}

// PutCostExplorerMonth keeps a payer's monthly Cost Explorer answer of day.
func (s *Store) PutCostExplorerMonth(ctx context.Context, payerID, period, day string, body json.RawMessage) error {
	return s.replace(ctx, `DELETE FROM costlake_ce_months WHERE payer_account_id = ? AND period = ?`, []any{payerID, period},
		`INSERT INTO costlake_ce_months (payer_account_id, period, as_of_day, body) VALUES (?, ?, ?, ?)`, []any{payerID, period, day, string(body)})
}
