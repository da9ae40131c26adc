package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/maintain"
)

// MaintainTables keeps every billing table cheap to commit to and to scan
// however long its history: one activity per table merges manifests,
// expires snapshots older than the retention except those closed cycles
// pin, and removes orphan files. Tables are maintained one after another
// so the catalog sees one maintenance commit at a time; a table that
// fails is retried on its own and does not hold up the others' results.
func MaintainTables(ctx workflow.Context, in maintain.Input) (maintain.Result, error) {
	res := maintain.Result{Tables: []maintain.TableResult{}}
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var tables []string
	if err := maintain.Tables.Execute(short, struct{}{}).Get(ctx, &tables); err != nil {
		return res, err
	}
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Orphan listing and expiry's file removal walk the table's
		// files; large warehouses take a while.
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Second, MaximumAttempts: 5},
	})
	var failed error
	for _, t := range tables {
		var r maintain.TableResult
		if err := maintain.MaintainTable.Execute(long, maintain.TableInput{Table: t, Input: in}).Get(ctx, &r); err != nil {
			workflow.GetLogger(ctx).Error("table maintenance failed", "table", t, "error", err)
			if failed == nil {
				failed = err
			}
			continue
		}
		res.Tables = append(res.Tables, r)
	}
	return res, failed
}
