package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/workflows"
)

// maxBackfillPeriods bounds one backfill: three years of months.
const maxBackfillPeriods = 36

// activePayer returns a visible payer that is active, or a conflict.
func (s *Server) activePayer(c echo.Context) (string, workflows.OnboardingState, error) {
	rec, err := s.visiblePayer(c)
	if err != nil {
		return rec.ID, rec.State, err
	}
	if rec.State.Status != workflows.StatusActive {
		return rec.ID, rec.State, errorf(kindConflict, "payer %s is %s, not active", rec.ID, rec.State.Status)
	}
	return rec.ID, rec.State, nil
}

// scheduledPayer is an active payer with a crawl schedule.
func (s *Server) scheduledPayer(c echo.Context) (string, error) {
	id, st, err := s.activePayer(c)
	if err == nil && st.CrawlSchedule == "" {
		err = errorf(kindConflict, "payer %s has no crawl schedule: %s", id, st.ScheduleError)
	}
	return id, err
}

// handleCrawl runs the payer's scheduled crawl now; the schedule's overlap
// policy skips it when a crawl is already running.
func (s *Server) handleCrawl(c echo.Context) error {
	id, err := s.scheduledPayer(c)
	if err != nil {
		return err
	}
	sid := workflows.CrawlScheduleID(id)
	if err := s.temporal.ScheduleClient().GetHandle(c.Request().Context(), sid).Trigger(c.Request().Context(), client.ScheduleTriggerOptions{}); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, CrawlAccepted{ID: id, ScheduleID: sid, Accepted: "crawl"})
}

// CrawlAccepted answers POST /v1/payers/{id}/crawl.
type CrawlAccepted struct {
	ID         string `json:"id"`
	ScheduleID string `json:"schedule_id"`
	Accepted   string `json:"accepted"` // "crawl"
}

// BackfillAccepted answers POST /v1/payers/{id}/backfill.
type BackfillAccepted struct {
	ID         string          `json:"id"`
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	Periods    []period.Period `json:"periods"`
}

// ScheduleState answers POST /v1/payers/{id}/pause and /resume.
type ScheduleState struct {
	ID     string `json:"id"`
	Paused bool   `json:"paused"`
}

// RunsResponse answers GET /v1/payers/{id}/runs: a page of runs, newest
// first, as every list answers (items, next_cursor). Runs repeats Items
// for clients of the route before it had pages.
type RunsResponse struct {
	ID         string    `json:"id"`
	Items      []RunView `json:"items"`
	NextCursor string    `json:"next_cursor,omitempty"`
	Runs       []RunView `json:"runs"`
}

// BackfillRequest is the body of POST /v1/payers/{id}/backfill.
type BackfillRequest struct {
	From string `json:"from"` // YYYY-MM
	To   string `json:"to"`   // YYYY-MM, inclusive
}

func (s *Server) handleBackfill(c echo.Context) error {
	var req BackfillRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	periods, err := workflows.PeriodRange(req.From, req.To, maxBackfillPeriods)
	if err != nil {
		return validationError(map[string]string{"from": "from and to are periods YYYY-MM, from ≤ to, at most 36 apart: " + err.Error()})
	}
	id, st, err := s.activePayer(c)
	if err != nil {
		return err
	}
	in := workflows.CrawlInputFor(st)
	in.Periods = periods
	opts := workflows.BackfillStartOptions(id, in.CustomerID, req.From, req.To)
	run, err := s.temporal.ExecuteWorkflow(c.Request().Context(), opts, workflows.CrawlPayer, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, BackfillAccepted{ID: id, WorkflowID: opts.ID, RunID: run.GetRunID(), Periods: periods})
}

// scheduleAction pauses or resumes the payer's crawl schedule.
func (s *Server) scheduleAction(pause bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := s.scheduledPayer(c)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		h := s.temporal.ScheduleClient().GetHandle(ctx, workflows.CrawlScheduleID(id))
		note := fmt.Sprintf("by %s through the gateway", principal(c).Name)
		if pause {
			err = h.Pause(ctx, client.SchedulePauseOptions{Note: "paused " + note})
		} else {
			err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "resumed " + note})
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ScheduleState{ID: id, Paused: pause})
	}
}

// ScheduleView is the crawl schedule as GET /v1/payers/{id} shows it.
type ScheduleView struct {
	ID          string      `json:"id"`
	Paused      bool        `json:"paused"`
	Note        string      `json:"note,omitempty"`
	NextRuns    []time.Time `json:"next_runs,omitempty"`
	Crawls      int         `json:"crawls"`
	Skipped     int         `json:"skipped_overlap"`
	RunningNow  int         `json:"running_now"`
	LastStarted *time.Time  `json:"last_started,omitempty"`
}

func (s *Server) scheduleView(c echo.Context, id string) (*ScheduleView, error) {
	ctx := c.Request().Context()
	sid := workflows.CrawlScheduleID(id)
	d, err := s.temporal.ScheduleClient().GetHandle(ctx, sid).Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := &ScheduleView{ID: sid, Paused: d.Schedule.State.Paused, Note: d.Schedule.State.Note, NextRuns: d.Info.NextActionTimes,
		Crawls: d.Info.NumActions, Skipped: d.Info.NumActionsSkippedOverlap, RunningNow: len(d.Info.RunningWorkflows)}
	if n := len(d.Info.RecentActions); n > 0 {
		t := d.Info.RecentActions[n-1].ActualTime
		v.LastStarted = &t
	}
	return v, nil
}

// RunView is one crawl or backfill of a payer.
type RunView struct {
	WorkflowID string                      `json:"workflow_id"`
	RunID      string                      `json:"run_id"`
	Status     string                      `json:"status"`
	Started    time.Time                   `json:"started"`
	Closed     *time.Time                  `json:"closed,omitempty"`
	Result     *workflows.CrawlPayerResult `json:"result,omitempty"`
	Failure    string                      `json:"failure,omitempty"`
}

// handleRuns lists the payer's recent crawls and backfills, newest first,
// with what each found and did.
//
// Pages (limit, cursor) are Temporal's: the cursor carries visibility's
// next page token, bound to this payer's registration (its activation),
// so a cursor of another payer, or of the payer's previous registration,
// is refused.
func (s *Server) handleRuns(c echo.Context) error {
	limit, err := pageSize(c)
	if err != nil {
		return err
	}
	rec, err := s.visiblePayer(c)
	if err != nil {
		return err
	}
	id := rec.ID
	since := rec.State.ActivatedAt.UTC().Format(time.RFC3339Nano)
	cur, err := pageCursor(c, "runs", id+"@"+since, func(string) bool { return false })
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	// Only this registration's runs: a payer registered again (perhaps for
	// another customer) does not show its predecessor's.
	query := fmt.Sprintf("WorkflowType = 'CrawlPayer' AND (WorkflowId STARTS_WITH '%s' OR WorkflowId STARTS_WITH '%s') AND StartTime >= '%s'",
		workflows.CrawlScheduleID(id)+"-", "backfill/"+id+"/", since)
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: int32(limit), NextPageToken: cur.Token})
	if isInvalidArgument(err) && len(cur.Token) > 0 {
		return errCursor()
	}
	if err != nil {
		return err
	}
	runs := []RunView{}
	for _, e := range resp.GetExecutions() {
		r := RunView{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Status: statusName(e.GetStatus()), Started: e.GetStartTime().AsTime()}
		if e.GetCloseTime() != nil {
			t := e.GetCloseTime().AsTime()
			r.Closed = &t
		}
		switch e.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			var res workflows.CrawlPayerResult
			if err := s.temporal.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res); err == nil {
				r.Result = &res
			}
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		default:
			if err := s.temporal.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, nil); err != nil {
				r.Failure = rootCause(err).Error()
				// A failed crawl carries its outcomes as the failure's details.
				var app *temporal.ApplicationError
				var res workflows.CrawlPayerResult
				if errors.As(err, &app) && app.HasDetails() && app.Details(&res) == nil {
					r.Result = &res
				}
			}
		}
		runs = append(runs, r)
	}
	out := RunsResponse{ID: id, Items: runs, Runs: runs}
	if t := resp.GetNextPageToken(); len(t) > 0 {
		out.NextCursor = cursor{List: "runs", Filter: id + "@" + since, Token: t}.String()
	}
	return c.JSON(http.StatusOK, out)
}

// handleOffboard removes a payer: its schedule goes, its data stays.
func (s *Server) handleOffboard(c echo.Context) error {
	var req ActionRequest
	if err := decodeOptional(c, &req); err != nil {
		return err
	}
	rec, err := s.visiblePayer(c)
	if err != nil {
		return err
	}
	return s.decidePayer(c, rec, workflows.OffboardSignal, workflows.Decision{By: principal(c).Name, Reason: req.Reason})
}
