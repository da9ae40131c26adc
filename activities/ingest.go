package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/telemetry"
	"github.com/costlake/costlake/lakehouse"
)

// Ingest holds IngestBillingPeriod's activities: read a delivery, convert
// it to Parquet, commit and reconcile the period, and adjust closed cycles
// a restatement changed.
type Ingest struct {
	Lake *lakehouse.Lake
	AWS
	// TempDir holds Parquet deliveries while they are read (they need
	// random access); empty means the system's temporary folder.
	TempDir string
	// Limits bound each data file read (sizes, inflation, records);
	// zero fields take cur.DefaultLimits.
	Limits cur.Limits
	// PartRows is how many rows go into one data file before the next one
	// starts; a retried conversion resumes after the last finished file.
	// 0 means DefaultPartRows.
	PartRows int
	// OrphanAge is how old an unreferenced data file in a committed
	// period's folder must be before it is removed; 0 means DefaultOrphanAge.
	OrphanAge time.Duration
	// Reseller holds the closed cycles a restatement adjusts; nil means
	// there are none.
	Reseller *reseller.Store
	// Metrics counts what the ingestions did; nil counts nothing.
	Metrics *telemetry.Metrics
}

// ingestLogger is the activity's logger (with the workflow's and the
// activity's IDs) naming the payer and the period too.
func ingestLogger(ctx context.Context, payer string, p period.Period) tlog.Logger {
	return tlog.With(activity.GetLogger(ctx), "payer", payer, "period", p.String())
}

// DefaultOrphanAge is far longer than any conversion, so a file that old
// that no snapshot references belongs to a run that died.
const DefaultOrphanAge = 6 * time.Hour

// LocateDelivery finds every report of the period, whatever the format,
// and lists their data files. When the manifests do not agree on the
// payer, or do not name it, the first row of each report does.
func (a *Ingest) LocateDelivery(ctx context.Context, in ingest.LocateDeliveryInput) (ingest.LocateDeliveryResult, error) {
	start := time.Now()
	store, loc, err := a.openSource(ctx, in.Source, in.Access, awsauth.Session{Purpose: "ingest", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return ingest.LocateDeliveryResult{}, err
	}
	ds, err := cur.LocateReports(ctx, store, loc, in.Period.String())
	if err != nil {
		return ingest.LocateDeliveryResult{}, classify(err)
	}
	payer, err := a.payerOf(ctx, store, ds)
	if err != nil {
		return ingest.LocateDeliveryResult{}, err
	}
	d := ds[0]
	res := ingest.LocateDeliveryResult{
		Format:         string(d.Format),
		Table:          d.Format.Schema().Table,
		ManifestURL:    d.URL(d.ManifestKey),
		ManifestKey:    d.StableManifestKey,
		ManifestETag:   d.ManifestETag,
		DeliveredAt:    d.DeliveredAt,
		AssemblyID:     d.AssemblyID,
		PayerAccountID: payer,
		Compression:    d.Compression,
		ChunkKeys:      d.ChunkKeys,
		ChunkPins:      objectPins(d.ChunkPins),
	}
	held, err := a.Lake.PeriodReports(ctx, d.Format.Schema(), payer, in.Period)
	if err != nil {
		return ingest.LocateDeliveryResult{}, err
	}
	assemblies := map[string]string{}
	for _, d := range ds {
		assemblies[d.Report] = d.AssemblyID
		res.Reports = append(res.Reports, ingest.ReportDelivery{
			Report: d.Report, ManifestURL: d.URL(d.ManifestKey), ManifestKey: d.StableManifestKey, ManifestETag: d.ManifestETag,
			DeliveredAt: d.DeliveredAt, AssemblyID: d.AssemblyID, Compression: d.Compression, ChunkKeys: d.ChunkKeys,
			ChunkPins: objectPins(d.ChunkPins), Committed: held[d.Report].AssemblyID,
		})
	}
	res.AssemblyID = cur.PeriodAssembly(assemblies) // the first's for a single-report source
	a.Metrics.Step(telemetry.StageLocate, time.Since(start))
	ingestLogger(ctx, payer, in.Period).Info("located delivery", "format", res.Format, "assembly", res.AssemblyID, "reports", len(res.Reports), "chunks", len(res.ChunkKeys))
	return res, nil
}

// payerOf is the one payer of a period's reports: the manifests' when
// they all name the same, otherwise each report's first row's. Reports
// of different payers cannot share a period.
func (a *Ingest) payerOf(ctx context.Context, store blob.Store, ds []*cur.Delivery) (string, error) {
	payer := ds[0].Payer
	agree := payer != ""
	for _, d := range ds[1:] {
		agree = agree && d.Payer == payer
	}
	if agree {
		return payer, nil
	}
	payer = ""
	first := ""
	for _, d := range ds {
		p := d.Payer
		if p == "" || len(ds) > 1 {
			var err error
			if p, err = a.peekPayer(ctx, store, d); err != nil {
				return "", classify(err)
			}
		}
		if payer == "" {
			payer, first = p, d.URL(d.ManifestKey)
		} else if p != payer {
			return "", classify(&cur.FileError{File: d.URL(d.ManifestKey),
				Err: fmt.Errorf("%w: this report's payer is %s, but %s's is %s", errPayerMismatch, p, first, payer)})
		}
	}
	return payer, nil
}

// peekPayer reads bill_payer_account_id from the first row of the delivery.
func (a *Ingest) peekPayer(ctx context.Context, store blob.Store, d *cur.Delivery) (string, error) {
	r, err := cur.OpenChunk(ctx, store, d, d.ChunkKeys[0], d.ChunkPins[0], a.TempDir, a.Limits)
	if err != nil {
		return "", err
	}
	defer r.Close()
	rec := d.Format.Schema().NewRecord()
	if err := r.Next(rec); err != nil {
		if err == io.EOF {
			return "", &cur.FileError{File: d.URL(d.ChunkKeys[0]), Err: fmt.Errorf("%w: no rows to tell the payer by", cur.ErrEmptyChunk)}
		}
		return "", err
	}
	bs := d.Format.Schema()
	payer := rec.Values[bs.MustIndex(bs.Payer)]
	if payer == "" {
		return "", &cur.FileError{File: d.URL(d.ChunkKeys[0]), Line: r.Line(), Err: fmt.Errorf("%w: %s is empty", cur.ErrInvalidManifest, bs.Payer)}
	}
	return payer, nil
}

// ConvertChunk streams one data file into one Parquet data file in the
// table's layout and returns the source's totals per account and type. A
// failed attempt removes its partial file; a retry rewrites the same path.
func (a *Ingest) ConvertChunk(ctx context.Context, in ingest.ConvertChunkInput) (res ingest.ConvertChunkResult, err error) {
	start := time.Now()
	log := ingestLogger(ctx, in.PayerAccountID, in.Period)
	store, loc, err := a.openSource(ctx, in.Source, in.Access, awsauth.Session{Purpose: "ingest", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return res, err
	}
	// The keys come from the workflow's input: neither may name a file
	// outside the source.
	for _, key := range []string{in.ManifestKey, in.ChunkKey} {
		if err := cur.UnderSource(loc, key); err != nil {
			return res, classify(&cur.FileError{File: loc.String(), Err: err})
		}
	}
	d, err := cur.Reopen(ctx, store, loc, cur.Format(in.Format), in.ManifestKey, in.AssemblyID)
	if err != nil {
		return res, classify(err)
	}
	chunkURL := loc.URLOf(in.ChunkKey)
	pin := blob.Pin{ETag: in.ChunkPin.ETag, Size: in.ChunkPin.Size, Generation: in.ChunkPin.Generation}
	reader, err := cur.OpenChunk(ctx, store, d, in.ChunkKey, pin, a.TempDir, a.Limits)
	if err != nil {
		return res, classify(err)
	}
	defer reader.Close()

	bs := d.Format.Schema()
	tbl, err := a.Lake.Table(ctx, bs)
	if err != nil {
		return res, err
	}
	partRows := a.PartRows
	if partRows <= 0 {
		partRows = DefaultPartRows
	}
	c := &chunkConverter{ctx: ctx, lake: a.Lake, tbl: tbl, bs: bs, in: in, reader: reader, chunkURL: chunkURL, partRows: int64(partRows)}
	res, err = c.run()
	if err != nil {
		c.abort(err)
		return res, err
	}
	a.Metrics.Converted(in.Format, res.Rows, in.ChunkPin.Size, time.Since(start))
	log.Info("converted chunk", slog.String("chunk", chunkURL), slog.Int64("rows", res.Rows), slog.Int("files", len(res.DataFiles)))
	return res, nil
}

// CommitPeriod replaces the payer's period with the converted files in one
// snapshot.
func (a *Ingest) CommitPeriod(ctx context.Context, in ingest.CommitPeriodInput) (ingest.CommitPeriodResult, error) {
	bs := schemaOf(in.Table)
	rep := lakehouse.PeriodReplacement{Payer: in.PayerAccountID, Period: in.Period, Source: in.Source, RunID: in.RunID, Accounts: in.Accounts}
	for _, r := range in.CommittedReports() {
		rep.Reports = append(rep.Reports, lakehouse.ReportFiles(r))
	}
	start := time.Now()
	done, err := a.Lake.ReplacePeriod(ctx, bs, rep)
	if err != nil {
		return ingest.CommitPeriodResult{}, err
	}
	a.Metrics.Committed(bs.Table, time.Since(start))
	res := ingest.CommitPeriodResult{SnapshotID: done.SnapshotID, Unchanged: done.Unchanged, Superseded: done.Superseded,
		ReplacedFiles: done.ReplacedFiles, PeriodAssembly: done.PeriodAssembly}
	for _, o := range done.Reports {
		res.Reports = append(res.Reports, ingest.ReportOutcome(o))
	}
	age := a.OrphanAge
	if age <= 0 {
		age = DefaultOrphanAge
	}
	// Best effort: leftovers never affect readers, so a failure here only
	// leaves them for the next commit.
	log := ingestLogger(ctx, in.PayerAccountID, in.Period)
	removed, err := a.Lake.RemoveOrphans(ctx, bs, in.PayerAccountID, in.Period, age)
	if err != nil {
		log.Warn("orphan cleanup failed", "error", err)
	}
	log.Info("committed period", "table", bs.Table, "snapshot", done.SnapshotID, "unchanged", done.Unchanged, "superseded", done.Superseded, "rows", in.Rows)
	res.OrphansRemoved = len(removed)
	return res, nil
}

// ReconcilePeriod reads the committed snapshot back and fails,
// permanently, when its totals differ from the source's by one row or one
// digit: per report when the input names reports, else for the period.
func (a *Ingest) ReconcilePeriod(ctx context.Context, in ingest.ReconcilePeriodInput) (ingest.ReconcilePeriodResult, error) {
	bs := schemaOf(in.Table)
	start := time.Now()
	defer func() { a.Metrics.Step(telemetry.StageReconcile, time.Since(start)) }()
	fail := func(actual []billing.Total, what, diff string) (ingest.ReconcilePeriodResult, error) {
		a.Metrics.ReconciliationFailed(telemetry.CheckIngestion)
		ingestLogger(ctx, in.PayerAccountID, in.Period).Error("reconciliation failed", "table", bs.Table, "snapshot", in.SnapshotID, "report", what, "difference", diff)
		return ingest.ReconcilePeriodResult{Actual: actual}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("table totals of %s %s%s (snapshot %d) differ from the source: %s", in.PayerAccountID, in.Period.String(), what, in.SnapshotID, diff),
			ingest.ErrTypeReconciliation, nil)
	}
	if len(in.Reports) == 0 {
		actual, err := a.Lake.PeriodTotals(ctx, bs, in.PayerAccountID, in.Period, in.SnapshotID)
		if err != nil {
			return ingest.ReconcilePeriodResult{}, err
		}
		if diff := billing.DiffTotals(billing.MergeTotals(in.Expected), actual); diff != "" {
			return fail(actual, "", diff)
		}
		return ingest.ReconcilePeriodResult{Actual: actual}, nil
	}
	byReport, err := a.Lake.PeriodReportTotals(ctx, bs, in.PayerAccountID, in.Period, in.SnapshotID)
	if err != nil {
		return ingest.ReconcilePeriodResult{}, err
	}
	var all [][]billing.Total
	for _, list := range byReport {
		all = append(all, list)
	}
	actual := billing.MergeTotals(all...)
	for _, r := range in.Reports {
		if diff := billing.DiffTotals(billing.MergeTotals(r.Expected), byReport[r.Report]); diff != "" {
			return fail(actual, fmt.Sprintf(" report %q", r.Report), diff)
		}
	}
	var held []string
	for r := range byReport {
		if r != "" {
			held = append(held, r)
		}
	}
	slices.Sort(held)
	return ingest.ReconcilePeriodResult{Actual: actual, Reports: held}, nil
}

// RemoveDataFiles deletes the data files of an attempt that will not be
// committed.
func (a *Ingest) RemoveDataFiles(ctx context.Context, in ingest.RemoveDataFilesInput) error {
	return a.Lake.RemoveUncommitted(ctx, schemaOf(in.Table), in.PayerAccountID, in.Period, in.Files)
}

// schemaOf returns a table's schema; histories from before FOCUS carry no
// table name and mean line_items.
func schemaOf(table string) *billing.Schema {
	if bs := billing.SchemaByTable(table); bs != nil {
		return bs
	}
	return billing.LineItems
}

// objectPins copies the store's pins into the workflow contract.
func objectPins(pins []blob.Pin) []ingest.ObjectPin {
	out := make([]ingest.ObjectPin, len(pins))
	for i, p := range pins {
		out[i] = ingest.ObjectPin{ETag: p.ETag, Size: p.Size, Generation: p.Generation}
	}
	return out
}

var errPayerMismatch = errors.New("row belongs to another payer")

// classify turns errors about the input into non-retryable application
// errors with a named type; anything else stays retryable. DeliveryChanged
// is non-retryable too, since a retry of the same activity reads the same
// pinned versions: the workflow locates the delivery again instead.
func classify(err error) error {
	types := []struct {
		target error
		name   string
	}{
		{blob.ErrAccessDenied, ingest.ErrTypeAccessDenied},
		{blob.ErrBucketNotFound, ingest.ErrTypeBucketNotFound},
		{cur.ErrDeliveryChanged, ingest.ErrTypeDeliveryChanged},
		{cur.ErrManifestNotFound, ingest.ErrTypeManifestNotFound},
		{cur.ErrInvalidManifest, ingest.ErrTypeInvalidManifest},
		{cur.ErrInvalidPeriod, ingest.ErrTypeInvalidSource},
		{cur.ErrChunkNotFound, ingest.ErrTypeChunkNotFound},
		{cur.ErrCorruptChunk, ingest.ErrTypeCorruptChunk},
		{cur.ErrHeaderMismatch, ingest.ErrTypeHeaderMismatch},
		{cur.ErrMalformedCSV, ingest.ErrTypeMalformedCSV},
		{cur.ErrLineTooLong, ingest.ErrTypeMalformedCSV},
		{cur.ErrRecordTooLarge, ingest.ErrTypeRecordTooLarge},
		{cur.ErrChunkTooLarge, ingest.ErrTypeChunkTooLarge},
		{cur.ErrDecompressionBomb, ingest.ErrTypeDecompressionBomb},
		{cur.ErrEmptyChunk, ingest.ErrTypeEmptyChunk},
		{cur.ErrUnsupportedCompression, ingest.ErrTypeUnsupportedCompression},
		{billing.ErrDuplicateColumn, ingest.ErrTypeHeaderMismatch},
		{billing.ErrBadJSONMap, ingest.ErrTypeMalformedCSV},
		{billing.ErrBadCost, ingest.ErrTypeBadValue},
		{lakehouse.ErrBadValue, ingest.ErrTypeBadValue},
		{errPayerMismatch, ingest.ErrTypePayerMismatch},
		{blob.ErrUnsupportedURL, ingest.ErrTypeInvalidSource},
		{blob.ErrOutsideRoot, ingest.ErrTypeInvalidSource},
		{payer.ErrInvalid, ingest.ErrTypeInvalidAccess},
		{awsauth.ErrMissingSecret, ingest.ErrTypeInvalidAccess},
	}
	for _, t := range types {
		if errors.Is(err, t.target) {
			return temporal.NewNonRetryableApplicationError(err.Error(), t.name, err)
		}
	}
	return err
}

// AdjustClosedCycles runs after a commit replaced payer's period in
// billing.line_items: for every customer whose closed cycle pinned another
// snapshot of that period, the difference between the new snapshot's cost
// of the customer's accounts and the pinned one's (less what earlier
// restatements already adjusted) is recorded as an adjustment of the
// customer's next open cycle, once per assembly. The closed cycle, its
// pins and its resale rows never change. Without reseller records there is
// nothing to adjust.
func (a *Ingest) AdjustClosedCycles(ctx context.Context, in ingest.AdjustClosedCyclesInput) (ingest.AdjustClosedCyclesResult, error) {
	var res ingest.AdjustClosedCyclesResult
	if a.Reseller == nil || schemaOf(in.Table) != billing.LineItems {
		return res, nil
	}
	cycles, err := a.Reseller.ClosedCycles(ctx, in.Period.String())
	if err != nil {
		return res, err
	}
	res.Customers, err = adjustClosedCycles(ctx, a.Lake, a.Reseller, in.PayerAccountID, in.Period, in.AssemblyID, in.SnapshotID, cycles)
	return res, err
}
