package reseller

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// payerSchema is the record of which customer a payer account was
// registered for. It lives here, not only in the onboarding's Temporal
// history, so it outlasts the history's retention: a payer one customer
// held is never free for another customer's key to take later.
var payerSchema = []string{
	`CREATE TABLE IF NOT EXISTS costlake_payer_owners (
		payer_account_id TEXT NOT NULL PRIMARY KEY,
		customer_id      TEXT NOT NULL,
		claimed_by       TEXT NOT NULL,
		claimed_at       TEXT NOT NULL)`,
	// Payers registered before the record existed: a customer that owns
	// the whole payer (its latest "*" assignment) holds it.
	`INSERT INTO costlake_payer_owners (payer_account_id, customer_id, claimed_by, claimed_at)
		SELECT o.payer_account_id, o.customer_id, 'migration', o.changed_at FROM costlake_account_owners o
		WHERE o.account_id = '*' AND o.customer_id <> ''
		AND o.effective_from = (SELECT MAX(x.effective_from) FROM costlake_account_owners x WHERE x.payer_account_id = o.payer_account_id AND x.account_id = '*')
		AND NOT EXISTS (SELECT 1 FROM costlake_payer_owners p WHERE p.payer_account_id = o.payer_account_id)`,
}

// PayerClaim is the answer to ClaimPayer.
type PayerClaim struct {
	PayerAccountID string `json:"payer_account_id"`
	CustomerID     string `json:"customer_id"`
	// Created: this claim wrote the record (nobody held the payer), so
	// the caller may release it if the registration does not go ahead.
	Created bool `json:"created"`
	// TakenFrom is the customer that held the payer before a takeover.
	TakenFrom string `json:"taken_from,omitempty"`
}

// PayerOwner returns the customer a payer is registered for; "" when
// none ever was.
func (s *Store) PayerOwner(ctx context.Context, payerID string) (string, error) {
	return payerOwner(ctx, s.db, s.q, payerID)
}

type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func payerOwner(ctx context.Context, q rowQueryer, bind func(string) string, payerID string) (string, error) {
	var customer string
	err := q.QueryRowContext(ctx, bind(`SELECT customer_id FROM costlake_payer_owners WHERE payer_account_id = ?`), payerID).Scan(&customer)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read payer %s's owner: %w", payerID, err)
	}
	return customer, nil
}

// ClaimPayer records that customer holds payerID. A payer another
// customer holds is ErrConflict unless takeover (an unscoped operator
// registering it again); the customer's own payer is claimed again at no
// cost.
func (s *Store) ClaimPayer(ctx context.Context, payerID, customer, by string, takeover bool) (PayerClaim, error) {
	claim := PayerClaim{PayerAccountID: payerID, CustomerID: customer}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return claim, err
	}
	defer tx.Rollback()
	held, err := payerOwner(ctx, tx, s.q, payerID)
	if err != nil {
		return claim, err
	}
	now := time.Now().UTC().Format(time.RFC3339)
	switch {
	case held == customer:
		return claim, nil
	case held != "" && !takeover:
		return claim, fmt.Errorf("%w: payer %s is held by another customer", ErrConflict, payerID)
	case held != "":
		claim.TakenFrom = held
		_, err = tx.ExecContext(ctx, s.q(`UPDATE costlake_payer_owners SET customer_id = ?, claimed_by = ?, claimed_at = ? WHERE payer_account_id = ?`),
			customer, by, now, payerID)
	default:
		claim.Created = true
		// The primary key makes two first claims at once one winner: the
		// loser's commit fails and the activity's retry reads the winner.
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO costlake_payer_owners (payer_account_id, customer_id, claimed_by, claimed_at) VALUES (?, ?, ?, ?)`),
			payerID, customer, by, now)
	}
	if err != nil {
		return claim, fmt.Errorf("claim payer %s for %s: %w", payerID, customer, err)
	}
	return claim, tx.Commit()
}

// ReleasePayer removes customer's claim on payerID, when it still holds
// it: a claim whose registration did not go ahead.
func (s *Store) ReleasePayer(ctx context.Context, payerID, customer string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM costlake_payer_owners WHERE payer_account_id = ? AND customer_id = ?`), payerID, customer)
	return err
}
