package tests

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/workflows"
)

// TestRegistrationOnAWorkerWithoutTheUpdate: during a rolling upgrade a
// worker from before the registration update runs the onboarding and
// rejects the update it does not know. The onboarding has started, so the
// registration stands: 201 with a note, not a 500, and registering again
// is a conflict.
func TestRegistrationOnAWorkerWithoutTheUpdate(t *testing.T) {
	ts := newTemporal(t)
	c := ts.GetDefaultClient()
	// The old worker's OnboardPayer: no "registration" update handler.
	old := func(ctx workflow.Context, _ workflows.OnboardPayerInput) error {
		return workflow.Await(ctx, func() bool { return false })
	}
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) {
		r.RegisterWorkflowWithOptions(old, workflow.RegisterOptions{Name: "OnboardPayer"})
	}, sdkworker.Options{})
	keys, operator, _, _ := testKeys()
	srv := httptest.NewServer(validatingGateway(t, gateway.New(c, slog.New(slog.NewTextHandler(io.Discard, nil)), gateway.Config{Keys: keys})))
	t.Cleanup(srv.Close)
	api := apiClient{t: t, base: srv.URL, key: operator}

	const payerID = "141987654321"
	var created map[string]string
	require.Equal(t, http.StatusCreated, api.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), &created))
	require.Equal(t, workflows.OnboardingWorkflowID(payerID), created["workflow_id"])
	require.NotEmpty(t, created["run_id"])
	require.Contains(t, created["note"], "did not answer the registration")
	require.Equal(t, http.StatusConflict, api.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), nil))
}
