package reseller

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// payerStatusSchema is each payer's onboarding status as its onboarding
// last recorded it (RecordPayerStatus, at every status change): the
// payer list reads it with one query instead of asking every onboarding
// workflow, and it outlasts Temporal's retention.
var payerStatusSchema = []string{
	`CREATE TABLE IF NOT EXISTS costlake_payer_status (
		payer_account_id TEXT NOT NULL PRIMARY KEY,
		customer_id      TEXT NOT NULL,
		name             TEXT NOT NULL,
		status           TEXT NOT NULL,
		status_since     TEXT NOT NULL,
		checks_passed    INTEGER NOT NULL,
		checks_failed    INTEGER NOT NULL,
		checks_pending   INTEGER NOT NULL,
		has_checks       INTEGER NOT NULL,
		run_id           TEXT NOT NULL,
		recorded_at      TEXT NOT NULL)`,
}

// CheckCounts sums an onboarding's checks: passed (warnings and checks
// that do not apply included: they do not block approval), failed, and
// pending (skipped after an earlier failure, or not run yet).
type CheckCounts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Pending int `json:"pending"`
}

// PayerStatus is a payer's onboarding status as recorded.
type PayerStatus struct {
	PayerAccountID string       `json:"payer_account_id"`
	CustomerID     string       `json:"customer_id"`
	Name           string       `json:"name,omitempty"`
	Status         string       `json:"status"`
	Since          time.Time    `json:"since"`
	Checks         *CheckCounts `json:"checks,omitempty"`
	// RunID is the onboarding run that recorded it: "<workflow>/<run>".
	RunID string `json:"run_id,omitempty"`
}

// RecordPayerStatus keeps a payer's newest status; a record older than
// the one kept (a retry that lost a race with a later change) changes
// nothing.
func (s *Store) RecordPayerStatus(ctx context.Context, p PayerStatus) error {
	if p.PayerAccountID == "" || p.CustomerID == "" || p.Status == "" {
		return fmt.Errorf("%w: a payer status needs a payer, a customer and a status", ErrInvalid)
	}
	var since string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT status_since FROM costlake_payer_status WHERE payer_account_id = ?`), p.PayerAccountID).Scan(&since)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read payer %s's status: %w", p.PayerAccountID, err)
	default:
		if old, perr := time.Parse(time.RFC3339Nano, since); perr == nil && old.After(p.Since) {
			return nil
		}
	}
	var c CheckCounts
	if p.Checks != nil {
		c = *p.Checks
	}
	return s.replace(ctx, `DELETE FROM costlake_payer_status WHERE payer_account_id = ?`, []any{p.PayerAccountID},
		`INSERT INTO costlake_payer_status (payer_account_id, customer_id, name, status, status_since, checks_passed, checks_failed, checks_pending, has_checks, run_id, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		[]any{p.PayerAccountID, p.CustomerID, p.Name, p.Status, p.Since.UTC().Format(time.RFC3339Nano), c.Passed, c.Failed, c.Pending, boolInt(p.Checks != nil), p.RunID,
			time.Now().UTC().Format(time.RFC3339Nano)})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PayerStatusUnknown is the status listed for a payer whose ownership is
// recorded but whose onboarding has recorded no status yet (one started
// before onboardings recorded it, until its next run).
const PayerStatusUnknown = "unknown"

// PayerListing is one payer as the payer list shows it: its recorded
// status (Status is PayerStatusUnknown when none is recorded) and its
// last successful crawl (zero when none).
type PayerListing struct {
	PayerStatus
	Recorded  bool      `json:"recorded"`
	LastCrawl time.Time `json:"last_crawl,omitzero"`
}

// PayerFilter picks payers: after a payer ID (the previous page's last),
// of one customer, in some statuses (the recorded ones, or
// PayerStatusUnknown); at most Limit rows.
type PayerFilter struct {
	After    string
	Customer string
	Statuses []string
	Limit    int
}

// ListPayers lists the payers with a status record or an ownership
// record, by payer account ID. A status record's customer wins over the
// ownership record's (the onboarding's registration is the one in force).
func (s *Store) ListPayers(ctx context.Context, f PayerFilter) ([]PayerListing, error) {
	query := `SELECT p.payer_account_id, COALESCE(st.customer_id, p.customer_id), COALESCE(st.name, ''), COALESCE(st.status, ''),
			COALESCE(st.status_since, ''), COALESCE(st.checks_passed, 0), COALESCE(st.checks_failed, 0), COALESCE(st.checks_pending, 0),
			COALESCE(st.has_checks, 0), COALESCE(st.run_id, ''), COALESCE(cr.succeeded_at, '')
		FROM (SELECT payer_account_id, customer_id FROM costlake_payer_status
			UNION ALL SELECT o.payer_account_id, o.customer_id FROM costlake_payer_owners o
			WHERE NOT EXISTS (SELECT 1 FROM costlake_payer_status x WHERE x.payer_account_id = o.payer_account_id)) p
		LEFT JOIN costlake_payer_status st ON st.payer_account_id = p.payer_account_id
		LEFT JOIN costlake_payer_crawls cr ON cr.payer_account_id = p.payer_account_id
		WHERE p.payer_account_id > ?`
	args := []any{f.After}
	if f.Customer != "" {
		query += ` AND COALESCE(st.customer_id, p.customer_id) = ?`
		args = append(args, f.Customer)
	}
	if len(f.Statuses) > 0 {
		query += ` AND COALESCE(st.status, '` + PayerStatusUnknown + `') IN (` + placeholders(len(f.Statuses)) + `)`
		for _, st := range f.Statuses {
			args = append(args, st)
		}
	}
	query += ` ORDER BY p.payer_account_id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list payers: %w", err)
	}
	defer rows.Close()
	out := []PayerListing{}
	for rows.Next() {
		var p PayerListing
		var since, crawled string
		var c CheckCounts
		var hasChecks int
		if err := rows.Scan(&p.PayerAccountID, &p.CustomerID, &p.Name, &p.Status, &since, &c.Passed, &c.Failed, &c.Pending, &hasChecks, &p.RunID, &crawled); err != nil {
			return nil, fmt.Errorf("list payers: %w", err)
		}
		p.Recorded = p.Status != ""
		if !p.Recorded {
			p.Status = PayerStatusUnknown
		}
		p.Since, _ = time.Parse(time.RFC3339Nano, since)
		p.LastCrawl, _ = time.Parse(time.RFC3339Nano, crawled)
		if hasChecks != 0 {
			p.Checks = &c
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// placeholders is n "?" separated by commas.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// activeIfUnrecorded records a payer crawled on its schedule as active
// when its onboarding has recorded no status: one that started before
// onboardings recorded their status, and stays quiet while active. Only
// an active onboarding has a crawl schedule (offboarding deletes it), so
// a successful scheduled crawl says the payer is active; when it became
// so is not known (no status_since). The holder's record names its
// customer; a payer nobody holds is left alone. Any status its
// onboarding records later replaces this one.
func (s *Store) activeIfUnrecorded(ctx context.Context, payerID string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO costlake_payer_status (payer_account_id, customer_id, name, status, status_since, checks_passed, checks_failed, checks_pending, has_checks, run_id, recorded_at)
		SELECT o.payer_account_id, o.customer_id, '', ?, '', 0, 0, 0, 0, '', ? FROM costlake_payer_owners o
		WHERE o.payer_account_id = ? AND NOT EXISTS (SELECT 1 FROM costlake_payer_status x WHERE x.payer_account_id = o.payer_account_id)`),
		payerStatusActive, time.Now().UTC().Format(time.RFC3339Nano), payerID)
	if err != nil {
		return fmt.Errorf("record payer %s as active: %w", payerID, err)
	}
	return nil
}

// payerStatusActive is the onboarding's active status (workflows.StatusActive).
const payerStatusActive = "active"
