package harness

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func greet(ctx workflow.Context, name string) (string, error) { return "hello " + name, nil }

// The Temporal server process on PostgreSQL runs a workflow, and its SQL
// visibility lists the workflow as completed.
func TestTemporalOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a Temporal server process")
	}
	pg, err := StartPostgres()
	if errors.Is(err, ErrNoPostgres) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	srv := StartTemporalOnPostgres(t, pg)

	c, err := client.Dial(client.Options{HostPort: srv.HostPort, Namespace: srv.Namespace, Logger: silentLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, "harness", worker.Options{})
	w.RegisterWorkflow(greet)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet", TaskQueue: "harness"}, greet, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello postgres" {
		t.Fatalf("workflow: %q, %v", got, err)
	}
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: srv.Namespace, Query: `WorkflowId = "greet" AND ExecutionStatus = "Completed"`})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("visibility never listed the completed workflow")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
