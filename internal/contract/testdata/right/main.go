// Command right calls and registers an activity with the types its handle
// declares; it must compile (see TestWrongTypesDoNotCompile).
package main

import (
	"context"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract"
)

type in struct{ Period string }
type out struct{ Rows int64 }

var count = contract.Activity[in, out]("Count")

func impl(context.Context, in) (out, error) { return out{}, nil }

func run(ctx workflow.Context) (int64, error) {
	var res out
	err := count.Execute(ctx, in{Period: "2026-09"}).Get(ctx, &res)
	return res.Rows, err
}

func register(r worker.ActivityRegistry) { count.Register(r, impl) }

func main() { _, _ = run, register }
