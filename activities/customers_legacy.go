package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
)

// ApplyCustomerRequest is the previous release's activity, for its
// gateway and runs in flight: it reads the legacy request into a typed
// one (bodies decoded strictly, as that release did), applies it, and
// answers the one result as raw JSON, which that gateway passes on.
func (a *Customers) ApplyCustomerRequest(ctx context.Context, lr customerops.LegacyRequest) (json.RawMessage, error) {
	r, err := typedRequest(lr)
	if err != nil {
		return nil, requestError(customerops.ErrTypeInvalid, err)
	}
	ans, err := a.ApplyCustomerOperation(ctx, r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ans.Value())
}

// typedRequest is the typed form of a legacy request.
func typedRequest(lr customerops.LegacyRequest) (customerops.Request, error) {
	r := customerops.Request{CustomerID: lr.CustomerID, By: lr.By}
	read := func() (*customerops.PeriodRead, error) {
		p, err := period.Parse(lr.Period)
		return &customerops.PeriodRead{Period: p}, err
	}
	var err error
	switch lr.Kind {
	case "put_customer":
		r.PutCustomer = &reseller.Customer{}
		err = decodeStrict(lr.Body, r.PutCustomer)
	case "get_customer":
		r.GetCustomer, err = read()
	case "set_accounts":
		var body struct {
			EffectiveFrom string                      `json:"effective_from"`
			Payers        []customerops.PayerAccounts `json:"payers"`
		}
		if err = decodeStrict(lr.Body, &body); err == nil {
			r.SetAccounts = &customerops.AccountsChange{Payers: body.Payers}
			r.SetAccounts.EffectiveFrom, err = period.Parse(body.EffectiveFrom)
		}
	case "put_pricebook":
		r.PutPricebook = &customerops.PricebookChange{Document: lr.Body}
	case "get_pricebook":
		r.GetPricebook, err = read()
	case "verify_export":
		r.VerifyExport = &reseller.Destination{}
		err = decodeStrict(lr.Body, r.VerifyExport)
	case "unassigned_cost":
		r.UnassignedCost, err = read()
	case "claim_payer":
		r.ClaimPayer = &customerops.PayerClaim{}
		err = decodeStrict(lr.Body, r.ClaimPayer)
	case "release_payer":
		r.ReleasePayer = &customerops.PayerClaim{}
		err = decodeStrict(lr.Body, r.ReleasePayer)
	default:
		return r, fmt.Errorf("unknown request %q", lr.Kind)
	}
	return r, err
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
