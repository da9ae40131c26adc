package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/cycle"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/ingest"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// cycleColumns are the line item columns a closed cycle reads: what
// pricing needs (pricing.Columns) and what export.FromRecord prints.
var cycleColumns = func() []string {
	cols := slices.Clone(pricing.Columns)
	for _, c := range []string{
		billing.ColBillInvoiceID, billing.ColPayerAccountID, billing.ColLineItemID, billing.ColProduct,
		"pricing_rate_id", "reservation_subscription_id", "line_item_operation", "line_item_availability_zone",
		"line_item_line_item_description", billing.ColUsageStartDate, "line_item_usage_end_date",
		"line_item_usage_amount", "line_item_blended_rate", "line_item_blended_cost", "line_item_unblended_rate",
		"line_item_resource_id", billing.ColResourceTags,
	} {
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	return cols
}()

var (
	ciAccount    = billing.LineItems.MustIndex(billing.ColUsageAccountID)
	ciType       = billing.LineItems.MustIndex(billing.ColLineItemType)
	ciProduct    = billing.LineItems.MustIndex(billing.ColProductCode)
	ciService    = billing.LineItems.MustIndex("product_servicecode")
	ciUsageType  = billing.LineItems.MustIndex("line_item_usage_type")
	ciCost       = billing.LineItems.MustIndex(billing.ColUnblendedCost)
	ciLineItemID = billing.LineItems.MustIndex(billing.ColLineItemID)
)

// heartbeatEvery is how many line items a cycle prices between heartbeats.
const heartbeatEvery = 5000

// CycleProgress is the heartbeat of a cycle's pricing and exports.
type CycleProgress struct {
	Stage          string `json:"stage"`
	CustomerID     string `json:"customer_id,omitempty"`
	PayerAccountID string `json:"payer_account_id,omitempty"`
	Rows           int64  `json:"rows"`
}

func cycleError(typ, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError(msg, typ, nil)
}

func (a *Activities) resellerStore() (*reseller.Store, error) {
	if a.Reseller == nil {
		return nil, cycleError(cycle.ErrTypeNoReseller, "the worker has no reseller records")
	}
	return a.Reseller, nil
}

// CheckCycleFinal tells whether a customer's period is final: every payer
// holding the customer's accounts has committed the period with invoice
// IDs on its line items, or the period ended FinalAfterDays before AsOf.
// A closed cycle is final.
func (a *Activities) CheckCycleFinal(ctx context.Context, in cycle.CheckFinalInput) (cycle.CheckFinalResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.CheckFinalResult{}, err
	}
	finalByDate, finalAt, ok := cycle.FinalByDate(in.Period, in.FinalAfterDays, in.AsOf)
	if !ok {
		return cycle.CheckFinalResult{}, cycleError(cycle.ErrTypeInvalidInput, "period %q: want YYYY-MM", in.Period)
	}
	res := cycle.CheckFinalResult{FinalAt: finalAt, Payers: []cycle.PayerStatus{}}
	if c, err := store.CycleOf(ctx, in.CustomerID, in.Period); err == nil {
		for _, p := range slices.Sorted(maps.Keys(c.Snapshots)) {
			res.Payers = append(res.Payers, cycle.PayerStatus{PayerAccountID: p, Committed: c.Snapshots[p] != 0, SnapshotID: c.Snapshots[p]})
		}
		res.Final, res.Closed, res.Reason = true, true, "closed on "+c.ClosedAt
		return res, nil
	} else if !errors.Is(err, reseller.ErrNotFound) {
		return res, err
	}
	assignments, err := store.CustomerAccounts(ctx, in.CustomerID, in.Period)
	if err != nil {
		return res, err
	}
	tbl, err := a.Lake.LineItems(ctx)
	if err != nil {
		return res, err
	}
	invoiced := len(assignments) > 0
	var waiting []string
	for _, as := range assignments {
		st := cycle.PayerStatus{PayerAccountID: as.PayerAccountID}
		if c, ok := lakehouse.LatestPeriodCommit(tbl, as.PayerAccountID, in.Period); ok {
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
		res.Reason = fmt.Sprintf("the customer owns no accounts in %s; final on %s", in.Period, finalAt.Format("2006-01-02"))
	default:
		res.Reason = fmt.Sprintf("payer %s has no invoice IDs yet; final on %s at the latest", strings.Join(waiting, ", "), finalAt.Format("2006-01-02"))
	}
	return res, nil
}

// FreezeCycle closes a customer's cycle: it pins, per payer holding the
// customer's accounts, the period's current line_items snapshot (0 when
// nothing is committed), and the pricebook version in force. A cycle
// already closed keeps its pins: running it again returns them.
func (a *Activities) FreezeCycle(ctx context.Context, in cycle.FreezeInput) (cycle.FreezeResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	closed := func(c reseller.Cycle, already bool) cycle.FreezeResult {
		return cycle.FreezeResult{PricebookVersion: c.PricebookVersion, Snapshots: c.Snapshots, ClosedAt: c.ClosedAt, AlreadyClosed: already}
	}
	if c, err := store.CycleOf(ctx, in.CustomerID, in.Period); err == nil {
		return closed(c, true), nil
	} else if !errors.Is(err, reseller.ErrNotFound) {
		return cycle.FreezeResult{}, err
	}
	// Restatements of earlier closed cycles that no ingestion recorded go
	// to this cycle, the customer's next open one, before it closes.
	if err := a.catchUpAdjustments(ctx, in.CustomerID); err != nil {
		return cycle.FreezeResult{}, err
	}
	pv, err := store.PricebookFor(ctx, in.CustomerID, in.Period)
	if errors.Is(err, reseller.ErrNotFound) {
		return cycle.FreezeResult{}, cycleError(cycle.ErrTypeNoPricebook, "%v", err)
	} else if err != nil {
		return cycle.FreezeResult{}, err
	}
	if _, err := pricing.Decode(pv.Body); err != nil {
		return cycle.FreezeResult{}, cycleError(cycle.ErrTypeBadPricebook, "customer %s's pricebook version %d: %v", in.CustomerID, pv.Version, err)
	}
	assignments, err := store.CustomerAccounts(ctx, in.CustomerID, in.Period)
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	tbl, err := a.Lake.LineItems(ctx)
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	snaps := map[string]int64{}
	for _, as := range assignments {
		c, _ := lakehouse.LatestPeriodCommit(tbl, as.PayerAccountID, in.Period)
		snaps[as.PayerAccountID] = c.SnapshotID
	}
	err = store.CloseCycle(ctx, reseller.Cycle{CustomerID: in.CustomerID, Period: in.Period, PricebookVersion: pv.Version, Snapshots: snaps})
	if err != nil && !errors.Is(err, reseller.ErrClosed) {
		return cycle.FreezeResult{}, err
	}
	// Closed now, by this call or (ErrClosed) by a concurrent one whose
	// pins win: closed means closed.
	c, err := store.CycleOf(ctx, in.CustomerID, in.Period)
	if err != nil {
		return cycle.FreezeResult{}, err
	}
	return closed(c, !maps.Equal(c.Snapshots, snaps) || c.PricebookVersion != pv.Version), nil
}

// cyclePricer compiles the pricebook version a closed cycle pinned.
func (a *Activities) cyclePricer(ctx context.Context, store *reseller.Store, c reseller.Cycle) (*pricing.Pricer, error) {
	pv, err := store.PricebookVersionOf(ctx, c.CustomerID, c.PricebookVersion)
	if errors.Is(err, reseller.ErrNotFound) {
		return nil, cycleError(cycle.ErrTypeNoPricebook, "%v", err)
	} else if err != nil {
		return nil, err
	}
	p, err := pricing.Decode(pv.Body)
	if err != nil {
		return nil, cycleError(cycle.ErrTypeBadPricebook, "customer %s's pricebook version %d: %v", c.CustomerID, pv.Version, err)
	}
	p.CustomerID, p.Version = c.CustomerID, pv.Version
	pr, err := pricing.NewPricer(p)
	if err != nil {
		return nil, cycleError(cycle.ErrTypeBadPricebook, "customer %s's pricebook version %d: %v", c.CustomerID, pv.Version, err)
	}
	return pr, nil
}

// lineItemOf reads what pricing needs from a canonical record.
func lineItemOf(rec *billing.Record) (pricing.LineItem, error) {
	v := rec.Values
	item := pricing.LineItem{AccountID: v[ciAccount], LineItemType: v[ciType], ProductCode: v[ciProduct], ServiceCode: v[ciService], UsageType: v[ciUsageType]}
	if s := v[ciCost]; s != "" {
		c, err := money.Parse(s)
		if err != nil {
			return item, cycleError(cycle.ErrTypeBadLineItem, "line item %s: %s %q: %v", v[ciLineItemID], billing.ColUnblendedCost, s, err)
		}
		item.UnblendedCost = c
	}
	return item, nil
}

// accountFilter lists the accounts of payer a customer owns, or nil when
// it owns the whole payer (rows are then checked one by one with
// reseller.Owner, since accounts assigned to others stay theirs).
func accountFilter(owners map[[2]string]string, payerID, customer string) []string {
	if owners[[2]string{payerID, reseller.AllAccounts}] == customer {
		return nil
	}
	accts := []string{}
	for k, c := range owners {
		if k[0] == payerID && c == customer && k[1] != reseller.AllAccounts {
			accts = append(accts, k[1])
		}
	}
	slices.Sort(accts)
	return accts
}

// destination is an opened export destination.
type destination struct {
	store blob.Store
	loc   blob.Location
}

// url names a key of the destination as a URL: s3://bucket/key,
// gs://bucket/key or file:///key.
func (d destination) url(key string) string {
	if d.loc.Scheme == "file" {
		return "file:///" + key
	}
	return d.loc.Scheme + "://" + d.loc.Bucket + "/" + key
}

func (d destination) close() {
	if c, ok := d.store.(io.Closer); ok {
		_ = c.Close()
	}
}

// openDestination opens an export destination: S3 with the given role
// when set, GCS and local folders with the worker's own credentials. The
// role session names the customer whose export it is ("" for the
// reseller's own).
func (a *Activities) openDestination(ctx context.Context, url string, access *payer.Access, customer string) (destination, error) {
	loc, err := blob.ParseLocation(url)
	if err != nil {
		return destination{}, cycleError(cycle.ErrTypeDestination, "export destination: %v", err)
	}
	if err := a.refuseReserved(loc); err != nil {
		return destination{}, cycleError(cycle.ErrTypeDestination, "%v", err)
	}
	opener := a.Blobs
	if access != nil && loc.Scheme == "s3" {
		cfg, err := a.payerConfig(ctx, *access, awsauth.Session{Purpose: "export", Customer: customer})
		if err != nil {
			return destination{}, err
		}
		opener.S3.Credentials = cfg.Credentials
		if access.Region != "" {
			opener.S3.Region = access.Region
		}
	}
	store, err := opener.Open(ctx, loc)
	if errors.Is(err, blob.ErrOutsideRoot) {
		return destination{}, cycleError(cycle.ErrTypeDestination, "export destination: %v", err)
	}
	if err != nil {
		return destination{}, classify(err)
	}
	return destination{store: store, loc: loc}, nil
}

// exportTarget is one export of a payer's line items.
type exportTarget struct {
	dest     destination
	prefix   string // inside the store
	mode     export.Mode
	gzip     bool
	customer string
}

func (t exportTarget) spec(payerID, period string, tags []string, tempDir string) export.Spec {
	return export.Spec{AccountID: payerID, Period: period, Mode: t.mode, Prefix: t.prefix, Gzip: t.gzip,
		TagKeys: tags, DropUndeclaredTags: true, TempDir: tempDir}
}

func (t exportTarget) ref(payerID string, m *export.Manifest, key string) cycle.ExportRef {
	return cycle.ExportRef{URL: t.dest.url(key), Store: t.dest.store.String(), ManifestKey: key, CustomerID: t.customer,
		PayerAccountID: payerID, Mode: string(t.mode), Files: len(m.Files), Rows: m.Totals.Rows, UnblendedCost: m.Totals.UnBlendedCost}
}

func modeFolder(m export.Mode) string {
	if m == export.AtCost {
		return cycle.ExportFolderAtCost
	}
	return cycle.ExportFolderAtResale
}

// tagColumns returns the export tag columns of the selected line items,
// one per resource_tags key, and the name of each key's column.
func (a *Activities) tagColumns(ctx context.Context, s lakehouse.LineItemScan) ([]string, export.TagNames, error) {
	keys, err := a.Lake.TagKeys(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	names := export.NewTagNames(keys)
	return names.Columns(keys), names, nil
}

// payerPass streams one payer's pinned line items once: every row the
// keep function accepts is priced (when pr is set) and handed to the
// resale writer (when set) and to each export.
type payerPass struct {
	a        *Activities
	payerID  string
	period   string
	snapshot int64
	accounts []string // nil: every account
	keep     func(account string) bool
	pr       *pricing.Pricer
	totals   *pricing.Totals
	resale   *lakehouse.ResaleWriter
	customer string
	version  int
	targets  []exportTarget
	progress *CycleProgress

	cost money.Amount // unblended cost of the rows kept
	rows int64
}

func (p *payerPass) run(ctx context.Context) ([]cycle.ExportRef, error) {
	scan := lakehouse.LineItemScan{Payer: p.payerID, Period: p.period, SnapshotID: p.snapshot, Accounts: p.accounts, Columns: cycleColumns}
	var writers []*export.Writer
	abort := func() {
		for _, w := range writers {
			w.Abort()
		}
	}
	activity.RecordHeartbeat(ctx, *p.progress)
	var names export.TagNames
	if len(p.targets) > 0 {
		tags, tagNames, err := p.a.tagColumns(ctx, scan)
		if err != nil {
			return nil, snapshotError(err)
		}
		names = tagNames
		for _, t := range p.targets {
			w, err := export.NewWriter(ctx, t.dest.store, t.spec(p.payerID, p.period, tags, p.a.TempDir))
			if err != nil {
				abort()
				return nil, err
			}
			writers = append(writers, w)
		}
	}
	var row export.Row
	err := p.a.Lake.ScanLineItems(ctx, scan, func(rec *billing.Record) error {
		item, err := lineItemOf(rec)
		if err != nil {
			return err
		}
		if !p.keep(item.AccountID) {
			return nil
		}
		var resale money.Amount
		var ref pricing.RuleRef
		if p.pr != nil {
			if p.totals != nil {
				resale, ref = p.pr.Add(p.totals, item)
			} else {
				resale, ref = p.pr.Resale(item)
			}
		}
		if p.resale != nil {
			r := lakehouse.ResaleRow{CustomerID: p.customer, Period: p.period, PayerAccountID: p.payerID, UsageAccountID: item.AccountID,
				LineItemID: rec.Values[ciLineItemID], LineItemType: item.LineItemType, ProductCode: item.ProductCode,
				ServiceCode: item.ServiceCode, UsageType: item.UsageType, UnblendedCost: item.UnblendedCost, ResaleCost: resale,
				Rule: string(ref), PricebookVersion: p.version, SourceSnapshotID: p.snapshot}
			if err := p.resale.Append(&r); err != nil {
				return err
			}
		}
		if len(writers) > 0 {
			if err := export.FromRecord(rec, &row, names); err != nil {
				return cycleError(cycle.ErrTypeBadLineItem, "line item %s: %v", rec.Values[ciLineItemID], err)
			}
			row.Resale = resale
			for _, w := range writers {
				if err := w.Write(&row); err != nil {
					return err
				}
			}
		}
		p.cost = p.cost.Add(item.UnblendedCost)
		p.rows++
		p.progress.Rows++
		if p.progress.Rows%heartbeatEvery == 0 {
			activity.RecordHeartbeat(ctx, *p.progress)
		}
		return nil
	})
	if err != nil {
		abort()
		return nil, snapshotError(err)
	}
	var refs []cycle.ExportRef
	for i, w := range writers {
		m, err := w.Close()
		if err != nil {
			abort()
			return nil, err
		}
		refs = append(refs, p.targets[i].ref(p.payerID, m, w.Spec().ManifestKey()))
	}
	return refs, nil
}

// snapshotError makes a pinned snapshot that no longer exists a named,
// non-retryable failure: retrying cannot bring it back.
func snapshotError(err error) error {
	if errors.Is(err, lakehouse.ErrSnapshotNotFound) {
		return cycleError(cycle.ErrTypeSnapshotGone, "%v", err)
	}
	return err
}

// customerTargets are the exports a customer's destination asks for: one,
// in the mode the customer chose (at resale unless at_cost), under
// <prefix>/at-resale or <prefix>/at-cost.
func (a *Activities) customerTargets(ctx context.Context, store *reseller.Store, customer string) ([]exportTarget, func(), error) {
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
	t := exportTarget{dest: d, prefix: d.loc.Key(modeFolder(mode)), mode: mode, gzip: c.Export.Gzip, customer: customer}
	return []exportTarget{t}, d.close, nil
}

// PriceAndExportCycle prices a closed cycle and writes what it owes: it
// streams, per payer, the line items of the snapshot the cycle pinned
// (never the current table) of the customer's accounts, prices each with
// the pinned pricebook version, replaces the customer's period in
// billing.resale_line_items in one snapshot, and writes the customer's
// export (one per payer, with a manifest) to their destination. The bill
// carries the adjustments recorded for this cycle (restatements of closed
// cycles). Running it again for the same closed cycle writes nothing when
// the table and every export are already there: the bill is then read back
// from billing.resale_line_items. Otherwise the run starts over (the
// table's files and the exports' keys are deterministic, so nothing is
// written twice); heartbeats report the rows priced.
func (a *Activities) PriceAndExportCycle(ctx context.Context, in cycle.PriceInput) (cycle.PriceResult, error) {
	store, err := a.resellerStore()
	if err != nil {
		return cycle.PriceResult{}, err
	}
	c, err := store.CycleOf(ctx, in.CustomerID, in.Period)
	if errors.Is(err, reseller.ErrNotFound) {
		return cycle.PriceResult{}, cycleError(cycle.ErrTypeNotClosed, "%v", err)
	} else if err != nil {
		return cycle.PriceResult{}, err
	}
	pr, err := a.cyclePricer(ctx, store, c)
	if err != nil {
		return cycle.PriceResult{}, err
	}
	owners, err := store.Owners(ctx, in.Period)
	if err != nil {
		return cycle.PriceResult{}, err
	}
	adjs, err := store.Adjustments(ctx, in.CustomerID, in.Period)
	if err != nil {
		return cycle.PriceResult{}, err
	}
	targets, closeTargets, err := a.customerTargets(ctx, store, in.CustomerID)
	if err != nil {
		return cycle.PriceResult{}, err
	}
	defer closeTargets()
	payers := slices.Sorted(maps.Keys(c.Snapshots))
	pins := cycle.Pins(c.PricebookVersion, c.Snapshots)
	progress := &CycleProgress{Stage: "pricing", CustomerID: in.CustomerID}

	rtbl, err := a.Lake.ResaleLineItems(ctx)
	if err != nil {
		return cycle.PriceResult{}, err
	}
	prev, tableDone := lakehouse.LatestResaleCommit(rtbl, in.CustomerID, in.Period)
	tableDone = tableDone && prev.Pins == pins
	if tableDone {
		if refs, ok := existingExports(ctx, targets, payers, c); ok {
			var totals pricing.Totals
			var rows int64
			err := a.Lake.ScanResale(ctx, in.CustomerID, in.Period, prev.SnapshotID, func(r *lakehouse.ResaleRow) error {
				totals.Add(pricing.LineItem{AccountID: r.UsageAccountID, LineItemType: r.LineItemType, ProductCode: r.ProductCode,
					ServiceCode: r.ServiceCode, UsageType: r.UsageType, UnblendedCost: r.UnblendedCost}, r.ResaleCost, pricing.RuleRef(r.Rule))
				rows++
				return nil
			})
			if err != nil {
				return cycle.PriceResult{}, err
			}
			bill, err := pr.Invoice(in.Period, totals)
			if err != nil {
				return cycle.PriceResult{}, cycleError(cycle.ErrTypeBadPricebook, "%v", err)
			}
			addAdjustments(&bill, adjs)
			return cycle.PriceResult{Bill: bill, Rows: rows, ResaleSnapshotID: prev.SnapshotID, Exports: refs, Replayed: true}, nil
		}
	}

	var rw *lakehouse.ResaleWriter
	if !tableDone {
		sum := sha256.Sum256([]byte(in.CustomerID + "\x00" + in.Period + "\x00" + pins))
		if rw, err = a.Lake.NewResaleWriter(ctx, in.CustomerID, in.Period, "cycle-"+hex.EncodeToString(sum[:8])); err != nil {
			return cycle.PriceResult{}, err
		}
		defer rw.Abort()
	}
	var totals pricing.Totals
	res := cycle.PriceResult{Exports: []cycle.ExportRef{}}
	for _, payerID := range payers {
		snap := c.Snapshots[payerID]
		if snap == 0 {
			continue // nothing was committed when the cycle closed
		}
		progress.PayerAccountID = payerID
		pass := &payerPass{a: a, payerID: payerID, period: in.Period, snapshot: snap,
			accounts: accountFilter(owners, payerID, in.CustomerID),
			keep:     func(acct string) bool { return reseller.Owner(owners, payerID, acct) == in.CustomerID },
			pr:       pr, totals: &totals, resale: rw, customer: in.CustomerID, version: c.PricebookVersion,
			targets: targets, progress: progress}
		refs, err := pass.run(ctx)
		if err != nil {
			return cycle.PriceResult{}, err
		}
		res.Exports = append(res.Exports, refs...)
		res.Rows += pass.rows
	}
	if rw != nil {
		files, err := rw.Close()
		if err != nil {
			return cycle.PriceResult{}, err
		}
		progress.Stage = "committing"
		activity.RecordHeartbeat(ctx, *progress)
		if res.ResaleSnapshotID, _, err = a.Lake.ReplaceResale(ctx, in.CustomerID, in.Period, pins, files, rw.Rows()); err != nil {
			return cycle.PriceResult{}, err
		}
	} else {
		res.ResaleSnapshotID = prev.SnapshotID
	}
	bill, err := pr.Invoice(in.Period, totals)
	if err != nil {
		return cycle.PriceResult{}, cycleError(cycle.ErrTypeBadPricebook, "%v", err)
	}
	addAdjustments(&bill, adjs)
	res.Bill = bill
	return res, nil
}

// addAdjustments adds the adjustments that apply to a cycle to its bill,
// one line each (see cycle.LineAdjustment).
func addAdjustments(b *pricing.Bill, adjs []reseller.Adjustment) {
	lines := make([]pricing.BillLine, 0, len(adjs))
	for _, a := range adjs {
		lines = append(lines, cycle.AdjustmentLine(a.OriginPeriod, a.PayerAccountID, a.AssemblyID, a.Amount))
	}
	cycle.AddLines(b, lines...)
}

// existingExports returns the manifests of a cycle's exports when every
// one of them is complete (its manifest is written last).
func existingExports(ctx context.Context, targets []exportTarget, payers []string, c reseller.Cycle) ([]cycle.ExportRef, bool) {
	refs := []cycle.ExportRef{}
	for _, payerID := range payers {
		if c.Snapshots[payerID] == 0 {
			continue
		}
		for _, t := range targets {
			spec := t.spec(payerID, c.Period, nil, "")
			m, err := export.ReadManifest(ctx, t.dest.store, spec)
			if err != nil {
				return nil, false
			}
			refs = append(refs, t.ref(payerID, m, spec.ManifestKey()))
		}
	}
	return refs, true
}

// ExportResellerPeriod writes the reseller's own export of a period to
// in.URL: for every closed customer cycle, its pinned line items at cost
// and at resale (customers/<customer>/at-cost|at-resale/), and per payer
// the usage of accounts no customer owns (unassigned/at-cost/), read from
// the payer's current snapshot of the period. A summary
// (costlake-reseller-<period>-summary.json, written last) reconciles
// every payer exactly: Total = sum(Customers) + Restated + Open +
// Unassigned, where Restated is what restatements changed for closed
// customers since they closed (their adjustments) and Open the usage of
// customers not closed yet (refused unless AllowOpenCycles).
func (a *Activities) ExportResellerPeriod(ctx context.Context, in cycle.ResellerExportInput) (cycle.ResellerExportResult, error) {
	res := cycle.ResellerExportResult{Period: in.Period, Customers: []string{}, OpenCycles: []string{}, Exports: []cycle.ExportRef{}}
	store, err := a.resellerStore()
	if err != nil {
		return res, err
	}
	if !cycle.ValidPeriod(in.Period) {
		return res, cycleError(cycle.ErrTypeInvalidInput, "period %q: want YYYY-MM", in.Period)
	}
	owners, err := store.Owners(ctx, in.Period)
	if err != nil {
		return res, err
	}
	tbl, err := a.Lake.LineItems(ctx)
	if err != nil {
		return res, err
	}
	payers := lakehouse.PayersOfPeriod(tbl, in.Period)
	closedList, err := store.ClosedCycles(ctx, in.Period)
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
	if len(res.OpenCycles) > 0 && !in.AllowOpenCycles {
		return res, cycleError(cycle.ErrTypeOpenCycles, "customers %s own accounts in %s but have not closed it; close their cycles first, or export with allow_open_cycles",
			strings.Join(res.OpenCycles, ", "), in.Period)
	}
	d, err := a.openDestination(ctx, in.URL, in.Access, "")
	if err != nil {
		return res, err
	}
	defer d.close()
	progress := &CycleProgress{Stage: "reseller-export"}

	// Closed customers: their pinned line items, at cost and at resale.
	atPin := map[string]map[string]money.Amount{} // payer → customer → cost in the pinned snapshot
	for _, customer := range res.Customers {
		c := closed[customer]
		pr, err := a.cyclePricer(ctx, store, c)
		if err != nil {
			return res, err
		}
		base := d.loc.Key(cycle.ResellerCustomersFolder, customer)
		targets := []exportTarget{
			{dest: d, prefix: path.Join(base, cycle.ExportFolderAtCost), mode: export.AtCost, gzip: in.Gzip, customer: customer},
			{dest: d, prefix: path.Join(base, cycle.ExportFolderAtResale), mode: export.AtResale, gzip: in.Gzip, customer: customer},
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
			pass := &payerPass{a: a, payerID: payerID, period: in.Period, snapshot: snap,
				accounts: accountFilter(owners, payerID, customer),
				keep:     func(acct string) bool { return reseller.Owner(owners, payerID, acct) == customer },
				pr:       pr, targets: targets, progress: progress}
			refs, err := pass.run(ctx)
			if err != nil {
				return res, err
			}
			res.Exports = append(res.Exports, refs...)
			atPin[payerID][customer] = pass.cost
			res.CustomerSum = res.CustomerSum.Add(pass.cost)
		}
	}

	// Per payer: unassigned usage from the current snapshot, and the
	// reconciliation of the whole period.
	progress.CustomerID = ""
	for _, payerID := range payers {
		progress.PayerAccountID = payerID
		activity.RecordHeartbeat(ctx, *progress)
		commit, _ := lakehouse.LatestPeriodCommit(tbl, payerID, in.Period)
		rec := cycle.PayerReconciliation{PayerAccountID: payerID, SnapshotID: commit.SnapshotID, Customers: map[string]money.Amount{}}
		totals, err := a.Lake.PeriodTotals(ctx, billing.LineItems, payerID, in.Period, commit.SnapshotID)
		if err != nil {
			return res, err
		}
		atSnap := map[string]money.Amount{} // closed customer → cost in this snapshot
		var unassigned money.Amount
		for _, t := range ingest.ByAccount(totals) {
			rec.Total = rec.Total.Add(t.UnblendedCost)
			switch owner := reseller.Owner(owners, payerID, t.Account); {
			case owner == "":
				unassigned = unassigned.Add(t.UnblendedCost)
			case openSet[owner]:
				rec.Open = rec.Open.Add(t.UnblendedCost)
			default:
				atSnap[owner] = atSnap[owner].Add(t.UnblendedCost)
			}
		}
		for customer, cost := range atPin[payerID] {
			rec.Customers[customer] = cost
		}
		for customer := range atSnap {
			if _, ok := rec.Customers[customer]; !ok {
				rec.Customers[customer] = money.Amount{} // owns accounts here but pinned nothing of this payer
			}
		}
		for customer, cost := range rec.Customers {
			rec.Restated = rec.Restated.Add(atSnap[customer].Sub(cost))
		}
		pass := &payerPass{a: a, payerID: payerID, period: in.Period, snapshot: commit.SnapshotID,
			keep:     func(acct string) bool { return reseller.Owner(owners, payerID, acct) == "" },
			targets:  []exportTarget{{dest: d, prefix: d.loc.Key(cycle.ResellerUnassigned, cycle.ExportFolderAtCost), mode: export.AtCost, gzip: in.Gzip}},
			progress: progress}
		refs, err := pass.run(ctx)
		if err != nil {
			return res, err
		}
		res.Exports = append(res.Exports, refs...)
		rec.Unassigned, rec.UnassignedRows = pass.cost, pass.rows
		if rec.Unassigned.Cmp(unassigned) != 0 {
			return res, cycleError(ingest.ErrTypeReconciliation, "payer %s %s: unassigned rows exported sum to %s, the table's totals to %s", payerID, in.Period, rec.Unassigned, unassigned)
		}
		sum := rec.Restated.Add(rec.Open).Add(rec.Unassigned)
		for _, cost := range rec.Customers {
			sum = sum.Add(cost)
		}
		if sum.Cmp(rec.Total) != 0 {
			return res, cycleError(ingest.ErrTypeReconciliation, "payer %s %s: customers, restatements, open cycles and unassigned usage sum to %s, the period to %s", payerID, in.Period, sum, rec.Total)
		}
		res.Payers = append(res.Payers, rec)
	}

	res.SummaryKey = d.loc.Key(fmt.Sprintf("costlake-reseller-%s-summary.json", in.Period))
	res.SummaryURL = d.url(res.SummaryKey)
	body, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := d.store.Put(ctx, res.SummaryKey, bytes.NewReader(append(body, '\n'))); err != nil {
		return res, fmt.Errorf("write %s: %w", res.SummaryURL, err)
	}
	return res, nil
}

// AdjustClosedCycles runs after a commit replaced payer's period in
// billing.line_items: for every customer whose closed cycle pinned another
// snapshot of that period, the difference between the new snapshot's cost
// of the customer's accounts and the pinned one's (less what earlier
// restatements already adjusted) is recorded as an adjustment of the
// customer's next open cycle, once per assembly. The closed cycle, its
// pins and its resale rows never change. Without reseller records there is
// nothing to adjust.
func (a *Activities) AdjustClosedCycles(ctx context.Context, in ingest.AdjustClosedCyclesInput) (ingest.AdjustClosedCyclesResult, error) {
	var res ingest.AdjustClosedCyclesResult
	if a.Reseller == nil || schemaOf(in.Table) != billing.LineItems {
		return res, nil
	}
	cycles, err := a.Reseller.ClosedCycles(ctx, in.Period)
	if err != nil {
		return res, err
	}
	res.Customers, err = a.adjust(ctx, in.PayerAccountID, in.Period, in.AssemblyID, in.SnapshotID, cycles)
	return res, err
}

// catchUpAdjustments records the adjustments a customer's closed cycles
// still miss: where a payer's period was restated after the cycle pinned
// it and the ingestion could not record the difference. Closing the next
// cycle calls it before the cycle closes, so they apply to that cycle.
func (a *Activities) catchUpAdjustments(ctx context.Context, customer string) error {
	cycles, err := a.Reseller.CyclesOf(ctx, customer)
	if err != nil || len(cycles) == 0 {
		return err
	}
	tbl, err := a.Lake.LineItems(ctx)
	if err != nil {
		return err
	}
	for _, c := range cycles {
		for _, payerID := range slices.Sorted(maps.Keys(c.Snapshots)) {
			latest, ok := lakehouse.LatestPeriodCommit(tbl, payerID, c.Period)
			if !ok || latest.SnapshotID == c.Snapshots[payerID] {
				continue
			}
			_, err := a.adjust(ctx, payerID, c.Period, latest.AssemblyID, latest.SnapshotID, []reseller.Cycle{c})
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
func (a *Activities) adjust(ctx context.Context, payerID, period, assembly string, snapshotID int64, cycles []reseller.Cycle) ([]string, error) {
	store := a.Reseller
	var affected []reseller.Cycle
	for _, c := range cycles {
		if pinned, ok := c.Snapshots[payerID]; ok && pinned != snapshotID {
			affected = append(affected, c)
		}
	}
	if len(affected) == 0 {
		return nil, nil
	}
	owners, err := store.Owners(ctx, period)
	if err != nil {
		return nil, err
	}
	tbl, err := a.Lake.LineItems(ctx)
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
			return money.Amount{}, cycleError(cycle.ErrTypeSnapshotGone, "billing.line_items no longer has snapshot %d of payer %s %s", snap, payerID, period)
		}
		totals, err := a.Lake.PeriodTotals(ctx, billing.LineItems, payerID, period, snap)
		if err != nil {
			return money.Amount{}, err
		}
		m := map[string]money.Amount{}
		for _, t := range ingest.ByAccount(totals) {
			if owner := reseller.Owner(owners, payerID, t.Account); owner != "" {
				m[owner] = m[owner].Add(t.UnblendedCost)
			}
		}
		costs[snap] = m
		return m[customer], nil
	}
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
		earlier, err := store.AdjustmentsOf(ctx, c.CustomerID, period, payerID)
		if err != nil {
			return adjusted, err
		}
		amount := after.Sub(before)
		done := false
		for _, e := range earlier {
			done = done || e.AssemblyID == assembly // recorded already (a retry, or a catch-up)
			amount = amount.Sub(e.Amount)
		}
		if done || amount.IsZero() {
			continue
		}
		if _, _, err := store.RecordAdjustment(ctx, reseller.Adjustment{CustomerID: c.CustomerID, OriginPeriod: period,
			PayerAccountID: payerID, Amount: amount, AssemblyID: assembly, SnapshotID: snapshotID}); err != nil {
			return adjusted, err
		}
		adjusted = append(adjusted, c.CustomerID)
	}
	return adjusted, nil
}
