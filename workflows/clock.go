package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract"
)

// businessNow is the date the workflow judges billing periods by: the
// worker's business clock (see package clock), read through a local
// activity so the value is in history and a replay sees the same date.
// Waiting stays on Temporal's timers.
func businessNow(ctx workflow.Context) time.Time {
	if workflow.GetVersion(ctx, businessClockChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return workflow.Now(ctx).UTC()
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{ScheduleToCloseTimeout: 30 * time.Second})
	var now time.Time
	if err := contract.BusinessNow.Execute(lctx).Get(ctx, &now); err != nil {
		// The error is in history too, so this fallback replays the same.
		workflow.GetLogger(ctx).Warn("business clock unavailable; using workflow time", "error", err)
		return workflow.Now(ctx).UTC()
	}
	return now.UTC()
}
