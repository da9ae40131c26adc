package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/rebilling"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/telemetry"
	"github.com/costlake/costlake/lakehouse"
)

// Cycle holds CloseBillingCycle's and ExportResellerPeriod's activities:
// check finality, freeze the pins, price and export.
type Cycle struct {
	Lake *lakehouse.Lake
	// Reseller holds customers' accounts, pricebooks and closed cycles.
	Reseller *reseller.Store
	// Destinations opens customers' and the reseller's export locations.
	Destinations
	// TempDir holds export files while they are written; empty means the
	// system's temporary folder.
	TempDir string
	// Metrics counts exports written and failed reconciliations; nil
	// counts nothing.
	Metrics *telemetry.Metrics
}

func cycleError(typ, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError(msg, typ, nil)
}

func (a *Cycle) resellerStore() (*reseller.Store, error) {
	if a.Reseller == nil {
		return nil, cycleError(cycle.ErrTypeNoReseller, "the worker has no reseller records")
	}
	return a.Reseller, nil
}

// CheckCycleFinal tells whether a customer's period is final: every payer
// holding the customer's accounts has committed the period with invoice
// IDs on its line items, or the period ended FinalAfterDays before AsOf.
// A closed cycle is final.
func (a *Cycle) CheckCycleFinal(ctx context.Context, in cycle.CheckFinalInput) (cycle.CheckFinalResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.CheckFinalResult{}, err
	}
	if in.Period.IsZero() {
		return cycle.CheckFinalResult{}, cycleError(cycle.ErrTypeInvalidInput, "no period: want YYYY-MM")
	}
	finalByDate, finalAt := in.Period.FinalByDate(in.FinalAfterDays, in.AsOf), in.Period.FinalAt(in.FinalAfterDays)
	res := cycle.CheckFinalResult{FinalAt: finalAt, Payers: []cycle.PayerStatus{}}
	if c, err := store.CycleOf(ctx, in.CustomerID, in.Period.String()); err == nil {
		for _, p := range slices.Sorted(maps.Keys(c.Snapshots)) {
			res.Payers = append(res.Payers, cycle.PayerStatus{PayerAccountID: p, Committed: c.Snapshots[p] != 0, SnapshotID: c.Snapshots[p]})
		}
		res.Final, res.Closed, res.Reason = true, true, "closed on "+c.ClosedAt
		return res, nil
	} else if !errors.Is(err, reseller.ErrNotFound) {
		return res, err
	}
	assignments, err := store.CustomerAccounts(ctx, in.CustomerID, in.Period.String())
	if err != nil {
		return res, err
	}
	invoiced := len(assignments) > 0
	var waiting []string
	for _, as := range assignments {
		st := cycle.PayerStatus{PayerAccountID: as.PayerAccountID}
		c, ok, err := a.Lake.LatestPeriodCommit(ctx, billing.LineItems, as.PayerAccountID, in.Period)
		if err != nil {
			return res, err
		}
		if ok {
			st.Committed, st.SnapshotID, st.AssemblyID = true, c.SnapshotID, c.AssemblyID
			if st.Invoiced, err = a.Lake.PeriodInvoiced(ctx, as.PayerAccountID, in.Period, c.SnapshotID); err != nil {
				return res, err
			}
		}
		if !st.Invoiced {
			invoiced = false
			waiting = append(waiting, as.PayerAccountID)
		}
		res.Payers = append(res.Payers, st)
	}
	switch {
	case invoiced:
		res.Final, res.Reason = true, "every payer's line items carry an invoice ID"
	case finalByDate:
		res.Final, res.Reason = true, fmt.Sprintf("final since %s (%d days after the month ended)", finalAt.Format("2006-01-02"), in.FinalAfterDays)
	case len(assignments) == 0:
		res.Reason = fmt.Sprintf("the customer owns no accounts in %s; final on %s", in.Period.String(), finalAt.Format("2006-01-02"))
	default:
		res.Reason = fmt.Sprintf("payer %s has no invoice IDs yet; final on %s at the latest", strings.Join(waiting, ", "), finalAt.Format("2006-01-02"))
	}
	return res, nil
}

// FreezeCycle closes a customer's cycle: it pins, per payer holding the
// customer's accounts, the period's current line_items snapshot (0 when
// nothing is committed), and the pricebook version in force. A cycle
// already closed keeps its pins: running it again returns them.
func (a *Cycle) FreezeCycle(ctx context.Context, in cycle.FreezeInput) (cycle.FreezeResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	closed := func(c reseller.Cycle, already bool) cycle.FreezeResult {
		return cycle.FreezeResult{PricebookVersion: c.PricebookVersion, Snapshots: c.Snapshots, ClosedAt: c.ClosedAt, AlreadyClosed: already}
	}
	if c, err := store.CycleOf(ctx, in.CustomerID, in.Period.String()); err == nil {
		return closed(c, true), nil
	} else if !errors.Is(err, reseller.ErrNotFound) {
		return cycle.FreezeResult{}, err
	}
	// Restatements of earlier closed cycles that no ingestion recorded go
	// to this cycle, the customer's next open one, before it closes.
	if err := a.catchUpAdjustments(ctx, in.CustomerID); err != nil {
		return cycle.FreezeResult{}, err
	}
	pv, err := store.PricebookFor(ctx, in.CustomerID, in.Period.String())
	if errors.Is(err, reseller.ErrNotFound) {
		return cycle.FreezeResult{}, cycleError(cycle.ErrTypeNoPricebook, "%v", err)
	} else if err != nil {
		return cycle.FreezeResult{}, err
	}
	book, err := pricing.Decode(pv.Body)
	if err != nil {
		return cycle.FreezeResult{}, cycleError(cycle.ErrTypeBadPricebook, "customer %s's pricebook version %d: %v", in.CustomerID, pv.Version, err)
	}
	assignments, err := store.CustomerAccounts(ctx, in.CustomerID, in.Period.String())
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	// One currency per bill: a customer whose payers bill in several is
	// refused before anything is pinned (pricing checks each line again).
	current := map[string]int64{}
	for _, as := range assignments {
		c, _, err := a.Lake.LatestPeriodCommit(ctx, billing.LineItems, as.PayerAccountID, in.Period)
		if err != nil {
			return cycle.FreezeResult{}, err
		}
		current[as.PayerAccountID] = c.SnapshotID
	}
	if _, err := a.rebiller(ctx, store).CycleCurrency(ctx, in.CustomerID, in.Period.String(), book, current); err != nil {
		return cycle.FreezeResult{}, rebillingError(err)
	}
	// The pins are read and stored while no table maintenance can expire
	// them (see lakehouse.HoldSnapshots).
	snaps := map[string]int64{}
	err = a.Lake.HoldSnapshots(ctx, func(ctx context.Context) error {
		for _, as := range assignments {
			c, _, err := a.Lake.LatestPeriodCommit(ctx, billing.LineItems, as.PayerAccountID, in.Period)
			if err != nil {
				return err
			}
			snaps[as.PayerAccountID] = c.SnapshotID
		}
		return store.CloseCycle(ctx, reseller.Cycle{CustomerID: in.CustomerID, Period: in.Period.String(), PricebookVersion: pv.Version, Snapshots: snaps})
	})
	if err != nil && !errors.Is(err, reseller.ErrClosed) {
		return cycle.FreezeResult{}, err
	}
	// Closed now, by this call or (ErrClosed) by a concurrent one whose
	// pins win: closed means closed.
	c, err := store.CycleOf(ctx, in.CustomerID, in.Period.String())
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	return closed(c, !maps.Equal(c.Snapshots, snaps) || c.PricebookVersion != pv.Version), nil
}

// customerTargets are the exports a customer's destination asks for: one,
// in the mode the customer chose (at resale unless at_cost), under
// <prefix>/at-resale or <prefix>/at-cost.
func (a *Cycle) customerTargets(ctx context.Context, store *reseller.Store, customer string) ([]rebilling.Target, func(), error) {
	c, err := store.CustomerOf(ctx, customer)
	if errors.Is(err, reseller.ErrNotFound) || (err == nil && (c.Export == nil || c.Export.URL == "")) {
		return nil, func() {}, nil
	} else if err != nil {
		return nil, nil, err
	}
	// Checked again before writing: a record saved before these rules, or
	// a bucket whose ownership file is gone, is refused by name.
	if err := a.checkDestination(ctx, customer, *c.Export); err != nil {
		if destinationFault(err) {
			return nil, nil, cycleError(cycle.ErrTypeDestination, "customer %s's %v", customer, err)
		}
		return nil, nil, err
	}
	mode := export.Mode(c.Export.Mode)
	if mode == "" {
		mode = export.AtResale
	}
	if !mode.Valid() {
		return nil, nil, cycleError(cycle.ErrTypeDestination, "customer %s's export mode %q: want at_cost or at_resale", customer, c.Export.Mode)
	}
	d, err := a.openDestination(ctx, c.Export.URL, c.Export.Access, customer)
	if err != nil {
		return nil, nil, err
	}
	t := rebilling.Target{Dest: d, Prefix: d.Loc.Key(rebilling.ModeFolder(mode)), Mode: mode, Gzip: c.Export.Gzip, Customer: customer}
	return []rebilling.Target{t}, d.Close, nil
}

// PriceAndExportCycle prices a closed cycle and writes what it owes (see
// rebilling.Rebiller.PriceCycle); heartbeats report the rows priced.
func (a *Cycle) PriceAndExportCycle(ctx context.Context, in cycle.PriceInput) (cycle.PriceResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.PriceResult{}, err
	}
	// A retry resumes after the last payer an earlier attempt finished:
	// its checkpoint rides in the heartbeat details with the progress.
	var last pricingHeartbeat
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &last); err != nil {
			last = pricingHeartbeat{}
		}
	}
	resume := last.Checkpoint
	r := a.rebiller(ctx, store)
	r.Progress = func(p rebilling.Progress) {
		last.Progress = p
		activity.RecordHeartbeat(ctx, last)
	}
	res, err := r.PriceCycle(ctx, rebilling.CycleJob{CustomerID: in.CustomerID, Period: in.Period.String(),
		Targets: func(ctx context.Context) ([]rebilling.Target, func(), error) {
			return a.customerTargets(ctx, store, in.CustomerID)
		},
		Resume: resume,
		Checkpoint: func(c rebilling.PriceCheckpoint) {
			last.Checkpoint = &c
			activity.RecordHeartbeat(ctx, last)
		}})
	if err == nil && !res.Replayed {
		a.Metrics.ExportsWritten(telemetry.ExportCustomer, len(res.Exports))
	}
	return res, rebillingError(err)
}

// pricingHeartbeat is what PriceAndExportCycle heartbeats: its progress,
// and the checkpoint a retry resumes from.
type pricingHeartbeat struct {
	rebilling.Progress
	Checkpoint *rebilling.PriceCheckpoint `json:"checkpoint,omitempty"`
}

// ExportResellerPeriod writes the reseller's own export of a period to
// in.URL (see rebilling.Rebiller.ExportReseller): every closed customer
// cycle's pinned line items at cost and at resale, per payer the usage
// of accounts no customer owns, and a summary reconciling every payer
// exactly: Total = sum(Customers) + Restated + Open + Unassigned.
func (a *Cycle) ExportResellerPeriod(ctx context.Context, in cycle.ResellerExportInput) (cycle.ResellerExportResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.ResellerExportResult{Period: in.Period.String(), Customers: []string{}, OpenCycles: []string{}, Exports: []cycle.ExportRef{}}, err
	}
	res, err := a.rebiller(ctx, store).ExportReseller(ctx, rebilling.ResellerJob{Period: in.Period.String(), Gzip: in.Gzip, AllowOpenCycles: in.AllowOpenCycles,
		Open: func(ctx context.Context) (rebilling.Destination, error) {
			return a.openDestination(ctx, in.URL, in.Access, "")
		}})
	if err == nil {
		a.Metrics.ExportsWritten(telemetry.ExportReseller, len(res.Exports))
	} else if errors.Is(err, rebilling.ErrNotReconciled) {
		a.Metrics.ReconciliationFailed(telemetry.CheckResellerExport)
	}
	return res, rebillingError(err)
}

// catchUpAdjustments records the adjustments a customer's closed cycles
// still miss: where a payer's period was restated after the cycle pinned
// it and the ingestion could not record the difference. Closing the next
// cycle calls it before the cycle closes, so they apply to that cycle.
func (a *Cycle) catchUpAdjustments(ctx context.Context, customer string) error {
	cycles, err := a.Reseller.CyclesOf(ctx, customer)
	if err != nil || len(cycles) == 0 {
		return err
	}
	for _, c := range cycles {
		p, err := recordPeriod(c.Period)
		if err != nil {
			return err
		}
		for _, payerID := range slices.Sorted(maps.Keys(c.Snapshots)) {
			latest, ok, err := a.Lake.LatestPeriodCommit(ctx, billing.LineItems, payerID, p)
			if err != nil {
				return err
			}
			if !ok || latest.SnapshotID == c.Snapshots[payerID] {
				continue
			}
			_, err = adjustClosedCycles(ctx, a.Lake, a.Reseller, payerID, p, latest.AssemblyID, latest.SnapshotID, []reseller.Cycle{c})
			var app *temporal.ApplicationError
			if errors.As(err, &app) && app.Type() == cycle.ErrTypeSnapshotGone {
				// An old cycle whose snapshot was expired cannot be compared
				// any more; it must not keep newer cycles from closing.
				activity.GetLogger(ctx).Warn("cannot catch up adjustments of a closed cycle", "customer", customer, "period", c.Period, "payer", payerID, "error", err)
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// adjust records, for each closed cycle that pinned another snapshot of
// payer's period than snapshotID, the cost difference of the customer's
// accounts (less earlier adjustments) as assembly's adjustment. It
// returns the customers adjusted now.
func adjustClosedCycles(ctx context.Context, lake *lakehouse.Lake, store *reseller.Store, payerID string, p period.Period, assembly string, snapshotID int64, cycles []reseller.Cycle) ([]string, error) {
	var affected []reseller.Cycle
	for _, c := range cycles {
		if pinned, ok := c.Snapshots[payerID]; ok && pinned != snapshotID {
			affected = append(affected, c)
		}
	}
	if len(affected) == 0 {
		return nil, nil
	}
	owners, err := store.Owners(ctx, p.String())
	if err != nil {
		return nil, err
	}
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		return nil, err
	}
	// Cost per customer in a snapshot, each snapshot read once; snapshot 0
	// (nothing committed when the cycle closed) costs nothing.
	costs := map[int64]map[string]money.Amount{0: {}}
	costOf := func(snap int64, customer string) (money.Amount, error) {
		if m, ok := costs[snap]; ok {
			return m[customer], nil
		}
		if tbl.SnapshotByID(snap) == nil {
			return money.Amount{}, cycleError(cycle.ErrTypeSnapshotGone, "billing.line_items no longer has snapshot %d of payer %s %s", snap, payerID, p)
		}
		totals, err := lake.PeriodTotals(ctx, billing.LineItems, payerID, p, snap)
		if err != nil {
			return money.Amount{}, err
		}
		m := map[string]money.Amount{}
		for _, t := range billing.ByAccount(totals) {
			if owner := reseller.Owner(owners, payerID, t.Account); owner != "" {
				m[owner] = m[owner].Add(t.UnblendedCost)
			}
		}
		costs[snap] = m
		return m[customer], nil
	}
	rb := &rebilling.Rebiller{Lake: &rebillingLake{lake: lake}, Records: store}
	var adjusted []string
	for _, c := range affected {
		before, err := costOf(c.Snapshots[payerID], c.CustomerID)
		if err != nil {
			return adjusted, err
		}
		after, err := costOf(snapshotID, c.CustomerID)
		if err != nil {
			return adjusted, err
		}
		earlier, err := store.AdjustmentsOf(ctx, c.CustomerID, p.String(), payerID)
		if err != nil {
			return adjusted, err
		}
		amount := after.Sub(before)
		done := false
		for _, e := range earlier {
			done = done || e.AssemblyID == assembly // recorded already (a retry, or a catch-up)
			amount = amount.Sub(e.Amount)
		}
		if done {
			continue
		}
		// Priced like the lines it adjusts: the difference of the two
		// snapshots at the closed cycle's pinned pricebook, less what
		// earlier adjustments charged.
		resaleBefore, version, atCost, err := rb.CycleResale(ctx, c, payerID, c.Snapshots[payerID])
		if err != nil {
			return adjusted, rebillingError(err)
		}
		var resale *money.Amount
		if !atCost {
			resaleAfter, _, _, err := rb.CycleResale(ctx, c, payerID, snapshotID)
			if err != nil {
				return adjusted, rebillingError(err)
			}
			r := resaleAfter.Sub(resaleBefore)
			for _, e := range earlier {
				if e.Resale != nil {
					r = r.Sub(*e.Resale)
				} else {
					r = r.Sub(e.Amount)
				}
			}
			resale = &r
		}
		if amount.IsZero() && (resale == nil || resale.IsZero()) {
			continue
		}
		if _, _, err := store.RecordAdjustment(ctx, reseller.Adjustment{CustomerID: c.CustomerID, OriginPeriod: p.String(),
			PayerAccountID: payerID, Amount: amount, AssemblyID: assembly, SnapshotID: snapshotID, Resale: resale, PricebookVersion: version}); err != nil {
			return adjusted, err
		}
		adjusted = append(adjusted, c.CustomerID)
	}
	return adjusted, nil
}
