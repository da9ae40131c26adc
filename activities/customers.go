package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// Customers holds ManageCustomer's activity: one change to, or read of, a
// customer's records.
type Customers struct {
	Lake     *lakehouse.Lake
	Reseller *reseller.Store
	Destinations
}

// UnassignedView is what UnassignedCost answers: per payer, the usage of
// accounts that no customer owns in the period.
type UnassignedView struct {
	Period string                 `json:"period"`
	Payers []UnassignedPayerTotal `json:"payers"`
}

// UnassignedPayerTotal is one payer's unassigned usage.
type UnassignedPayerTotal struct {
	PayerAccountID string                 `json:"payer_account_id"`
	Accounts       []billing.AccountTotal `json:"accounts"`
	UnblendedCost  money.Amount           `json:"unblended_cost"`
}

func requestError(typ string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
}

// storeError names the reseller store's refusals for the gateway.
func storeError(err error) error {
	switch {
	case errors.Is(err, reseller.ErrClosed):
		return requestError(customerops.ErrTypeClosed, err)
	case errors.Is(err, reseller.ErrConflict):
		return requestError(customerops.ErrTypeConflict, err)
	case errors.Is(err, reseller.ErrNotFound):
		return requestError(customerops.ErrTypeNotFound, err)
	}
	return err
}

func decodeStrictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return requestError(customerops.ErrTypeInvalid, err)
	}
	return nil
}

// ApplyCustomerRequest applies one change to a customer's records, or
// reads them, and answers in JSON.
func (a *Customers) ApplyCustomerRequest(ctx context.Context, r customerops.Request) (json.RawMessage, error) {
	if a.Reseller == nil {
		return nil, temporal.NewNonRetryableApplicationError("the worker has no reseller records", "InvalidSetup", nil)
	}
	var answer any
	switch r.Kind {
	case customerops.PutCustomer:
		var c reseller.Customer
		if err := decodeStrictJSON(r.Body, &c); err != nil {
			return nil, err
		}
		c.ID = r.CustomerID
		if c.Export != nil {
			if err := a.checkDestination(ctx, c.ID, *c.Export); err != nil {
				if destinationFault(err) {
					return nil, requestError(customerops.ErrTypeInvalid, err)
				}
				return nil, err
			}
		}
		if err := a.Reseller.PutCustomer(ctx, c, r.By); err != nil {
			return nil, storeError(err)
		}
		answer = c
	case customerops.GetCustomer:
		v, err := a.Reseller.View(ctx, r.CustomerID, r.Period)
		if err != nil {
			return nil, err
		}
		answer = v
	case customerops.SetAccounts:
		var ch customerops.AccountsChange
		if err := decodeStrictJSON(r.Body, &ch); err != nil {
			return nil, err
		}
		want := make([]reseller.Assignment, 0, len(ch.Payers))
		for _, p := range ch.Payers {
			want = append(want, reseller.Assignment{PayerAccountID: p.PayerAccountID, Accounts: p.Accounts})
		}
		if err := a.Reseller.SetAccounts(ctx, r.CustomerID, ch.EffectiveFrom, want, r.By); err != nil {
			return nil, storeError(err)
		}
		accts, err := a.Reseller.CustomerAccounts(ctx, r.CustomerID, ch.EffectiveFrom)
		if err != nil {
			return nil, err
		}
		answer = reseller.CustomerView{Customer: reseller.Customer{ID: r.CustomerID}, Period: ch.EffectiveFrom, Accounts: accts}
	case customerops.PutPricebook:
		p, err := pricing.Decode(r.Body)
		if err != nil {
			return nil, requestError(customerops.ErrTypeInvalid, err)
		}
		v, err := a.Reseller.PutPricebook(ctx, r.CustomerID, p.EffectiveFrom, r.Body, r.By)
		if err != nil {
			return nil, storeError(err)
		}
		p.CustomerID, p.Version = r.CustomerID, v
		answer = p
	case customerops.GetPricebook:
		pv, err := a.Reseller.PricebookFor(ctx, r.CustomerID, r.Period)
		if err != nil {
			return nil, storeError(err)
		}
		answer = pv
	case customerops.VerifyExport:
		var d reseller.Destination
		if err := decodeStrictJSON(r.Body, &d); err != nil {
			return nil, err
		}
		// A probe is a write: never into costlake's own storage.
		if loc, err := blob.ParseLocation(d.URL); err == nil {
			if err := a.refuseReserved(loc); err != nil {
				return nil, requestError(customerops.ErrTypeInvalid, err)
			}
		}
		if d.Access != nil {
			if err := d.Access.Validate(); err != nil {
				return nil, requestError(customerops.ErrTypeInvalid, fmt.Errorf("access: %w", err))
			}
		}
		answer = a.verifyDestination(ctx, d, r.CustomerID)
	case customerops.ClaimPayer, customerops.ReleasePayer:
		var pc customerops.PayerClaim
		if err := decodeStrictJSON(r.Body, &pc); err != nil {
			return nil, err
		}
		if r.Kind == customerops.ReleasePayer {
			if err := a.Reseller.ReleasePayer(ctx, pc.PayerAccountID, r.CustomerID); err != nil {
				return nil, err
			}
			answer = reseller.PayerClaim{PayerAccountID: pc.PayerAccountID}
			break
		}
		claim, err := a.Reseller.ClaimPayer(ctx, pc.PayerAccountID, r.CustomerID, r.By, pc.Takeover)
		if err != nil {
			return nil, storeError(err)
		}
		answer = claim
	case customerops.UnassignedCost:
		v, err := a.unassigned(ctx, r.Period)
		if err != nil {
			return nil, err
		}
		answer = v
	default:
		return nil, requestError(customerops.ErrTypeInvalid, fmt.Errorf("unknown request %q", r.Kind))
	}
	return json.Marshal(answer)
}

func (a *Customers) verifyDestination(ctx context.Context, d reseller.Destination, customer string) export.VerifyResult {
	dest, err := a.openDestination(ctx, d.URL, d.Access, customer)
	if err != nil {
		return export.Result(err)
	}
	defer dest.Close()
	return export.Result(export.Verify(ctx, dest.Store, dest.Loc.Prefix, export.VerifyOptions{}))
}

// unassigned sums, per payer with a committed period, the usage of
// accounts that no customer owns then.
func (a *Customers) unassigned(ctx context.Context, period string) (UnassignedView, error) {
	view := UnassignedView{Period: period, Payers: []UnassignedPayerTotal{}}
	owners, err := a.Reseller.Owners(ctx, period)
	if err != nil {
		return view, err
	}
	tbl, err := a.Lake.Table(ctx, billing.LineItems)
	if err != nil {
		return view, err
	}
	for _, payerID := range lakehouse.PayersOfPeriod(tbl, period) {
		c, _ := lakehouse.LatestPeriodCommit(tbl, payerID, period)
		totals, err := a.Lake.PeriodTotals(ctx, billing.LineItems, payerID, period, c.SnapshotID)
		if err != nil {
			return view, err
		}
		p := UnassignedPayerTotal{PayerAccountID: payerID}
		for _, t := range billing.ByAccount(totals) {
			if reseller.Owner(owners, payerID, t.Account) == "" {
				p.Accounts = append(p.Accounts, t)
				p.UnblendedCost = p.UnblendedCost.Add(t.UnblendedCost)
			}
		}
		view.Payers = append(view.Payers, p)
	}
	slices.SortFunc(view.Payers, func(x, y UnassignedPayerTotal) int { return strings.Compare(x.PayerAccountID, y.PayerAccountID) })
	return view, nil
}
