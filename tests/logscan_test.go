package tests

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/workflows"
)

// TestLogsHoldNoSecrets runs a whole onboarding and first ingestion with
// every log line kept (gateway, audit, worker, workflows, activities, at
// debug level), the customer reminded while the stack is missing, and
// refused calls on the way, then scans the logs for every secret the run
// used: API keys, the ExternalId, costlake's AWS secret key, the temporary
// keys of the assumed role, and a catalog DSN's password.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs syncBuffer
	timing := fastTiming
	timing.RemindEvery = 300 * time.Millisecond
	e := newOnboardEnvLogging(t, timing, nil, &logs)
	const payerID = "210987654321"
	e.delivery("acme-cur", payerID)

	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), nil))
	p := e.waitStatus(payerID, workflows.StatusAwaitingStack)
	externalID := p.Registration.Access.ExternalID
	require.NotEmpty(t, externalID)
	require.Eventually(t, func() bool { _, p = e.state(e.operator, payerID); return p.Stack.Reminders >= 1 }, 30*time.Second, 100*time.Millisecond, "the customer is reminded")
	require.Equal(t, http.StatusUnauthorized, doJSON(t, "POST", e.operator.base+"/v1/payers/"+payerID+"/approve", "clk_unknown", "", nil))
	e.completeStack(payerID)
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, http.StatusForbidden, e.viewer.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	require.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, e.globex.do("POST", "/v1/payers/"+payerID+"/approve", "", nil), "a scoped key never decides")
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p = e.waitActive(payerID)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.IngestBillingPeriodResult
	require.NoError(t, e.client.GetWorkflow(ctx, p.FirstIngestion.WorkflowID, "").Get(ctx, &res))
	require.Positive(t, res.Rows)

	// A catalog that cannot be opened: its error is what the worker logs.
	const dsnPassword = "catalog-pw-5f2e9a"
	_, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: "postgres://costlake:" + dsnPassword + "@127.0.0.1:1/catalog?sslmode=disable", Warehouse: "file://" + t.TempDir()})
	require.Error(t, err)
	slog.New(slog.NewTextHandler(&logs, nil)).Error("worker failed", "error", err)

	out := logs.String()
	require.Contains(t, out, "waiting for the customer's stack", "the logs were captured")
	require.Contains(t, out, "127.0.0.1:1", "the catalog error was logged")
	secrets := map[string]string{
		"operator API key": e.operator.key, "viewer API key": e.viewer.key, "scoped API key": e.globex.key,
		"ExternalId": externalID, "costlake's AWS secret key": e.minio.SecretKey, "catalog password": dsnPassword,
	}
	for _, c := range append(e.emu.Calls("ListAccounts"), e.emu.Calls("DescribeStacks")...) {
		secrets["temporary access key "+c.AccessKeyID] = c.AccessKeyID
	}
	for what, s := range secrets {
		require.NotEmpty(t, s, what)
		for _, line := range strings.Split(out, "\n") {
			require.Falsef(t, strings.Contains(line, s), "the logs hold the %s: %.300s", what, strings.ReplaceAll(line, s, "<"+what+">"))
		}
	}
	for _, marker := range []string{"SessionToken", "SecretAccessKey", "X-Amz-Security-Token", "X-Amz-Signature", "AWS4-HMAC-SHA256", "Bearer clk_"} {
		require.NotContains(t, out, marker)
	}
}
