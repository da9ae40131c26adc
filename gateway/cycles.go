package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/cycle"
	"github.com/costlake/costlake/workflows"
)

// CycleResponse is a billing cycle's workflow and, once closed, its result.
type CycleResponse struct {
	WorkflowID string                             `json:"workflow_id"`
	Status     string                             `json:"status"`
	Progress   any                                `json:"progress,omitempty"`
	Result     *workflows.CloseBillingCycleResult `json:"result,omitempty"`
	Failure    string                             `json:"failure,omitempty"`
}

// handleCloseCycle starts closing a customer's billing cycle; it waits
// until the period is final, then freezes, prices and exports it.
func (s *Server) handleCloseCycle(c echo.Context) error {
	id, err := customerFor(c, true)
	if err != nil {
		return err
	}
	period := c.Param("period")
	if !cycle.ValidPeriod(period) {
		return validationError(map[string]string{"period": "YYYY-MM"})
	}
	var req struct {
		FinalAfterDays int `json:"final_after_days,omitempty"`
	}
	if err := decodeOptional(c, &req); err != nil {
		return err
	}
	if req.FinalAfterDays < 0 || req.FinalAfterDays > 60 {
		return validationError(map[string]string{"final_after_days": "between 0 and 60 (0: the default of 5)"})
	}
	run, err := workflows.StartCycleClose(c.Request().Context(), s.temporal, workflows.CloseBillingCycleInput{CustomerID: id, Period: period, FinalAfterDays: req.FinalAfterDays})
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
	period := c.Param("period")
	if !cycle.ValidPeriod(period) {
		return validationError(map[string]string{"period": "YYYY-MM"})
	}
	ctx := c.Request().Context()
	wid := workflows.CycleWorkflowID(id, period)
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, wid, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &apiError{status: http.StatusNotFound, body: Error{Code: "not_found", Message: fmt.Sprintf("customer %s's cycle %s was never closed", id, period)}}
	}
	if err != nil {
		return err
	}
	info := desc.GetWorkflowExecutionInfo()
	resp := CycleResponse{WorkflowID: wid, Status: statusName(info.GetStatus())}
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
	return c.JSON(http.StatusOK, resp)
}

// handleResellerExport starts the reseller-wide export of a period.
func (s *Server) handleResellerExport(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	if err := requireUnscoped(c); err != nil {
		return err
	}
	var in workflows.ExportResellerPeriodInput
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	fields := map[string]string{}
	if !cycle.ValidPeriod(in.Period) {
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
	return c.JSON(http.StatusAccepted, map[string]string{"workflow_id": run.GetID(), "run_id": run.GetRunID(), "status": "running"})
}
