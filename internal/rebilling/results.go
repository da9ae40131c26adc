package rebilling

import (
	"slices"
	"strconv"
	"strings"

	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
)

// Folders of exports under a destination prefix: an at-cost and an
// at-resale export of the same payer and month have the same file names,
// so they never share a folder.
const (
	ExportFolderAtCost      = "at-cost"
	ExportFolderAtResale    = "at-resale"
	ResellerCustomersFolder = "customers"  // <prefix>/customers/<customer>/at-cost|at-resale/
	ResellerUnassigned      = "unassigned" // <prefix>/unassigned/at-cost/
)

// ExportRef names one export a cycle wrote: its manifest (written last)
// and its sums as printed.
type ExportRef struct {
	URL            string       `json:"url"` // the manifest, e.g. s3://bucket/prefix/at-resale/<payer>-…-manifest.json
	Store          string       `json:"store"`
	ManifestKey    string       `json:"manifest_key"`
	CustomerID     string       `json:"customer_id,omitempty"` // "" for the unassigned report
	PayerAccountID string       `json:"payer_account_id"`
	Mode           string       `json:"mode"`
	Files          int          `json:"files"`
	Rows           int64        `json:"rows"`
	UnblendedCost  money.Amount `json:"unblended_cost"` // as printed: the resale amount in an at_resale export
}

// PriceResult is a closed cycle's invoice, the resale snapshot and the
// exports.
type PriceResult struct {
	Bill             pricing.Bill `json:"bill"`
	Rows             int64        `json:"rows"`
	ResaleSnapshotID int64        `json:"resale_snapshot_id"` // billing.resale_line_items; 0 when the cycle has no line items
	Exports          []ExportRef  `json:"exports"`
	// Invoices are the invoice.json URLs written beside the exports.
	Invoices []string `json:"invoices,omitempty"`
	// Replayed: the cycle had already been priced and exported with the
	// same pins; no line items were written and the bill was read back
	// from its invoice record.
	Replayed bool `json:"replayed"`
}

// PayerReconciliation proves a payer's period is fully accounted for:
// Total = sum(Customers) + Restated + Open + Unassigned, exactly.
type PayerReconciliation struct {
	PayerAccountID string `json:"payer_account_id"`
	SnapshotID     int64  `json:"snapshot_id"` // the committed snapshot the total and the unassigned report read
	// Total is the unblended cost of the payer's period in SnapshotID.
	Total money.Amount `json:"total"`
	// Customers is each closed customer's cost in the snapshot its cycle pinned.
	Customers map[string]money.Amount `json:"customers"`
	// Restated is what SnapshotID changed for the closed customers since
	// their cycles pinned theirs: the sum of their adjustments.
	Restated money.Amount `json:"restated"`
	// Open is the cost of customers whose cycle is not closed (not exported).
	Open money.Amount `json:"open"`
	// Unassigned is the cost of accounts no customer owns.
	Unassigned     money.Amount `json:"unassigned"`
	UnassignedRows int64        `json:"unassigned_rows"`
}

// ResellerExportResult lists what the reseller export wrote.
type ResellerExportResult struct {
	Period      string                `json:"period"`
	Customers   []string              `json:"customers"`    // closed cycles exported
	OpenCycles  []string              `json:"open_cycles"`  // owners whose cycle is not closed
	Payers      []PayerReconciliation `json:"payers"`       // one per payer with the period committed
	Exports     []ExportRef           `json:"exports"`      // every manifest written
	SummaryKey  string                `json:"summary_key"`  // the JSON summary, written last
	SummaryURL  string                `json:"summary_url"`  // the same, as a URL
	CustomerSum money.Amount          `json:"customer_sum"` // sum of the customers' at-cost exports
}

// Pins describes what a closed cycle froze, canonically: "v<pricebook
// version>;<payer>=<snapshot>,…" by payer. billing.resale_line_items
// records it with each cycle's commit.
func Pins(pricebookVersion int, snapshots map[string]int64) string {
	payers := make([]string, 0, len(snapshots))
	for p := range snapshots {
		payers = append(payers, p)
	}
	slices.Sort(payers)
	var b strings.Builder
	b.WriteString("v" + strconv.Itoa(pricebookVersion) + ";")
	for i, p := range payers {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p + "=" + strconv.FormatInt(snapshots[p], 10))
	}
	return b.String()
}
