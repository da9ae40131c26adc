package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/rebilling"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/workflows"
)

// CycleResponse is a billing cycle's workflow and, once closed, its result.
type CycleResponse struct {
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
	// Source is "records" when the answer comes from the reseller's
	// records (the closing run is no longer retained), else "workflow".
	Source   string                             `json:"source,omitempty"`
	Progress any                                `json:"progress,omitempty"`
	Result   *workflows.CloseBillingCycleResult `json:"result,omitempty"`
	Failure  string                             `json:"failure,omitempty"`
}

// CustomerCycleResponse is what a customer-scoped key reads of its own
// cycle: its resale figures only, never the reseller's cost or margin.
type CustomerCycleResponse struct {
	WorkflowID string               `json:"workflow_id"`
	Status     string               `json:"status"`
	Source     string               `json:"source,omitempty"`
	Progress   any                  `json:"progress,omitempty"`
	Result     *CustomerCycleResult `json:"result,omitempty"`
	Failure    string               `json:"failure,omitempty"`
}

// CustomerCycleResult is a closed cycle as its customer sees it.
type CustomerCycleResult struct {
	CustomerID       string         `json:"customer_id"`
	Period           period.Period  `json:"period"`
	PricebookVersion int            `json:"pricebook_version"`
	ClosedAt         string         `json:"closed_at"`
	Bill             CustomerBill   `json:"bill"`
	Rows             int64          `json:"rows"`
	Exports          []CustomerFile `json:"exports"`
}

// CustomerBill is a bill without its cost: what the customer is charged.
type CustomerBill struct {
	Period       string         `json:"period"`
	Currency     string         `json:"currency,omitempty"`
	Lines        []CustomerLine `json:"lines"`
	Total        money.Amount   `json:"total"`
	Due          money.Amount   `json:"due"`
	UnusedCredit money.Amount   `json:"unused_credit"`
}

// CustomerLine is a bill line without its cost.
type CustomerLine struct {
	Kind        pricing.LineKind `json:"kind"`
	Description string           `json:"description"`
	LineItems   int64            `json:"line_items,omitzero"`
	Amount      money.Amount     `json:"amount"`
	Base        money.Amount     `json:"base,omitzero"` // resale the support fee is a percent of
	Unused      money.Amount     `json:"unused,omitzero"`
	// CorrectsPeriod is the closed period an adjustment corrects.
	CorrectsPeriod string `json:"corrects_period,omitempty"`
}

// CustomerFile is one export the cycle wrote to the customer: its
// manifest, and the sum as printed in it (the customer's own export).
type CustomerFile struct {
	URL            string       `json:"url"`
	PayerAccountID string       `json:"payer_account_id"`
	Mode           string       `json:"mode"`
	Files          int          `json:"files"`
	Rows           int64        `json:"rows"`
	UnblendedCost  money.Amount `json:"unblended_cost"` // as printed: the resale amount in an at_resale export
}

// customerView keeps of a cycle what its customer may see: the bill's
// amounts (never Cost, from which the reseller's margin would follow)
// and the customer's own exports. A copy, field by field, so a field
// added to the result later stays hidden until it is listed here.
func customerView(r CycleResponse) CustomerCycleResponse {
	out := CustomerCycleResponse{WorkflowID: r.WorkflowID, Status: r.Status, Source: r.Source, Progress: r.Progress, Failure: r.Failure}
	if res := r.Result; res != nil {
		v := &CustomerCycleResult{CustomerID: res.CustomerID, Period: res.Period, PricebookVersion: res.PricebookVersion,
			ClosedAt: res.ClosedAt, Rows: res.Rows, Exports: []CustomerFile{},
			Bill: CustomerBill{Period: res.Bill.Period, Currency: res.Bill.Currency, Lines: []CustomerLine{}, Total: res.Bill.Total, Due: res.Bill.Due, UnusedCredit: res.Bill.UnusedCredit}}
		for _, l := range res.Bill.Lines {
			v.Bill.Lines = append(v.Bill.Lines, CustomerLine{Kind: l.Kind, Description: l.Description, LineItems: l.LineItems, Amount: l.Amount, Base: l.Base, Unused: l.Unused, CorrectsPeriod: l.CorrectsPeriod})
		}
		for _, e := range res.Exports {
			if e.CustomerID == res.CustomerID {
				v.Exports = append(v.Exports, CustomerFile{URL: e.URL, PayerAccountID: e.PayerAccountID, Mode: e.Mode, Files: e.Files, Rows: e.Rows, UnblendedCost: e.UnblendedCost})
			}
		}
		out.Result = v
	}
	return out
}

// handleCloseCycle starts closing a customer's billing cycle; it waits
// until the period is final, then freezes, prices and exports it.
func (s *Server) handleCloseCycle(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	period, err := periodPath(c)
	if err != nil {
		return err
	}
	var req struct {
		FinalAfterDays int `json:"final_after_days,omitempty"`
		// Early closes now, without waiting for the period to be final.
		Early bool `json:"early,omitempty"`
	}
	if err := decodeOptional(c, &req); err != nil {
		return err
	}
	if req.FinalAfterDays < 0 || req.FinalAfterDays > 60 {
		return validationError(map[string]string{"final_after_days": "between 0 and 60 (0: the default of 10, final once the 10th has passed)"})
	}
	run, err := workflows.StartCycleClose(c.Request().Context(), s.temporal, workflows.CloseBillingCycleInput{CustomerID: id, Period: period, FinalAfterDays: req.FinalAfterDays, Early: req.Early})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, CycleResponse{WorkflowID: run.GetID(), Status: "running"})
}

func (s *Server) handleGetCycle(c echo.Context) error {
	id, err := customerFor(c, false)
	if err != nil {
		return err
	}
	period, err := periodPath(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	wid := workflows.CycleWorkflowID(id, period)
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, wid, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// Temporal no longer holds the run (or never did): the records
		// hold every closed cycle and its invoice.
		resp, err := s.cycleFromRecords(c, id, period)
		if err != nil {
			return err
		}
		if principal(c).CustomerID != "" {
			return c.JSON(http.StatusOK, customerView(resp))
		}
		return c.JSON(http.StatusOK, resp)
	}
	if err != nil {
		return err
	}
	info := desc.GetWorkflowExecutionInfo()
	resp := CycleResponse{WorkflowID: wid, Status: statusName(info.GetStatus()), Source: "workflow"}
	runID := info.GetExecution().GetRunId()
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		if v, err := s.temporal.QueryWorkflow(ctx, wid, runID, workflows.CycleStatusQuery); err == nil {
			var p any
			if v.Get(&p) == nil {
				resp.Progress = p
			}
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var r workflows.CloseBillingCycleResult
		if err := s.temporal.GetWorkflow(ctx, wid, runID).Get(ctx, &r); err != nil {
			return err
		}
		resp.Result = &r
	default:
		if err := s.temporal.GetWorkflow(ctx, wid, runID).Get(ctx, nil); err != nil {
			resp.Failure = rootCause(err).Error()
		}
	}
	if principal(c).CustomerID != "" {
		return c.JSON(http.StatusOK, customerView(resp))
	}
	return c.JSON(http.StatusOK, resp)
}

// cycleFromRecords answers a cycle from the reseller's records: closed,
// with the invoice it was charged (not found when it was never closed).
func (s *Server) cycleFromRecords(c echo.Context, id string, p period.Period) (CycleResponse, error) {
	never := errorf(kindNotFound, "customer %s's cycle %s was never closed", id, p)
	if s.records == nil {
		return CycleResponse{}, never
	}
	ctx := c.Request().Context()
	cy, err := s.records.CycleOf(ctx, id, p.String())
	if errors.Is(err, reseller.ErrNotFound) {
		return CycleResponse{}, never
	} else if err != nil {
		return CycleResponse{}, err
	}
	res := &workflows.CloseBillingCycleResult{CustomerID: id, Period: p, PricebookVersion: cy.PricebookVersion, Snapshots: cy.Snapshots,
		ClosedAt: cy.ClosedAt, AlreadyClosed: true, Exports: []cycle.ExportRef{}, ExportKeys: []string{}}
	resp := CycleResponse{WorkflowID: workflows.CycleWorkflowID(id, p), Status: "completed", Source: "records", Result: res}
	inv, err := s.records.InvoiceOf(ctx, id, p.String())
	switch {
	case errors.Is(err, reseller.ErrNotFound):
		// Frozen, and the run that was to price it is gone (or it was
		// priced before invoices were kept): closing again prices it.
		resp.Failure = "the cycle is closed but its invoice is not recorded: close it again to price and export it"
	case err != nil:
		return CycleResponse{}, err
	default:
		stored, err := rebilling.DecodeInvoice(inv)
		if err != nil {
			return CycleResponse{}, err
		}
		res.Bill, res.Rows = stored.Bill, stored.Rows
	}
	return resp, nil
}

// handleResellerExport starts the reseller-wide export of a period.
func (s *Server) handleResellerExport(c echo.Context) error {
	var req ResellerExportRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	in := workflows.ExportResellerPeriodInput{URL: req.URL, Access: req.Access, Gzip: req.Gzip, AllowOpenCycles: req.AllowOpenCycles}
	fields := map[string]string{}
	var err error
	if in.Period, err = period.Parse(req.Period); err != nil {
		fields["period"] = "YYYY-MM"
	}
	if _, err := blob.ParseLocation(in.URL); err != nil {
		fields["url"] = "s3://bucket/prefix, gs://bucket/prefix or file:///path"
	}
	if len(fields) > 0 {
		return validationError(fields)
	}
	run, err := workflows.StartResellerExport(c.Request().Context(), s.temporal, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, ExportStarted{WorkflowID: run.GetID(), RunID: run.GetRunID(), Status: "running"})
}

// ResellerExportRequest is the body of POST /v1/exports/reseller (see
// workflows.ExportResellerPeriodInput).
type ResellerExportRequest struct {
	Period          string        `json:"period"`
	URL             string        `json:"url"`
	Access          *payer.Access `json:"access,omitempty"`
	Gzip            bool          `json:"gzip,omitempty"`
	AllowOpenCycles bool          `json:"allow_open_cycles,omitempty"`
}

// ExportStarted answers POST /v1/exports/reseller.
type ExportStarted struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Status     string `json:"status"` // "running"
}
