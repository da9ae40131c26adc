package crawl

import (
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
)

// IngestCostExplorerActivity pulls a payer's daily costs from Cost Explorer
// (for payers that grant only ce:GetCostAndUsage) into
// billing.ce_daily_costs. It equals the method name on
// activities.Crawl.
const IngestCostExplorerActivity = "IngestCostExplorer"

// Failure types of the non-retryable errors IngestCostExplorer reports.
const (
	// ErrTypeCostExplorerReconciliation: the table's totals per linked
	// account differ from what Cost Explorer returned.
	ErrTypeCostExplorerReconciliation = "CostExplorerReconciliationFailed"
	// ErrTypeCostExplorerRejected: Cost Explorer refused the request for a
	// reason a retry does not fix (access denied, a range it does not
	// serve, an amount costlake cannot keep exactly).
	ErrTypeCostExplorerRejected = "CostExplorerRejected"
)

// IngestCostExplorerInput names a payer and a range of days.
type IngestCostExplorerInput struct {
	PayerAccountID string       `json:"payer_account_id"`
	CustomerID     string       `json:"customer_id,omitempty"` // names the role session; "" in older histories
	Access         payer.Access `json:"access"`
	// Start and End are YYYY-MM-DD; End is exclusive. The table's rows of
	// the payer for these days are replaced in one snapshot.
	Start string `json:"start"`
	End   string `json:"end"`
}

// IngestCostExplorerResult says what a Cost Explorer crawl wrote and what
// it cost: Cost Explorer charges per request ($0.01 each).
type IngestCostExplorerResult struct {
	Rows int `json:"rows"`
	// Calls counts every HTTP request that reached Cost Explorer, retries
	// and throttled ones included; Pages the successful responses;
	// Throttled the responses that asked to slow down.
	Calls      int   `json:"calls"`
	Pages      int   `json:"pages"`
	Throttled  int   `json:"throttled"`
	SnapshotID int64 `json:"snapshot_id"`
	// Unblended is the total unblended cost written, reconciled per
	// account with the table.
	Unblended money.Amount `json:"unblended"`
	Currency  string       `json:"currency,omitempty"`
	// Accounts are the linked accounts with rows in the range, sorted.
	Accounts []string `json:"accounts,omitempty"`
}
