package rebilling

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
)

// pricer compiles the pricebook version a closed cycle pinned.
func (r *Rebiller) pricer(ctx context.Context, c reseller.Cycle) (*pricing.Pricer, error) {
	pv, err := r.Records.PricebookVersionOf(ctx, c.CustomerID, c.PricebookVersion)
	if errors.Is(err, reseller.ErrNotFound) {
		return nil, fail(ErrNoPricebook, "%v", err)
	} else if err != nil {
		return nil, err
	}
	p, err := pricing.Decode(pv.Body)
	if err != nil {
		return nil, fail(ErrBadPricebook, "customer %s's pricebook version %d: %v", c.CustomerID, pv.Version, err)
	}
	p.CustomerID, p.Version = c.CustomerID, pv.Version
	pr, err := pricing.NewPricer(p)
	if err != nil {
		return nil, fail(ErrBadPricebook, "customer %s's pricebook version %d: %v", c.CustomerID, pv.Version, err)
	}
	return pr, nil
}

// CycleJob names the closed cycle to price and where its exports go.
type CycleJob struct {
	CustomerID string
	Period     string
	// Targets opens the customer's exports (none: the customer has no
	// export destination); it is called once the cycle and its pricebook
	// are found, and done is called when the pass has finished.
	Targets func(ctx context.Context) (targets []Target, done func(), err error)
	// Resume, when set, is the last checkpoint of an earlier attempt: the
	// payers it finished are not priced again.
	Resume *PriceCheckpoint
	// Checkpoint, when set, is called after each payer is finished (an
	// activity heartbeats it, so a retry gets it as Resume).
	Checkpoint func(PriceCheckpoint)
}

// PriceCheckpoint is how far a pricing pass got: the payers finished, in
// order, and everything they contributed.
type PriceCheckpoint struct {
	Pins         string         `json:"pins"`
	WritesResale bool           `json:"writes_resale"`
	Done         []string       `json:"done"`
	Totals       pricing.Totals `json:"totals"`
	Rows         int64          `json:"rows"`
	Exports      []ExportRef    `json:"exports"`
	ResaleFiles  []string       `json:"resale_files,omitempty"`
	ResaleRows   int64          `json:"resale_rows,omitempty"`
	Currencies   []string       `json:"currencies,omitempty"`
}

// PriceCycle prices a closed cycle and writes what it owes: it streams,
// per payer, the line items of the snapshot the cycle pinned (never the
// current table) of the customer's accounts, prices each with the pinned
// pricebook version, replaces the customer's period in
// billing.resale_line_items in one snapshot, and writes the customer's
// export (one per payer, with a manifest). The bill carries the
// adjustments recorded for this cycle (restatements of closed cycles).
// Running it again for the same closed cycle writes nothing when the
// table and every export are already there: the bill is then read back
// from billing.resale_line_items. Otherwise the run starts over (the
// table's files and the exports' keys are deterministic, so nothing is
// written twice).
func (r *Rebiller) PriceCycle(ctx context.Context, job CycleJob) (PriceResult, error) {
	c, err := r.Records.CycleOf(ctx, job.CustomerID, job.Period)
	if errors.Is(err, reseller.ErrNotFound) {
		return PriceResult{}, fail(ErrNotClosed, "%v", err)
	} else if err != nil {
		return PriceResult{}, err
	}
	pr, err := r.pricer(ctx, c)
	if err != nil {
		return PriceResult{}, err
	}
	owners, err := r.Records.Owners(ctx, job.Period)
	if err != nil {
		return PriceResult{}, err
	}
	adjs, err := r.Records.Adjustments(ctx, job.CustomerID, job.Period)
	if err != nil {
		return PriceResult{}, err
	}
	var targets []Target
	if job.Targets != nil {
		var done func()
		if targets, done, err = job.Targets(ctx); err != nil {
			return PriceResult{}, err
		}
		if done != nil {
			defer done()
		}
	}
	payers := slices.Sorted(maps.Keys(c.Snapshots))
	pins := Pins(c.PricebookVersion, c.Snapshots)
	progress := &Progress{Stage: "pricing", CustomerID: job.CustomerID}

	prevSnap, prevPins, tableDone, err := r.Lake.LatestResale(ctx, job.CustomerID, job.Period)
	if err != nil {
		return PriceResult{}, err
	}
	tableDone = tableDone && prevPins == pins
	stored, invoiced, err := r.storedInvoice(ctx, job.CustomerID, job.Period, pins)
	if err != nil {
		return PriceResult{}, err
	}
	if tableDone {
		if refs, ok := existingExports(ctx, targets, payers, c); ok {
			if urls, ok := invoiceExported(ctx, targets, job.CustomerID, job.Period); ok && invoiced {
				return PriceResult{Bill: stored.Bill, Rows: stored.Rows, ResaleSnapshotID: prevSnap, Exports: refs, Invoices: urls, Replayed: true}, nil
			}
			if !invoiced {
				// Priced before invoices were kept: its bill is read back
				// from its resale rows, as it was charged then.
				s := StoredInvoice{}
				var totals pricing.Totals
				err := r.Lake.ScanResale(ctx, job.CustomerID, job.Period, prevSnap, func(r *ResaleRow) error {
					totals.Add(pricing.LineItem{AccountID: r.UsageAccountID, LineItemType: r.LineItemType, ProductCode: r.ProductCode,
						ServiceCode: r.ServiceCode, UsageType: r.UsageType, UnblendedCost: r.UnblendedCost}, r.ResaleCost, pricing.RuleRef(r.Rule))
					s.Rows++
					return nil
				})
				if err != nil {
					return PriceResult{}, err
				}
				if s.Bill, err = pr.Invoice(job.Period, totals); err != nil {
					return PriceResult{}, fail(ErrBadPricebook, "%v", err)
				}
				addAdjustments(&s.Bill, adjs)
				pr.AddTaxes(&s.Bill)
				s.Withheld = totals.Withheld
				stored, invoiced = s, true
			}
			s, urls, err := r.keepInvoice(ctx, pins, stored, targets, refs)
			if err != nil {
				return PriceResult{}, err
			}
			return PriceResult{Bill: s.Bill, Rows: s.Rows, ResaleSnapshotID: prevSnap, Exports: refs, Invoices: urls, Replayed: true}, nil
		}
	}

	var rw ResaleWriter
	if !tableDone {
		sum := sha256.Sum256([]byte(job.CustomerID + "\x00" + job.Period + "\x00" + pins))
		if rw, err = r.Lake.NewResaleWriter(ctx, job.CustomerID, job.Period, "cycle-"+hex.EncodeToString(sum[:8])); err != nil {
			return PriceResult{}, err
		}
		defer rw.Abort()
	}
	var totals pricing.Totals
	currency := &currencyCheck{pr: pr}
	res := PriceResult{Exports: []ExportRef{}}
	ck := PriceCheckpoint{Pins: pins, WritesResale: rw != nil, Done: []string{}, Exports: []ExportRef{}}
	if rs := job.Resume; rs != nil && rs.Pins == pins && rs.WritesResale == (rw != nil) {
		// An earlier attempt finished these payers: their totals, exports
		// and resale files stand.
		ck = *rs
		totals.Merge(rs.Totals)
		res.Rows, res.Exports, currency.seen = rs.Rows, slices.Clone(rs.Exports), slices.Clone(rs.Currencies)
		if rw != nil {
			rw.Resume(rs.ResaleFiles, rs.ResaleRows)
		}
	}
	for _, payerID := range payers {
		snap := c.Snapshots[payerID]
		if snap == 0 || slices.Contains(ck.Done, payerID) {
			continue // nothing was committed when the cycle closed, or priced already
		}
		progress.PayerAccountID = payerID
		p := &pass{payerID: payerID, period: job.Period, snapshot: snap,
			accounts: accountFilter(owners, payerID, job.CustomerID),
			keep:     func(acct string) bool { return reseller.Owner(owners, payerID, acct) == job.CustomerID },
			pr:       pr, totals: &totals, resale: rw, customer: job.CustomerID, version: c.PricebookVersion,
			targets: targets, progress: progress, withhold: true, currency: currency}
		refs, err := r.run(ctx, p)
		if err != nil {
			return PriceResult{}, err
		}
		res.Exports = append(res.Exports, refs...)
		res.Rows += p.rows
		if job.Checkpoint != nil {
			if rw != nil {
				if ck.ResaleFiles, ck.ResaleRows, err = rw.Checkpoint(); err != nil {
					return PriceResult{}, err
				}
			}
			ck.Done = append(slices.Clone(ck.Done), payerID)
			ck.Totals = pricing.Totals{}
			ck.Totals.Merge(totals) // a copy: the heartbeat may be sent later
			ck.Rows, ck.Exports, ck.Currencies = res.Rows, slices.Clone(res.Exports), slices.Clone(currency.seen)
			job.Checkpoint(ck)
		}
	}
	if rw != nil {
		progress.Stage = "committing"
		r.report(progress)
		if res.ResaleSnapshotID, err = rw.Commit(ctx, pins); err != nil {
			return PriceResult{}, err
		}
	} else {
		res.ResaleSnapshotID = prevSnap
	}
	bill, err := pr.Invoice(job.Period, totals)
	if err != nil {
		return PriceResult{}, fail(ErrBadPricebook, "%v", err)
	}
	bill.Currency = currency.currency()
	addAdjustments(&bill, adjs)
	pr.AddTaxes(&bill)
	s, urls, err := r.keepInvoice(ctx, pins, StoredInvoice{Bill: bill, Rows: res.Rows, Withheld: totals.Withheld}, targets, res.Exports)
	if err != nil {
		return PriceResult{}, err
	}
	res.Bill, res.Invoices = s.Bill, urls
	return res, nil
}

// addAdjustments adds the adjustments that apply to a cycle to its bill,
// one line each (see pricing.LineAdjustment).
func addAdjustments(b *pricing.Bill, adjs []reseller.Adjustment) {
	lines := make([]pricing.BillLine, 0, len(adjs))
	for _, a := range adjs {
		lines = append(lines, pricing.AdjustmentLine(a.OriginPeriod, a.PayerAccountID, a.AssemblyID, a.Amount, a.Resale, a.PricebookVersion))
	}
	pricing.AddLines(b, lines...)
}

// existingExports returns the manifests of a cycle's exports when every
// one of them is complete (its manifest is written last).
func existingExports(ctx context.Context, targets []Target, payers []string, c reseller.Cycle) ([]ExportRef, bool) {
	refs := []ExportRef{}
	for _, payerID := range payers {
		if c.Snapshots[payerID] == 0 {
			continue
		}
		for _, t := range targets {
			spec := t.spec(payerID, c.Period, nil, "")
			m, err := export.ReadManifest(ctx, t.Dest.Store, spec)
			if err != nil {
				return nil, false
			}
			refs = append(refs, t.ref(payerID, m, spec.ManifestKey()))
		}
	}
	return refs, true
}

// CycleResale prices a closed cycle's customer's line items of one payer
// in a snapshot (0: none) with the pricebook version the cycle pinned,
// and returns the resale, withheld lines at 0; atCost tells that the
// pricebook carries adjustments at cost instead. Restatements after close
// are the difference of two of these.
func (r *Rebiller) CycleResale(ctx context.Context, c reseller.Cycle, payerID string, snapshot int64) (resale money.Amount, version int, atCost bool, err error) {
	pr, err := r.pricer(ctx, c)
	if err != nil {
		return resale, 0, false, err
	}
	version, atCost = pr.Pricebook().Version, pr.Pricebook().AdjustmentsAtCost
	if snapshot == 0 || atCost {
		return resale, version, atCost, nil
	}
	owners, err := r.Records.Owners(ctx, c.Period)
	if err != nil {
		return resale, version, atCost, err
	}
	scan := Scan{Payer: payerID, Period: c.Period, SnapshotID: snapshot, Accounts: accountFilter(owners, payerID, c.CustomerID), Columns: pricing.Columns}
	err = r.Lake.ScanLineItems(ctx, scan, func(rec *billing.Record) error {
		item, err := lineItemOf(rec)
		if err != nil || reseller.Owner(owners, payerID, item.AccountID) != c.CustomerID {
			return err
		}
		v, _ := pr.Resale(item)
		resale = resale.Add(v)
		return nil
	})
	return resale, version, atCost, err
}
