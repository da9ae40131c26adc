package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/workflows"
)

// A stopping worker lets its running activity finish its step, with a
// live context, before Stop returns: a SIGTERM does not cut off work.
func TestStopDrainsRunningActivities(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	w := New(c, activities.Config{}, Options{})

	running := make(chan struct{})
	var finished atomic.Bool
	var ctxErr atomic.Value
	w.RegisterActivityWithOptions(func(ctx context.Context) error {
		close(running)
		<-activity.GetWorkerStopChannel(ctx)
		time.Sleep(100 * time.Millisecond) // the rest of the step, after the stop began
		ctxErr.Store(struct{ err error }{ctx.Err()})
		finished.Store(true)
		return nil
	}, activity.RegisterOptions{Name: "DrainStep"})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		return workflow.ExecuteActivity(ctx, "DrainStep").Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "DrainWorkflow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "drain", TaskQueue: workflows.TaskQueue}, "DrainWorkflow"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the activity never started")
	}
	w.Stop()
	if !finished.Load() {
		t.Fatal("Stop returned while an activity was still running")
	}
	if err := ctxErr.Load().(struct{ err error }).err; err != nil {
		t.Fatalf("the activity's context was cancelled before it finished: %v", err)
	}
}
