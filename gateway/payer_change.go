package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/workflows"
)

// PayerChangeRequest is the body of PATCH /v1/payers/{id}: the fields it
// sends replace the registration's, the others stay. The fields a payer
// is registered by cannot change; they are named so that sending one is
// a clear refusal, not an unknown field.
type PayerChangeRequest struct {
	Name   *string       `json:"name,omitempty"`
	Export *payer.Export `json:"export,omitempty"`
	// CutoverFrom (YYYY-MM), with Export, is the first period taken from
	// the new export; earlier periods stay with the export it replaces.
	CutoverFrom       string          `json:"cutover_from,omitempty"`
	LinkedAccounts    *string         `json:"linked_accounts,omitempty"`
	ConnectedAccounts *[]string       `json:"connected_accounts,omitempty"`
	Schedule          *payer.Schedule `json:"schedule,omitempty"`

	CustomerID     json.RawMessage `json:"customer_id,omitempty"`
	PayerAccountID json.RawMessage `json:"payer_account_id,omitempty"`
	Access         json.RawMessage `json:"access,omitempty"`
	OIDC           json.RawMessage `json:"oidc,omitempty"`
	Cutover        json.RawMessage `json:"cutover,omitempty"`
}

// change is the request as the payer's workflow takes it, or the fields
// that are wrong before any registration is looked at.
func (r PayerChangeRequest) change() (payer.Change, map[string]string) {
	f := map[string]string{}
	fixed := map[string]json.RawMessage{"customer_id": r.CustomerID, "payer_account_id": r.PayerAccountID, "access": r.Access, "oidc": r.OIDC}
	for name, v := range fixed {
		if v != nil {
			f[name] = "cannot be changed: the payer's stack and role are deployed for it; offboard the payer and register it again"
		}
	}
	if r.Cutover != nil {
		f["cutover"] = "set by the change of the export: send export and cutover_from"
	}
	ch := payer.Change{Name: r.Name, Export: r.Export, LinkedAccounts: r.LinkedAccounts, ConnectedAccounts: r.ConnectedAccounts, Schedule: r.Schedule}
	if r.CutoverFrom != "" {
		p, err := period.Parse(r.CutoverFrom)
		if err != nil {
			f["cutover_from"] = "the first period taken from the new export, YYYY-MM: " + err.Error()
		}
		ch.CutoverFrom = p
	}
	return ch, f
}

// maxCutoverAhead bounds how far after the current period a cut-over may
// be set.
const maxCutoverAhead = 12

// PayerChanged answers PATCH /v1/payers/{id}.
type PayerChanged struct {
	ID           string             `json:"id"`
	Status       string             `json:"status"`
	Changed      []string           `json:"changed"`
	Registration payer.Registration `json:"registration"`
	// Applied is false when the worker accepted the change but had not
	// applied it within the wait; Note says so.
	Applied  bool          `json:"applied"`
	Note     string        `json:"note,omitempty"`
	Schedule *ScheduleView `json:"schedule,omitempty"`
}

// handleChangePayer changes a registration through the payer's workflow
// (ChangeRegistrationUpdate): its validator answers an invalid change
// (400, by field, as a registration's) or one the status refuses (409)
// in the same call, and the workflow applies it and updates the crawl
// schedule before it answers.
func (s *Server) handleChangePayer(c echo.Context) error {
	var req PayerChangeRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	ch, fields := req.change()
	// A cut-over years ahead would leave the new export unread for years:
	// most likely a typo of the year.
	if now := period.Of(s.clock.Now()); !ch.CutoverFrom.IsZero() && ch.CutoverFrom.MonthsSince(now) > maxCutoverAhead {
		fields["cutover_from"] = fmt.Sprintf("at most %d months after the current period %s", maxCutoverAhead, now)
	}
	if len(fields) > 0 {
		return validationError(fields)
	}
	rec, err := s.visiblePayer(c)
	if err != nil {
		return err
	}
	// The same check the workflow makes, so a bad change is answered by
	// field even when no worker runs.
	next, err := rec.State.CheckChange(ch)
	if err := changeError(err); err != nil {
		return err
	}
	ctx := c.Request().Context()
	actx, cancelAccept := context.WithTimeout(ctx, s.workerWait)
	defer cancelAccept()
	h, err := s.temporal.UpdateWorkflow(actx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.OnboardingWorkflowID(rec.ID), RunID: rec.RunID, UpdateName: workflows.ChangeRegistrationUpdate,
		Args: []any{workflows.RegistrationChange{By: principal(c).Name, Change: ch}}, WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return errorf(kindConflict, "cannot change payer %s: its onboarding has just ended", rec.ID)
	case unanswered(actx, ctx, err):
		return s.noWorker(rec.ID)
	case err != nil:
		return changeError(err)
	}
	wctx, cancel := context.WithTimeout(ctx, s.workerWait)
	defer cancel()
	var res workflows.ChangeResult
	err = h.Get(wctx, &res)
	out := PayerChanged{ID: rec.ID, Status: rec.State.Status, Changed: ch.Changed(), Registration: next}
	switch {
	case err == nil:
		out.Status, out.Changed, out.Registration, out.Applied = res.Status, res.Changed, res.Registration, true
	case wctx.Err() != nil && ctx.Err() == nil:
		out.Note = "the worker accepted the change and applies it once the step running ends; GET the payer to see it"
		return c.JSON(http.StatusAccepted, out)
	default:
		return changeError(err)
	}
	if res.Schedule != "" {
		if out.Schedule, err = s.scheduleView(c, rec.ID); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, out)
}

// changeError is the API error of a refused change: invalid fields 400,
// a status that refuses it 409, a worker that does not know changes 503.
func changeError(err error) error {
	var invalid *workflows.InvalidChangeError
	var refused *workflows.ChangeRefusedError
	var app *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return validationError(invalid.Fields)
	case errors.As(err, &refused):
		return errorf(kindConflict, "%s", refused.Reason)
	case errors.As(err, &app) && app.Type() == workflows.ErrTypeInvalidChange:
		var f map[string]string
		if app.Details(&f) == nil && len(f) > 0 {
			return validationError(f)
		}
		return &apiError{kind: kindInvalid, message: app.Message()}
	case errors.As(err, &app) && app.Type() == workflows.ErrTypeActionRefused:
		return errorf(kindConflict, "%s", app.Message())
	case errors.As(err, &app):
		// An update the worker does not know: a worker from before changes.
		return errorf(kindUnavailable, "the worker could not change the registration (%s); run workers of this version", app.Message())
	}
	return err
}
