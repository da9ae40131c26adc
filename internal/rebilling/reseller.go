package rebilling

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	billingperiod "github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
)

// ResellerJob is a reseller's export of a period.
type ResellerJob struct {
	Period          string
	Gzip            bool
	AllowOpenCycles bool
	// Open opens the destination once nothing refuses the export.
	Open func(ctx context.Context) (Destination, error)
}

// ExportReseller writes the reseller's own export of a period: for every
// closed customer cycle, its pinned line items at cost and at resale
// (customers/<customer>/at-cost|at-resale/), and per payer the usage of
// accounts no customer owns (unassigned/at-cost/), read from the payer's
// current snapshot of the period. A summary
// (costlake-reseller-<period>-summary.json, written last) reconciles
// every payer exactly (see Reconcile); open cycles are refused unless
// AllowOpenCycles.
func (r *Rebiller) ExportReseller(ctx context.Context, job ResellerJob) (ResellerExportResult, error) {
	res := ResellerExportResult{Period: job.Period, Customers: []string{}, OpenCycles: []string{}, Exports: []ExportRef{}}
	if !billingperiod.Valid(job.Period) {
		return res, fail(ErrInvalidInput, "period %q: want YYYY-MM", job.Period)
	}
	owners, err := r.Records.Owners(ctx, job.Period)
	if err != nil {
		return res, err
	}
	payers, err := r.Lake.PayersOfPeriod(ctx, job.Period)
	if err != nil {
		return res, err
	}
	closedList, err := r.Records.ClosedCycles(ctx, job.Period)
	if err != nil {
		return res, err
	}
	closed := map[string]reseller.Cycle{}
	for _, c := range closedList {
		closed[c.CustomerID] = c
		res.Customers = append(res.Customers, c.CustomerID)
	}
	openSet := map[string]bool{}
	for k, c := range owners {
		if _, ok := closed[c]; c != "" && !ok && slices.Contains(payers, k[0]) {
			openSet[c] = true
		}
	}
	res.OpenCycles = append(res.OpenCycles, slices.Sorted(maps.Keys(openSet))...)
	if len(res.OpenCycles) > 0 && !job.AllowOpenCycles {
		return res, fail(ErrOpenCycles, "customers %s own accounts in %s but have not closed it; close their cycles first, or export with allow_open_cycles",
			strings.Join(res.OpenCycles, ", "), job.Period)
	}
	d, err := job.Open(ctx)
	if err != nil {
		return res, err
	}
	defer d.Close()
	progress := &Progress{Stage: "reseller-export"}

	// Closed customers: their pinned line items, at cost and at resale.
	atPin := map[string]map[string]money.Amount{} // payer → customer → cost in the pinned snapshot
	for _, customer := range res.Customers {
		c := closed[customer]
		pr, err := r.pricer(ctx, c)
		if err != nil {
			return res, err
		}
		base := d.Loc.Key(ResellerCustomersFolder, customer)
		targets := []Target{
			{Dest: d, Prefix: path.Join(base, ExportFolderAtCost), Mode: export.AtCost, Gzip: job.Gzip, Customer: customer},
			{Dest: d, Prefix: path.Join(base, ExportFolderAtResale), Mode: export.AtResale, Gzip: job.Gzip, Customer: customer},
		}
		progress.CustomerID = customer
		for _, payerID := range slices.Sorted(maps.Keys(c.Snapshots)) {
			if atPin[payerID] == nil {
				atPin[payerID] = map[string]money.Amount{}
			}
			snap := c.Snapshots[payerID]
			if snap == 0 {
				atPin[payerID][customer] = money.Amount{}
				continue
			}
			progress.PayerAccountID = payerID
			p := &pass{payerID: payerID, period: job.Period, snapshot: snap,
				accounts: accountFilter(owners, payerID, customer),
				keep:     func(acct string) bool { return reseller.Owner(owners, payerID, acct) == customer },
				pr:       pr, targets: targets, progress: progress}
			refs, err := r.run(ctx, p)
			if err != nil {
				return res, err
			}
			res.Exports = append(res.Exports, refs...)
			atPin[payerID][customer] = p.cost
			res.CustomerSum = res.CustomerSum.Add(p.cost)
		}
	}

	// Per payer: unassigned usage from the current snapshot, and the
	// reconciliation of the whole period.
	progress.CustomerID = ""
	for _, payerID := range payers {
		progress.PayerAccountID = payerID
		r.report(progress)
		snap, err := r.Lake.LatestSnapshot(ctx, payerID, job.Period)
		if err != nil {
			return res, err
		}
		accounts, err := r.Lake.AccountCosts(ctx, payerID, job.Period, snap)
		if err != nil {
			return res, err
		}
		p := &pass{payerID: payerID, period: job.Period, snapshot: snap,
			keep:     func(acct string) bool { return reseller.Owner(owners, payerID, acct) == "" },
			targets:  []Target{{Dest: d, Prefix: d.Loc.Key(ResellerUnassigned, ExportFolderAtCost), Mode: export.AtCost, Gzip: job.Gzip}},
			progress: progress}
		refs, err := r.run(ctx, p)
		if err != nil {
			return res, err
		}
		res.Exports = append(res.Exports, refs...)
		rec, err := Reconcile(PayerPeriod{PayerAccountID: payerID, Period: job.Period, SnapshotID: snap, Accounts: accounts,
			Owners: owners, Open: openSet, Pinned: atPin[payerID], Unassigned: p.cost, UnassignedRows: p.rows})
		if err != nil {
			return res, err
		}
		res.Payers = append(res.Payers, rec)
	}

	res.SummaryKey = d.Loc.Key(fmt.Sprintf("costlake-reseller-%s-summary.json", job.Period))
	res.SummaryURL = d.URL(res.SummaryKey)
	body, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := d.Store.Put(ctx, res.SummaryKey, bytes.NewReader(append(body, '\n'))); err != nil {
		return res, fmt.Errorf("write %s: %w", res.SummaryURL, err)
	}
	return res, nil
}

// PayerPeriod is what the reconciliation of one payer's period compares.
type PayerPeriod struct {
	PayerAccountID string
	Period         string
	SnapshotID     int64                   // the payer's current snapshot of the period
	Accounts       []billing.AccountTotal  // the table's cost per usage account in it
	Owners         map[[2]string]string    // reseller.Store.Owners of the period
	Open           map[string]bool         // customers whose cycle is not closed
	Pinned         map[string]money.Amount // closed customer → cost exported from its pinned snapshot
	Unassigned     money.Amount            // cost of the unassigned rows exported
	UnassignedRows int64
}

// Reconcile checks one payer's period to the last digit: the table's
// total equals the closed customers' pinned costs, plus what
// restatements changed for them since they closed (Restated: their cost
// in the current snapshot less the pinned one), plus the open customers'
// usage, plus the unassigned usage exported. A difference is an
// ErrNotReconciled error naming the sums.
func Reconcile(in PayerPeriod) (PayerReconciliation, error) {
	rec := PayerReconciliation{PayerAccountID: in.PayerAccountID, SnapshotID: in.SnapshotID, Customers: map[string]money.Amount{}}
	atSnap := map[string]money.Amount{} // closed customer → cost in this snapshot
	var unassigned money.Amount
	for _, t := range in.Accounts {
		rec.Total = rec.Total.Add(t.UnblendedCost)
		switch owner := reseller.Owner(in.Owners, in.PayerAccountID, t.Account); {
		case owner == "":
			unassigned = unassigned.Add(t.UnblendedCost)
		case in.Open[owner]:
			rec.Open = rec.Open.Add(t.UnblendedCost)
		default:
			atSnap[owner] = atSnap[owner].Add(t.UnblendedCost)
		}
	}
	maps.Copy(rec.Customers, in.Pinned)
	for customer := range atSnap {
		if _, ok := rec.Customers[customer]; !ok {
			rec.Customers[customer] = money.Amount{} // owns accounts here but pinned nothing of this payer
		}
	}
	for customer, cost := range rec.Customers {
		rec.Restated = rec.Restated.Add(atSnap[customer].Sub(cost))
	}
	rec.Unassigned, rec.UnassignedRows = in.Unassigned, in.UnassignedRows
	if rec.Unassigned.Cmp(unassigned) != 0 {
		return rec, fail(ErrNotReconciled, "payer %s %s: unassigned rows exported sum to %s, the table's totals to %s", in.PayerAccountID, in.Period, rec.Unassigned, unassigned)
	}
	sum := rec.Restated.Add(rec.Open).Add(rec.Unassigned)
	for _, cost := range rec.Customers {
		sum = sum.Add(cost)
	}
	if sum.Cmp(rec.Total) != 0 {
		return rec, fail(ErrNotReconciled, "payer %s %s: customers, restatements, open cycles and unassigned usage sum to %s, the period to %s", in.PayerAccountID, in.Period, sum, rec.Total)
	}
	return rec, nil
}
