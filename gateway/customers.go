package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/workflows"
)

// customerOp runs a CustomerRequest workflow and waits for its answer.
// Changes share the customer's workflow ID, so a second change while one
// runs is a conflict; reads get their own IDs.
func (s *Server) customerOp(c echo.Context, r customerops.Request) (any, error) {
	r.By = principal(c).Name
	opts := workflows.ManageCustomerStartOptions(r.CustomerID, r.Op(), r.Change())
	ctx := c.Request().Context()
	run, err := s.temporal.ExecuteWorkflow(ctx, opts, customerops.Workflow, r)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, errorf(kindConflict, "another change to customer %s is running; try again", r.CustomerID)
	}
	if err != nil {
		return nil, err
	}
	var out customerops.Answer
	if err := run.Get(ctx, &out); err != nil {
		if ae := failureError(err); ae != nil {
			return nil, ae
		}
		return nil, err
	}
	return out.Value(), nil
}

// periodPath is the route's {period}, parsed once here: everything past
// the gateway holds a period.Period.
func periodPath(c echo.Context) (period.Period, error) {
	p, err := period.Parse(c.Param("period"))
	if err != nil {
		return p, validationError(map[string]string{"period": "YYYY-MM"})
	}
	return p, nil
}

// recordsError answers a direct read of the records as the worker's
// CustomerRequest answers it: a missing record is 404 with the store's
// message, anything else a 500 logged by handleError.
func recordsError(err error) error {
	if errors.Is(err, reseller.ErrNotFound) {
		return &apiError{kind: kindNotFound, message: err.Error()}
	}
	return fmt.Errorf("read the reseller records: %w", err)
}

// customerFor checks the route's customer ID and what the key may do with
// it: scoped keys read their own customer only; changes need an unscoped
// operator key (pricebooks and assignments are the reseller's business).
func customerFor(c echo.Context, change bool) (string, error) {
	id := c.Param("id")
	if !payer.ValidCustomerID(id) || !sees(c, id) {
		return id, errorf(kindNotFound, "no customer %q", id)
	}
	if change {
		if err := requireOperator(c); err != nil {
			return id, err
		}
		if err := requireUnscoped(c); err != nil {
			return id, err
		}
	}
	return id, nil
}

// periodParam is the request's ?period, or the business clock's month.
func (s *Server) periodParam(c echo.Context) (period.Period, error) {
	q := c.QueryParam("period")
	if q == "" {
		return period.Of(s.clock.Now()), nil
	}
	p, err := period.Parse(q)
	if err != nil {
		return p, validationError(map[string]string{"period": "YYYY-MM"})
	}
	return p, nil
}

func rawBody(c echo.Context) (json.RawMessage, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil || !json.Valid(b) {
		return nil, validationError(map[string]string{"body": "must be a JSON object"})
	}
	return b, nil
}

func (s *Server) handlePutCustomer(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	var body struct {
		Name   string                `json:"name"`
		Export *reseller.Destination `json:"export,omitempty"`
	}
	if err := decodeStrict(c, &body); err != nil {
		return err
	}
	// The access settings and the rules of ownership are checked here for
	// field errors; the worker checks again with the bucket in view (its
	// own buckets, a gs:// ownership file). operator_override passes
	// only because this route needs an unscoped operator key.
	if e := body.Export; e != nil {
		fields := map[string]string{}
		for k, v := range e.FieldErrors() {
			fields["export."+k] = v
		}
		if len(fields) > 0 {
			return validationError(fields)
		}
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: id, PutCustomer: &reseller.Customer{Name: body.Name, Export: body.Export}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleGetCustomer(c echo.Context) error {
	id, err := customerFor(c, false)
	if err != nil {
		return err
	}
	period, err := s.periodParam(c)
	if err != nil {
		return err
	}
	if s.records != nil {
		v, err := s.records.View(c.Request().Context(), id, period.String())
		if err != nil {
			return recordsError(err)
		}
		return c.JSON(http.StatusOK, v)
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: id, GetCustomer: &customerops.PeriodRead{Period: period}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleSetAccounts(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	var req struct {
		EffectiveFrom string                      `json:"effective_from"`
		Payers        []customerops.PayerAccounts `json:"payers"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	ch := customerops.AccountsChange{Payers: req.Payers}
	fields := map[string]string{}
	if ch.EffectiveFrom, err = period.Parse(req.EffectiveFrom); err != nil {
		fields["effective_from"] = "required: the first billing period, YYYY-MM"
	}
	for i, p := range ch.Payers {
		if !payer.ValidAccountID(p.PayerAccountID) {
			fields[fmt.Sprintf("payers[%d].payer_account_id", i)] = "a 12-digit AWS account ID"
		}
		for _, a := range p.Accounts {
			if a != "*" && !payer.ValidAccountID(a) {
				fields[fmt.Sprintf("payers[%d].accounts", i)] = fmt.Sprintf("%q is neither a 12-digit account ID nor \"*\" (the whole payer)", a)
			}
		}
	}
	if len(fields) > 0 {
		return validationError(fields)
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: id, SetAccounts: &ch})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handlePutPricebook(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	raw, err := rawBody(c)
	if err != nil {
		return err
	}
	// Validated here for field errors; the worker validates again.
	if _, err := pricing.Decode(raw); err != nil {
		var ve *pricing.ValidationError
		if errors.As(err, &ve) {
			fields := map[string]string{}
			for _, p := range ve.Problems {
				fields[p.Field] = p.Problem
			}
			return validationError(fields)
		}
		return validationError(map[string]string{"body": err.Error()})
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: id, PutPricebook: &customerops.PricebookChange{Document: raw}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleGetPricebook(c echo.Context) error {
	id, err := customerFor(c, false)
	if err != nil {
		return err
	}
	if k := principal(c); k.CustomerID != "" {
		return errorf(kindForbidden, "pricebooks are the reseller's; customer-scoped keys may not read them")
	}
	period, err := s.periodParam(c)
	if err != nil {
		return err
	}
	if s.records != nil {
		pv, err := s.records.PricebookFor(c.Request().Context(), id, period.String())
		if err != nil {
			return recordsError(err)
		}
		return c.JSON(http.StatusOK, pv)
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: id, GetPricebook: &customerops.PeriodRead{Period: period}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// handleVerifyExport writes and removes a probe object at a destination
// and says which permission is missing when it cannot.
func (s *Server) handleVerifyExport(c echo.Context) error {
	var d reseller.Destination
	if err := decodeStrict(c, &d); err != nil {
		return err
	}
	if loc, err := blob.ParseLocation(d.URL); err != nil || loc.Scheme == "file" {
		return validationError(map[string]string{"url": "s3://bucket/prefix or gs://bucket/prefix"})
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: "verify", VerifyExport: &d})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// handleUnassigned reports usage of accounts no customer owns.
func (s *Server) handleUnassigned(c echo.Context) error {
	period, err := s.periodParam(c)
	if err != nil {
		return err
	}
	out, err := s.customerOp(c, customerops.Request{CustomerID: "reports", UnassignedCost: &customerops.PeriodRead{Period: period}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
