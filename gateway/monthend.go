package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/webhook"
	"github.com/costlake/costlake/workflows"
)

// monthEndOp runs a MonthEndRequest and waits for its answer; the worker
// checks the request again with its own rules (which webhook addresses
// it may reach).
func (s *Server) monthEndOp(c echo.Context, r monthend.Request) (monthend.Answer, error) {
	r.By = principal(c).Name
	// The gateway checks shape only: whether a private address is
	// allowed is the worker's setting.
	if f := r.FieldErrors(webhook.Sender{AllowPrivate: true}); len(f) > 0 {
		return monthend.Answer{}, validationError(f)
	}
	ctx := c.Request().Context()
	run, err := s.temporal.ExecuteWorkflow(ctx, workflows.MonthEndRequestStartOptions(r), monthend.RequestWorkflow, r)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return monthend.Answer{}, errorf(kindConflict, "another month-end change is running; try again")
	}
	if err != nil {
		return monthend.Answer{}, err
	}
	var out monthend.Answer
	if err := run.Get(ctx, &out); err != nil {
		if ae := failureError(err); ae != nil {
			return out, ae
		}
		return out, err
	}
	return out, nil
}

// HoldRequest is the body of POST /v1/customers/{id}/hold.
type HoldRequest struct {
	Reason string `json:"reason"`
}

// handleHold holds a customer: month-end leaves its cycles open and
// announces cycle.blocked with the reason.
func (s *Server) handleHold(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	var req HoldRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	out, err := s.monthEndOp(c, monthend.Request{Hold: &reseller.Hold{CustomerID: id, Reason: req.Reason}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out.Hold)
}

// handleRelease lifts a customer's hold.
func (s *Server) handleRelease(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	out, err := s.monthEndOp(c, monthend.Request{Release: id})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out.Hold)
}

// AcceptDifferenceRequest is the body of POST
// /v1/customers/{id}/cycles/{period}/accept-difference.
type AcceptDifferenceRequest struct {
	PayerAccountID string `json:"payer_account_id"`
	Reason         string `json:"reason"`
}

// handleAcceptDifference records that an operator accepts the difference
// between a payer's line items and Cost Explorer for the customer's
// period: the month-end close goes ahead with the line items.
func (s *Server) handleAcceptDifference(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	p, err := periodPath(c)
	if err != nil {
		return err
	}
	var req AcceptDifferenceRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if !payer.ValidAccountID(req.PayerAccountID) {
		return validationError(map[string]string{"payer_account_id": "required: the 12-digit payer account whose difference is accepted"})
	}
	out, err := s.monthEndOp(c, monthend.Request{Accept: &reseller.Acceptance{CustomerID: id, Period: p.String(), PayerAccountID: req.PayerAccountID, Reason: req.Reason}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out.Acceptance)
}

// WebhookRequest is the body of PUT /v1/webhook.
type WebhookRequest struct {
	URL       string   `json:"url"`
	SecretRef string   `json:"secret_ref"`
	Events    []string `json:"events,omitempty"`
}

func (s *Server) handlePutWebhook(c echo.Context) error {
	var req WebhookRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	out, err := s.monthEndOp(c, monthend.Request{PutWebhook: &reseller.Webhook{URL: req.URL, SecretRef: req.SecretRef, Events: req.Events}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out.Webhook)
}

func (s *Server) handleDeleteWebhook(c echo.Context) error {
	if _, err := s.monthEndOp(c, monthend.Request{DeleteWebhook: true}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// MonthEndRequest is the body of POST /v1/month-end.
type MonthEndRequest struct {
	// Period defaults to the month before the business date.
	Period string `json:"period,omitempty"`
}

// MonthEndStarted answers POST /v1/month-end.
type MonthEndStarted struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Period     string `json:"period"`
	Status     string `json:"status"` // "running"
}

// monthEndSettings are the month-end schedule's settings (the workers'
// flags when they created it, or an operator's change), so a run now
// judges as the daily runs do; the defaults when there is no schedule.
func (s *Server) monthEndSettings(c echo.Context) monthend.Input {
	var in monthend.Input
	d, err := s.temporal.ScheduleClient().GetHandle(c.Request().Context(), monthend.ScheduleID).Describe(c.Request().Context())
	if err != nil || d.Schedule.Action == nil {
		return in
	}
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || len(act.Args) == 0 {
		return in
	}
	if p, ok := act.Args[0].(*commonpb.Payload); ok {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
			return monthend.Input{}
		}
	}
	return in
}

// handleRunMonthEnd runs month-end now with the schedule's settings:
// what the daily schedule does, for an operator who will not wait for
// tomorrow.
func (s *Server) handleRunMonthEnd(c echo.Context) error {
	var req MonthEndRequest
	if err := decodeOptional(c, &req); err != nil {
		return err
	}
	p := period.Of(s.clock.Now()).Prev()
	if req.Period != "" {
		var err error
		if p, err = period.Parse(req.Period); err != nil {
			return validationError(map[string]string{"period": "YYYY-MM"})
		}
	}
	in := s.monthEndSettings(c)
	in.Period = p
	run, err := workflows.StartMonthEnd(c.Request().Context(), s.temporal, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, MonthEndStarted{WorkflowID: run.GetID(), RunID: run.GetRunID(), Period: p.String(), Status: "running"})
}
