// Package contract types the calls between workflows and activities. Each
// workflow's contract is a package below this one (contract/ingest,
// onboard, crawl, cycle, customerops): names, inputs, results and failure
// types, free of logic. It declares each activity as a handle, Activity[In, Out] or
// Action[In], from its name; the workflow calls the handle and the worker
// registers the implementation through it. A wrong input, result or
// implementation type then fails to compile instead of failing a
// workflow at run time.
package contract

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Activity is an activity taking In and answering Out, by its name.
type Activity[In, Out any] string

// Name is the activity's registered name.
func (a Activity[In, Out]) Name() string { return string(a) }

// Execute schedules the activity with ctx's activity options, as
// workflow.ExecuteActivity does, and returns its typed future.
func (a Activity[In, Out]) Execute(ctx workflow.Context, in In) Future[Out] {
	return Future[Out]{workflow.ExecuteActivity(ctx, string(a), in)}
}

// Register registers fn as the activity's implementation.
func (a Activity[In, Out]) Register(r worker.ActivityRegistry, fn func(context.Context, In) (Out, error)) {
	r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: string(a)})
}

// Action is an activity taking In and answering nothing but its error.
type Action[In any] string

// Name is the activity's registered name.
func (a Action[In]) Name() string { return string(a) }

// Execute schedules the activity; its future's Get takes nil.
func (a Action[In]) Execute(ctx workflow.Context, in In) Future[struct{}] {
	return Future[struct{}]{workflow.ExecuteActivity(ctx, string(a), in)}
}

// Register registers fn as the activity's implementation.
func (a Action[In]) Register(r worker.ActivityRegistry, fn func(context.Context, In) error) {
	r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: string(a)})
}

// LocalActivity is a local activity taking no input and answering Out.
type LocalActivity[Out any] string

// Name is the local activity's registered name.
func (a LocalActivity[Out]) Name() string { return string(a) }

// Execute schedules the local activity with ctx's local activity options.
func (a LocalActivity[Out]) Execute(ctx workflow.Context) Future[Out] {
	return Future[Out]{workflow.ExecuteLocalActivity(ctx, string(a))}
}

// Register registers fn as the local activity's implementation (local
// activities run on the worker that runs the workflow, which registers
// them as activities too).
func (a LocalActivity[Out]) Register(r worker.ActivityRegistry, fn func(context.Context) (Out, error)) {
	r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: string(a)})
}

// Future is an activity's pending result.
type Future[Out any] struct{ f workflow.Future }

// Get waits for the result and stores it in out, which may be nil when
// only the error matters.
func (f Future[Out]) Get(ctx workflow.Context, out *Out) error {
	if out == nil {
		return f.f.Get(ctx, nil)
	}
	return f.f.Get(ctx, out)
}

// IsReady reports whether the result is in.
func (f Future[Out]) IsReady() bool { return f.f.IsReady() }

// Underlying is the untyped future, for a workflow.Selector.
func (f Future[Out]) Underlying() workflow.Future { return f.f }

// BusinessNow is the local activity that answers the worker's business
// clock (package clock), so a workflow's idea of "today" is in history.
var BusinessNow = LocalActivity[time.Time]("BusinessNow")
