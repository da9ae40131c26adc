package worker

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/searchattr"
)

// DefaultMaintenanceHour is the UTC hour the MaintainTables schedule runs
// at each day, away from midnight, when AWS delivers and crawls start.
const DefaultMaintenanceHour = 3

// EnsureMaintenanceSchedule makes sure the MaintainTables schedule exists:
// daily at hour (UTC), one run at a time, with in's settings. Every worker
// calls it at start; the first creates the schedule and the others find
// it, so a deployment needs no step of its own, and no CronJob: Temporal
// schedules the work. A schedule an operator changed (paused, another
// time) is left as it is.
func EnsureMaintenanceSchedule(ctx context.Context, c client.Client, hour int, in maintain.Input) error {
	if hour < 0 || hour > 23 {
		return fmt.Errorf("maintenance hour %d: want 0 to 23", hour)
	}
	return ensureSchedule(ctx, c, client.ScheduleOptions{
		ID: maintain.ScheduleID,
		Spec: client.ScheduleSpec{
			Calendars: []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: hour}}}},
			Jitter:    30 * time.Minute,
		},
		Note: "costlake table maintenance: merges manifests, expires snapshots older than the retention except those closed cycles pin, removes orphan files",
	}, &client.ScheduleWorkflowAction{
		ID: maintain.WorkflowID, Workflow: maintain.Workflow, Args: []any{in},
		TypedSearchAttributes: searchattr.Run{Kind: searchattr.KindMaintenance}.Attributes(),
		StaticSummary:         "table maintenance: manifests, expired snapshots, orphans",
	})
}
