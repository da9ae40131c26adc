package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/workflows"
)

// ensureSchedule creates one of costlake's own schedules unless it
// exists: one run at a time, on costlake's task queue, a run at most 23
// hours. Every worker calls it at start and the first creates it; one an
// operator changed (paused, another time, other settings) is left as it
// is.
func ensureSchedule(ctx context.Context, c client.Client, o client.ScheduleOptions, action *client.ScheduleWorkflowAction) error {
	action.TaskQueue = workflows.TaskQueue
	action.WorkflowExecutionTimeout = 23 * time.Hour
	o.Action, o.Overlap = action, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
	_, err := c.ScheduleClient().Create(ctx, o)
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create the %s schedule: %w", o.ID, err)
	}
	return nil
}
