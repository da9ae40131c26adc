package tests

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/workflows"
)

// TestOnboardCostExplorerPayer: a payer that grants only Cost Explorer is
// onboarded without a bucket; its checks call Cost Explorer; approval
// pulls its recent daily costs into billing.ce_daily_costs and schedules
// the daily crawl.
func TestOnboardCostExplorerPayer(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "121987654321"
	e.emu.SetOrganization(payerID, []awsemu.Account{{Id: payerID}})
	e.emu.SetCostRecords(ceRecords(3, clock.Period(e.today, 1)+"-01", 20))
	e.completeStack(payerID)

	var body apiErrorBody
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers",
		`{"customer_id":"acme","payer_account_id":"`+payerID+`","access":{"mode":"assume_role"},"export":{"type":"cost_explorer","bucket":"acme-cur"}}`, &body))
	require.Contains(t, body.Error.Fields, "export.bucket")
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers",
		`{"customer_id":"acme","payer_account_id":"`+payerID+`","access":{"mode":"assume_role"},"export":{"type":"cost_explorer"}}`, nil))

	p := e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, "cost_explorer", p.Stack.Parameters["ExportType"])
	var names []string
	for _, c := range p.Checks {
		require.Equal(t, onboard.Passed, c.Result, "%s: %s", c.Name, c.Message)
		names = append(names, c.Name)
	}
	require.Equal(t, []string{onboard.CheckCredentials, onboard.CheckOrganization, onboard.CheckCostExplorer}, names)

	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p = e.waitActive(payerID)
	var r workflows.CrawlPayerResult
	e.waitWorkflow(p.FirstIngestion.WorkflowID, &r)
	require.NotNil(t, r.CostExplorer)
	require.Greater(t, r.CostExplorer.Rows, 0)
	require.Greater(t, r.CostExplorer.Calls, 1)
	require.Equal(t, len(e.emu.Calls("GetCostAndUsage"))-1, r.CostExplorer.Calls, "every paid call counted (one more was the onboarding check)")
}
