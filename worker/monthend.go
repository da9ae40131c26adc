package worker

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/searchattr"
)

// DefaultMonthEndHour is the UTC hour the MonthEnd schedule runs at each
// day: after the night's crawls, so the freshness guard sees them.
const DefaultMonthEndHour = 6

// EnsureMonthEndSchedule makes sure the reseller's MonthEnd schedule
// exists: daily at hour (UTC), one run at a time, closing last month's
// cycles that may close. After the 1st, runs close what is final and
// fresh; once every cycle of last month is closed a run only reads the
// records, until the next month ends. Like the maintenance schedule,
// every worker calls it at start and the first creates it; one an
// operator changed (paused, another hour, other settings) is left as it
// is.
func EnsureMonthEndSchedule(ctx context.Context, c client.Client, hour int, in monthend.Input) error {
	if hour < 0 || hour > 23 {
		return fmt.Errorf("month-end hour %d: want 0 to 23", hour)
	}
	if f := in.Settings.FieldErrors(); len(f) > 0 {
		return fmt.Errorf("month-end settings: %s", monthend.Describe(f))
	}
	return ensureSchedule(ctx, c, client.ScheduleOptions{
		ID: monthend.ScheduleID,
		Spec: client.ScheduleSpec{
			// After the 1st: on the 1st last month has barely ended.
			Calendars: []client.ScheduleCalendarSpec{{DayOfMonth: []client.ScheduleRange{{Start: 2, End: 31}}, Hour: []client.ScheduleRange{{Start: hour}}}},
		},
		Note: "costlake month-end: closes each customer's cycle of last month once it is final, its payers are freshly crawled and Cost Explorer agrees; announces it by webhook",
	}, &client.ScheduleWorkflowAction{
		ID: monthend.ScheduleID, Workflow: monthend.Workflow, Args: []any{in},
		TypedSearchAttributes: searchattr.Run{Kind: searchattr.KindMonthEnd}.Attributes(),
		StaticSummary:         "month-end: close last month's cycles that are final and fresh",
	})
}
