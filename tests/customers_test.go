package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/workflows"
)

// TestCustomersThroughTheGateway: an operator describes customers, assigns
// them a payer's linked accounts by period, stores pricebooks, checks an
// export bucket, and reads the usage nobody owns; conflicts, bad input and
// keys of the wrong role or customer are refused.
func TestCustomersThroughTheGateway(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "131987654321"
	p, gen := e.activate("acme", payerID, "acme-cur")
	period := clock.Period(e.today, 1) // final by date on the stand's clock
	var mine, theirs string
	for _, a := range p.Accounts {
		switch {
		case mine == "":
			mine = a
		case theirs == "":
			theirs = a
		}
	}
	e.minio.CreateBucket(t, "acme-exports")

	var body apiErrorBody
	// Exports go through the customer's role (MinIO's STS here), never to
	// costlake's own buckets.
	const role = `"access":{"mode":"assume_role","role_arn":"arn:aws:iam::131987654321:role/costlake-export","external_id":"acme-export"}`
	e.emu.PutRole(awsemu.Role{ARN: "arn:aws:iam::131987654321:role/costlake-export",
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + testPrincipal + `"},"Action":["sts:AssumeRole","sts:SetSourceIdentity"],"Condition":{"StringEquals":{"sts:ExternalId":"acme-export"}}}]}`,
		Policies:    []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::acme-exports/aws/*"},{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::acme-exports"}]}`}})
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme", `{"name":"Acme","export":{"url":"s3://acme-exports/aws","mode":"at_resale",`+role+`}}`, nil))
	require.Equal(t, http.StatusBadRequest, e.operator.do("PUT", "/v1/customers/acme", `{"export":{"url":"ftp://x","mode":"cheap"}}`, &body))
	require.Contains(t, body.Error.Fields, "export.url")
	require.Contains(t, body.Error.Fields, "export.mode")
	require.Equal(t, http.StatusBadRequest, e.operator.do("PUT", "/v1/customers/acme", `{"export":{"url":"s3://acme-exports/aws"}}`, &body))
	require.Contains(t, body.Error.Fields, "export.access")
	require.Equal(t, http.StatusBadRequest, e.operator.do("PUT", "/v1/customers/acme", `{"export":{"url":"s3://acme-exports/aws","access":{"mode":"assume_role","role_arn":"arn:aws:iam::1:role/x","token":"t"}}}`, &body))
	require.Contains(t, body.Error.Fields, "token", "access settings are decoded strictly")
	require.Equal(t, http.StatusBadRequest, e.operator.do("PUT", "/v1/customers/acme", `{"export":{"url":"s3://costlake-templates/acme",`+role+`}}`, &body))
	require.Contains(t, body.Error.Message, "costlake's own storage")
	require.Contains(t, body.Error.Message, "templates")

	// Accounts, by period; a second customer may not take one that is owned.
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["`+mine+`"]}]}`, nil))
	require.Equal(t, http.StatusConflict, e.operator.do("PUT", "/v1/customers/globex/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["`+mine+`","`+theirs+`"]}]}`, &body))
	require.Contains(t, body.Error.Message, "belongs to customer acme")
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/globex/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["`+theirs+`"]}]}`, nil))
	require.Equal(t, http.StatusBadRequest, e.operator.do("PUT", "/v1/customers/acme/accounts", `{"effective_from":"26-10","payers":[{"payer_account_id":"1","accounts":["x"]}]}`, &body))
	require.Contains(t, body.Error.Fields, "effective_from")
	require.Contains(t, body.Error.Fields, "payers[0].payer_account_id")

	var view reseller.CustomerView
	require.Equal(t, http.StatusOK, e.viewer.do("GET", "/v1/customers/acme?period="+period, "", &view))
	require.Equal(t, "Acme", view.Name)
	require.Equal(t, []string{mine}, view.Accounts[0].Accounts)

	// Pricebooks: field errors, then versions.
	require.Equal(t, http.StatusBadRequest, e.operator.do("PUT", "/v1/customers/acme/pricebook",
		`{"effective_from":"`+period+`","rules":[{"service":"AmazonEC2","percent":"-250"}]}`, &body))
	require.Contains(t, body.Error.Fields, "rules[0].percent")
	var pb struct {
		Version int `json:"version"`
	}
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"5"}`, &pb))
	require.Equal(t, 1, pb.Version)
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"6"}`, &pb))
	require.Equal(t, 2, pb.Version)
	var got struct {
		Version int `json:"version"`
	}
	require.Equal(t, http.StatusOK, e.operator.do("GET", "/v1/customers/acme/pricebook?period="+period, "", &got))
	require.Equal(t, 2, got.Version)

	// The gateway answered those reads from the catalog, read-only: no
	// workflow ran for them, and a gateway without the catalog, whose
	// reads run on the worker, answers the same bodies.
	assertNoReadWorkflows(t, e.client)
	viaWorker := e.gatewayWith(func(c *gateway.Config) { c.Records = nil })
	for _, path := range []string{"/v1/customers/acme?period=" + period, "/v1/customers/acme/pricebook?period=" + period, "/v1/customers/nobody/pricebook?period=" + period} {
		direct, directCode := e.operator.raw("GET", path)
		worker, workerCode := viaWorker.raw("GET", path)
		require.Equal(t, workerCode, directCode, path)
		require.JSONEq(t, worker, direct, path)
	}
	require.Eventually(t, func() bool { reads, _ := customerReadWorkflows(t, e.client); return len(reads) == 3 }, 10*time.Second, 100*time.Millisecond, "the worker's reads are workflows")

	// A gateway of the previous release starts ManageCustomer with a Kind
	// and a JSON body; the worker still answers it, with the same body.
	run, err := e.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "customer/acme/legacy-read", TaskQueue: workflows.TaskQueue},
		customerops.LegacyWorkflow, customerops.LegacyRequest{Kind: "get_customer", CustomerID: "acme", Period: period, By: "old-gateway"})
	require.NoError(t, err)
	var legacy json.RawMessage
	require.NoError(t, run.Get(context.Background(), &legacy))
	direct, _ := e.operator.raw("GET", "/v1/customers/acme?period="+period)
	require.JSONEq(t, direct, string(legacy), "the previous release's request answers as it did")

	// Keys: a viewer may not change, another customer's key sees nothing,
	// a customer's own key reads its record but not its pricebook.
	require.Equal(t, http.StatusForbidden, e.viewer.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`"}`, &body))
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/customers/acme", "", &body))
	require.Equal(t, http.StatusNotFound, e.globex.do("PUT", "/v1/customers/acme/accounts", `{}`, &body))
	require.Equal(t, http.StatusOK, e.globex.do("GET", "/v1/customers/globex?period="+period, "", nil))
	require.Equal(t, http.StatusForbidden, e.globex.do("GET", "/v1/customers/globex/pricebook", "", &body))

	// Verify an export bucket: writable, then missing.
	var v export.VerifyResult
	require.Equal(t, http.StatusOK, e.operator.do("POST", "/v1/exports/verify", `{"url":"s3://acme-exports/aws"}`, &v))
	require.True(t, v.OK, v.Message)
	require.Equal(t, http.StatusOK, e.operator.do("POST", "/v1/exports/verify", `{"url":"s3://no-such-bucket/aws"}`, &v))
	require.False(t, v.OK)
	require.Equal(t, "bucket_not_found", string(v.Reason), v.Message)

	// Unassigned usage: every account but the two assigned, exactly.
	var un customerops.UnassignedView
	require.Equal(t, http.StatusOK, e.operator.do("GET", "/v1/reports/unassigned?period="+period, "", &un))
	require.Len(t, un.Payers, 1)
	want := decimal.Zero
	for acct, tot := range gen.Accounts {
		if acct != mine && acct != theirs {
			want = want.Add(decimal.RequireFromString(tot.UnblendedCost))
		}
	}
	require.Equal(t, want.String(), decimal.RequireFromString(un.Payers[0].UnblendedCost.String()).String())
	require.Len(t, un.Payers[0].Accounts, len(gen.Accounts)-2)

	// Close acme's cycle through the gateway; after that its pricebook for
	// the period is frozen.
	require.Equal(t, http.StatusForbidden, e.viewer.do("POST", "/v1/customers/acme/cycles/"+period+"/close", "", &body))
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/customers/acme/cycles/"+period+"/close", "", nil))
	var cyc gateway.CycleResponse
	require.Eventually(t, func() bool {
		e.viewer.do("GET", "/v1/customers/acme/cycles/"+period, "", &cyc)
		return cyc.Status != "running"
	}, 2*time.Minute, 200*time.Millisecond)
	require.Equal(t, "completed", cyc.Status, cyc.Failure)
	require.Equal(t, 2, cyc.Result.PricebookVersion)
	require.Equal(t, gen.Accounts[mine].UnblendedCost, decimal.RequireFromString(cyc.Result.Bill.Cost.String()).String())
	require.NotEmpty(t, cyc.Result.Exports)
	// The export's role session names the customer, in its CloudTrail.
	var exportSessions int
	for _, s := range e.emu.Sessions() {
		if s.RoleARN == "arn:aws:iam::131987654321:role/costlake-export" {
			exportSessions++
			require.Equal(t, "costlake-export-acme", s.RoleSessionName, s)
			require.Equal(t, "costlake-acme", s.SourceIdentity, s)
		}
	}
	require.NotZero(t, exportSessions, "the export assumed the customer's role")
	require.Equal(t, http.StatusConflict, e.operator.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"9"}`, &body))
	require.Contains(t, body.Error.Message, "closed")
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/customers/acme/cycles/"+period, "", &body))

	// A customer's own key reads its cycle's resale figures, never the
	// reseller's cost (or, from it, the margin).
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/globex/pricebook", `{"effective_from":"`+period+`","global_percent":"12.5"}`, nil))
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/customers/globex/cycles/"+period+"/close", "", nil))
	require.Eventually(t, func() bool {
		e.operator.do("GET", "/v1/customers/globex/cycles/"+period, "", &cyc)
		return cyc.Status != "running"
	}, 2*time.Minute, 200*time.Millisecond)
	require.Equal(t, "completed", cyc.Status, cyc.Failure)
	require.Equal(t, gen.Accounts[theirs].UnblendedCost, decimal.RequireFromString(cyc.Result.Bill.Cost.String()).String(), "the operator sees the cost")
	var own map[string]any
	require.Equal(t, http.StatusOK, e.globex.do("GET", "/v1/customers/globex/cycles/"+period, "", &own))
	require.Equal(t, "completed", own["status"])
	res := own["result"].(map[string]any)
	bill := res["bill"].(map[string]any)
	require.Equal(t, cyc.Result.Bill.Total.String(), bill["total"])
	require.Equal(t, cyc.Result.Bill.Due.String(), bill["due"])
	require.NotEmpty(t, bill["lines"])
	require.Empty(t, keysNamed(own, "cost"), "no cost anywhere in a scoped key's cycle")
	require.Empty(t, keysNamed(own, "snapshots"))
}

// keysNamed returns the paths of every object key called name in a
// decoded JSON value.
func keysNamed(v any, name string) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == name {
					out = append(out, path+"."+k)
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	walk("", v)
	return out
}

// raw calls the gateway and returns the body as text with the status.
func (a apiClient) raw(method, path string) (string, int) {
	a.t.Helper()
	var body json.RawMessage
	code := a.do(method, path, "", &body)
	return string(body), code
}

// gatewayWith serves a second gateway over the stand's Temporal, its
// configuration changed, and returns an operator's client of it.
func (e *onboardEnv) gatewayWith(change func(*gateway.Config)) apiClient {
	cfg := e.gatewayConfig
	change(&cfg)
	// The gateway's log shows when the test fails.
	srv := httptest.NewServer(validatingGateway(e.t, gateway.New(e.client, slog.New(slog.NewTextHandler(testLog{e.t}, nil)), cfg)))
	e.t.Cleanup(srv.Close)
	return apiClient{t: e.t, base: srv.URL, key: e.operator.key}
}

// customerReadWorkflows lists the CustomerRequest runs that were reads of a
// customer or its pricebook, and counts all CustomerRequest runs.
func customerReadWorkflows(t *testing.T, c client.Client) (reads []string, all int) {
	t.Helper()
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'CustomerRequest'", PageSize: 1000})
	require.NoError(t, err)
	for _, w := range resp.Executions {
		id := w.GetExecution().GetWorkflowId()
		if strings.Contains(id, "/get_customer/") || strings.Contains(id, "/get_pricebook/") {
			reads = append(reads, id)
		}
	}
	return reads, len(resp.Executions)
}

// assertNoReadWorkflows: the changes ran as workflows (so the listing
// sees this stand's runs), the reads did not.
func assertNoReadWorkflows(t *testing.T, c client.Client) {
	t.Helper()
	require.Eventually(t, func() bool { _, all := customerReadWorkflows(t, c); return all > 0 }, 10*time.Second, 100*time.Millisecond, "the changes ran as CustomerRequest workflows")
	reads, _ := customerReadWorkflows(t, c)
	require.Empty(t, reads, "reads answered from the catalog start no workflow")
}

// testLog writes into the test's log, shown when it fails.
type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
