package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// Customers holds CustomerRequest's activity (and ManageCustomer's, the
// previous release's): one change to, or read of, a
// customer's records.
type Customers struct {
	Lake     *lakehouse.Lake
	Reseller *reseller.Store
	Destinations
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

// ApplyCustomerOperation applies one change to a customer's records, or
// reads them: the request's one operation, answered in its field of
// Answer.
func (a *Customers) ApplyCustomerOperation(ctx context.Context, r customerops.Request) (customerops.Answer, error) {
	var none customerops.Answer
	if a.Reseller == nil {
		return none, temporal.NewNonRetryableApplicationError("the worker has no reseller records", "InvalidSetup", nil)
	}
	if r.Op() == "" {
		return none, requestError(customerops.ErrTypeInvalid, errors.New("a customer request sets exactly one operation"))
	}
	switch {
	case r.PutCustomer != nil:
		c := *r.PutCustomer
		c.ID = r.CustomerID
		if c.Export != nil {
			if err := a.checkDestination(ctx, c.ID, *c.Export); err != nil {
				if destinationFault(err) {
					return none, requestError(customerops.ErrTypeInvalid, err)
				}
				return none, err
			}
		}
		if err := a.Reseller.PutCustomer(ctx, c, r.By); err != nil {
			return none, storeError(err)
		}
		return customerops.Answer{Customer: &c}, nil
	case r.GetCustomer != nil:
		v, err := a.Reseller.View(ctx, r.CustomerID, r.GetCustomer.Period.String())
		if err != nil {
			return none, err
		}
		return customerops.Answer{View: &v}, nil
	case r.SetAccounts != nil:
		ch := r.SetAccounts
		want := make([]reseller.Assignment, 0, len(ch.Payers))
		for _, p := range ch.Payers {
			want = append(want, reseller.Assignment{PayerAccountID: p.PayerAccountID, Accounts: p.Accounts})
		}
		if err := a.Reseller.SetAccounts(ctx, r.CustomerID, ch.EffectiveFrom.String(), want, r.By); err != nil {
			return none, storeError(err)
		}
		accts, err := a.Reseller.CustomerAccounts(ctx, r.CustomerID, ch.EffectiveFrom.String())
		if err != nil {
			return none, err
		}
		if accts == nil {
			accts = []reseller.Assignment{} // "accounts": [], as a read answers
		}
		return customerops.Answer{View: &reseller.CustomerView{Customer: reseller.Customer{ID: r.CustomerID}, Period: ch.EffectiveFrom.String(), Accounts: accts}}, nil
	case r.PutPricebook != nil:
		doc := r.PutPricebook.Document
		p, err := pricing.Decode(doc)
		if err != nil {
			return none, requestError(customerops.ErrTypeInvalid, err)
		}
		v, err := a.Reseller.PutPricebook(ctx, r.CustomerID, p.EffectiveFrom, doc, r.By)
		if err != nil {
			return none, storeError(err)
		}
		p.CustomerID, p.Version = r.CustomerID, v
		return customerops.Answer{Pricebook: &p}, nil
	case r.GetPricebook != nil:
		pv, err := a.Reseller.PricebookFor(ctx, r.CustomerID, r.GetPricebook.Period.String())
		if err != nil {
			return none, storeError(err)
		}
		return customerops.Answer{PricebookVersion: &pv}, nil
	case r.VerifyExport != nil:
		d := *r.VerifyExport
		// A probe is a write: never into costlake's own storage.
		if loc, err := blob.ParseLocation(d.URL); err == nil {
			if err := a.refuseReserved(loc); err != nil {
				return none, requestError(customerops.ErrTypeInvalid, err)
			}
		}
		if d.Access != nil {
			if err := d.Access.Validate(); err != nil {
				return none, requestError(customerops.ErrTypeInvalid, fmt.Errorf("access: %w", err))
			}
		}
		v := a.verifyDestination(ctx, d, r.CustomerID)
		return customerops.Answer{Verify: &v}, nil
	case r.UnassignedCost != nil:
		v, err := a.unassigned(ctx, r.UnassignedCost.Period)
		if err != nil {
			return none, err
		}
		return customerops.Answer{Unassigned: &v}, nil
	case r.ReleasePayer != nil:
		if err := a.Reseller.ReleasePayer(ctx, r.ReleasePayer.PayerAccountID, r.CustomerID); err != nil {
			return none, err
		}
		return customerops.Answer{Claim: &reseller.PayerClaim{PayerAccountID: r.ReleasePayer.PayerAccountID}}, nil
	default: // r.ClaimPayer
		pc := r.ClaimPayer
		claim, err := a.Reseller.ClaimPayer(ctx, pc.PayerAccountID, r.CustomerID, r.By, pc.Takeover)
		if err != nil {
			return none, storeError(err)
		}
		return customerops.Answer{Claim: &claim}, nil
	}
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
func (a *Customers) unassigned(ctx context.Context, p period.Period) (customerops.UnassignedView, error) {
	view := customerops.UnassignedView{Period: p, Payers: []customerops.UnassignedPayerTotal{}}
	owners, err := a.Reseller.Owners(ctx, p.String())
	if err != nil {
		return view, err
	}
	payers, err := a.Lake.PayersOfPeriod(ctx, billing.LineItems, p)
	if err != nil {
		return view, err
	}
	for _, payerID := range payers {
		c, _, err := a.Lake.LatestPeriodCommit(ctx, billing.LineItems, payerID, p)
		if err != nil {
			return view, err
		}
		totals, err := a.Lake.PeriodTotals(ctx, billing.LineItems, payerID, p, c.SnapshotID)
		if err != nil {
			return view, err
		}
		p := customerops.UnassignedPayerTotal{PayerAccountID: payerID}
		for _, t := range billing.ByAccount(totals) {
			if reseller.Owner(owners, payerID, t.Account) == "" {
				p.Accounts = append(p.Accounts, t)
				p.UnblendedCost = p.UnblendedCost.Add(t.UnblendedCost)
			}
		}
		view.Payers = append(view.Payers, p)
	}
	slices.SortFunc(view.Payers, func(x, y customerops.UnassignedPayerTotal) int {
		return strings.Compare(x.PayerAccountID, y.PayerAccountID)
	})
	return view, nil
}
