package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/period"
)

// IngestBillingPeriod ingests the delivery of a period, every report of
// it: it reads the manifests, converts the chunks into Parquet with
// bounded concurrency, replaces the rows of the reports that changed in
// one snapshot, and reconciles each report in the table with its source
// to the last digit.
// On failure it removes the files it wrote; the table keeps its last good
// snapshot. A delivery rewritten while it is read (DeliveryChanged) is
// located again and converted from the start, at most MaxDeliveryChanges
// times, so the period always holds one delivery.
func IngestBillingPeriod(ctx workflow.Context, in IngestBillingPeriodInput) (*IngestBillingPeriodResult, error) {
	progress := IngestProgress{Stage: "locating"}
	if err := workflow.SetQueryHandler(ctx, IngestProgressQuery, func() (IngestProgress, error) { return progress, nil }); err != nil {
		return nil, err
	}
	if in.Source == "" || in.Period.IsZero() {
		return nil, temporal.NewNonRetryableApplicationError("source and period are required", ingest.ErrTypeInvalidSource, nil)
	}
	if in.BillPayerAccountID != "" {
		if in.PayerAccountID == "" || in.BillPayerAccountID == in.PayerAccountID {
			return nil, temporal.NewNonRetryableApplicationError("bill_payer_account_id names the management account of payer_account_id, a member account onboarded alone: both are needed and differ", ingest.ErrTypeInvalidSource, nil)
		}
		// Whatever the bucket holds, a member keeps its own usage only.
		in.Accounts = keptAccounts(in.PayerAccountID, in.BillPayerAccountID, in.Accounts)
	}
	concurrency := in.Concurrency
	if concurrency <= 0 {
		concurrency = DefaultChunkConcurrency
	}

	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 10},
	})
	info := workflow.GetInfo(ctx)
	convert := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, MaximumAttempts: 5},
	})
	// One ingestion reads one delivery: chunks are pinned to the versions
	// seen when the delivery was located. When AWS rewrites the delivery
	// meanwhile (overwrite mode), the attempt's files go and the delivery
	// is located again, a bounded number of times.
	var (
		loc        ingest.LocateDeliveryResult
		reports    []ingest.ReportDelivery
		skipped    []ingest.ReportOutcome
		jobs       []chunkJob
		results    []ingest.ConvertChunkResult
		convertErr error
		changes    int
	)
	for {
		progress.Stage = "locating"
		loc = ingest.LocateDeliveryResult{}
		err := ingest.LocateDelivery.Execute(short, ingest.LocateDeliveryInput{
			Source: in.Source, Period: in.Period, Access: in.Access, PayerAccountID: in.PayerAccountID, CustomerID: in.CustomerID,
		}).Get(ctx, &loc)
		if err != nil {
			if isDeliveryChanged(err) && changes < MaxDeliveryChanges {
				changes++
				_ = workflow.Sleep(ctx, time.Duration(changes)*DeliveryChangeBackoff)
				continue
			}
			progress.Stage = "failed"
			return nil, err
		}
		if in.BillPayerAccountID != "" && loc.PayerAccountID == in.BillPayerAccountID {
			// A member onboarded alone: AWS bills its report to the
			// management account, and costlake keys its rows by the member.
			loc.PayerAccountID = in.PayerAccountID
		}
		if in.PayerAccountID != "" && in.PayerAccountID != loc.PayerAccountID {
			progress.Stage = "failed"
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s belongs to payer %s, not %s", loc.ManifestURL, loc.PayerAccountID, in.PayerAccountID),
				ingest.ErrTypePayerMismatch, nil)
		}
		reports, skipped = reportsToRead(loc, in.Retake)
		jobs = chunkJobs(reports)
		progress.AssemblyID = loc.AssemblyID
		progress.ChunksTotal, progress.ChunksDone, progress.Rows = len(jobs), 0, 0
		progress.Stage = "converting"
		showProgress(ctx, progress)
		// A restart writes files of its own names, never an earlier attempt's.
		prefix := info.WorkflowExecution.RunID
		if changes > 0 {
			prefix = fmt.Sprintf("%s-restart%d", prefix, changes)
		}
		results, convertErr = convertChunks(ctx, convert, in, loc, reports, jobs, prefix, concurrency, &progress)
		if convertErr == nil || !isDeliveryChanged(convertErr) || changes >= MaxDeliveryChanges {
			break
		}
		changes++
		workflow.GetLogger(ctx).Info("delivery changed while it was converted; locating it again",
			"assembly", loc.AssemblyID, "attempt", changes, "error", convertErr)
		removeFiles(ctx, short, loc, in.Period, dataFilesOf(results))
		_ = workflow.Sleep(ctx, time.Duration(changes)*DeliveryChangeBackoff)
	}

	files := dataFilesOf(results)
	var totals, excluded [][]billing.Total
	var rows, rounded int64
	parts := make([]ingest.ReportFiles, len(reports))
	reportTotals := make([]ingest.ReportTotals, len(reports))
	for r, rd := range reports {
		parts[r] = ingest.ReportFiles{Report: rd.Report, AssemblyID: rd.AssemblyID, DeliveredAt: rd.DeliveredAt}
		reportTotals[r].Report = rd.Report
	}
	for i, r := range results {
		totals = append(totals, r.Totals)
		excluded = append(excluded, r.Excluded)
		rows += r.Rows
		rounded += r.Rounded
		p := &parts[jobs[i].report]
		p.DataFiles = append(p.DataFiles, r.DataFiles...)
		p.Rows += r.Rows
		t := &reportTotals[jobs[i].report]
		t.Expected = billing.MergeTotals(t.Expected, r.Totals)
	}
	fail := func(err error) (*IngestBillingPeriodResult, error) {
		progress.Stage = "failed"
		removeFiles(ctx, short, loc, in.Period, files)
		return nil, err
	}
	if convertErr != nil {
		return fail(convertErr)
	}

	progress.Stage = "committing"
	showProgress(ctx, progress)
	expected := billing.MergeTotals(totals...)
	commit := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 10},
	})
	var committed ingest.CommitPeriodResult
	err := ingest.CommitPeriod.Execute(commit, ingest.CommitPeriodInput{
		Table:          loc.Table,
		PayerAccountID: loc.PayerAccountID,
		Period:         in.Period,
		AssemblyID:     loc.AssemblyID,
		DeliveredAt:    loc.DeliveredAt,
		Source:         in.Source,
		RunID:          info.WorkflowExecution.RunID,
		DataFiles:      files,
		Rows:           rows,
		Reports:        parts,
		Accounts:       in.Accounts.Fingerprint(),
	}).Get(ctx, &committed)
	if err != nil {
		return fail(err)
	}

	// Each report is reconciled on its own: the snapshot's rows of the
	// report against what was read from its source. A superseded report
	// committed nothing: there is nothing of it to reconcile.
	var check []ingest.ReportTotals
	for i, t := range reportTotals {
		if i >= len(committed.Reports) || committed.Reports[i].Action != ingest.ReportSuperseded {
			check = append(check, t)
		}
	}
	if len(committed.Reports) == 0 && committed.Superseded {
		check = nil // a commit recorded before reports: superseded means all of it
	}
	var reconciled ingest.ReconcilePeriodResult
	if len(check) > 0 {
		progress.Stage = "reconciling"
		showProgress(ctx, progress)
		err = ingest.ReconcilePeriod.Execute(commit, ingest.ReconcilePeriodInput{
			Table:          loc.Table,
			PayerAccountID: loc.PayerAccountID,
			Period:         in.Period,
			SnapshotID:     committed.SnapshotID,
			Expected:       expected,
			Reports:        check,
		}).Get(ctx, &reconciled)
		if err != nil {
			// The snapshot is committed and stays inspectable; the failure is
			// what matters, so the files are not removed here.
			progress.Stage = "failed"
			return nil, err
		}
	}

	// A period that changed after customers closed their cycles on it:
	// the closed cycles stay as they are, and the difference goes to each
	// customer's next open cycle. The period itself is committed and
	// reconciled, so a failure here does not fail the ingestion: closing
	// a customer's next cycle records whatever is still missing (the
	// activity is idempotent per assembly).
	if !committed.Unchanged && !committed.Superseded && workflow.GetVersion(ctx, adjustClosedCyclesChange, workflow.DefaultVersion, 1) == 1 {
		progress.Stage = "adjusting"
		showProgress(ctx, progress)
		adjust := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, MaximumAttempts: 5},
		})
		err = ingest.AdjustClosedCycles.Execute(adjust, ingest.AdjustClosedCyclesInput{
			Table:          loc.Table,
			PayerAccountID: loc.PayerAccountID,
			Period:         in.Period,
			AssemblyID:     cmp.Or(committed.PeriodAssembly, loc.AssemblyID),
			SnapshotID:     committed.SnapshotID,
		}).Get(ctx, nil)
		if err != nil {
			workflow.GetLogger(ctx).Warn("could not record adjustments of closed cycles; the next cycle close records them",
				"payer", loc.PayerAccountID, "period", in.Period, "assembly", loc.AssemblyID, "error", err)
		}
	}

	// The result is the period as the table holds it: with several
	// reports, the ones not read this time count too, and a superseded
	// one does not.
	held := expected
	if len(reconciled.Reports) > 0 {
		held = reconciled.Actual
	}
	outcomes := append(committed.Reports, skipped...)
	for _, r := range reconciled.Reports {
		if !slices.ContainsFunc(loc.Reports, func(d ingest.ReportDelivery) bool { return d.Report == r }) {
			outcomes = append(outcomes, ingest.ReportOutcome{Report: r, Action: ingest.ReportNotDelivered})
		}
	}
	progress.Stage = "done"
	showProgress(ctx, progress)
	res := &IngestBillingPeriodResult{
		PayerAccountID:  loc.PayerAccountID,
		Period:          in.Period,
		Table:           loc.Table,
		Format:          loc.Format,
		AssemblyID:      loc.AssemblyID,
		ManifestURL:     loc.ManifestURL,
		SnapshotID:      committed.SnapshotID,
		Unchanged:       committed.Unchanged,
		Superseded:      committed.Superseded,
		Chunks:          len(jobs),
		Reports:         outcomes,
		Rows:            rows,
		RoundedValues:   rounded,
		DeliveryChanges: changes,
		Accounts:        billing.ByAccount(held),
		Totals:          held,
	}
	for _, a := range res.Accounts {
		res.UnblendedCost = res.UnblendedCost.Add(a.UnblendedCost)
	}
	res.Excluded = billing.ByAccount(billing.MergeTotals(excluded...))
	for _, a := range res.Excluded {
		res.ExcludedRows += a.Rows
		res.ExcludedCost = res.ExcludedCost.Add(a.UnblendedCost)
	}
	return res, nil
}

// MaxDeliveryChanges bounds how often one ingestion starts over because
// the delivery was rewritten while it was read; DeliveryChangeBackoff,
// times the attempt, is the pause before locating it again, so a writer
// in the middle of a delivery can finish.
const (
	MaxDeliveryChanges    = 3
	DeliveryChangeBackoff = 5 * time.Second
)

func isDeliveryChanged(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ingest.ErrTypeDeliveryChanged
}

// convertChunks converts every chunk of the reports to read with bounded
// concurrency. The first failure stops the fan-out and is returned, with
// the results of the chunks that finished, whose files need removing.
func convertChunks(ctx workflow.Context, actx workflow.Context, in IngestBillingPeriodInput, loc ingest.LocateDeliveryResult, reports []ingest.ReportDelivery, jobs []chunkJob, filePrefix string, concurrency int, progress *IngestProgress) ([]ingest.ConvertChunkResult, error) {
	results := make([]ingest.ConvertChunkResult, len(jobs))
	var convertErr error
	sel := workflow.NewSelector(ctx)
	running, next := 0, 0
	for next < len(jobs) || running > 0 {
		if next < len(jobs) && running < concurrency && convertErr == nil {
			i := next
			rd, c := reports[jobs[i].report], jobs[i].chunk
			var pin ingest.ObjectPin // none in histories from before pins
			if c < len(rd.ChunkPins) {
				pin = rd.ChunkPins[c]
			}
			// The UI shows which chunk an activity converts; a summary is
			// no command of its own, so older histories replay.
			opts := workflow.GetActivityOptions(actx)
			opts.Summary = fmt.Sprintf("chunk %d/%d: %s", i+1, len(jobs), path.Base(rd.ChunkKeys[c]))
			f := ingest.ConvertChunk.Execute(workflow.WithActivityOptions(actx, opts), ingest.ConvertChunkInput{
				Source:             in.Source,
				Period:             in.Period,
				Format:             loc.Format,
				ManifestKey:        rd.ManifestKey,
				AssemblyID:         rd.AssemblyID,
				Report:             rd.Report,
				ChunkKey:           rd.ChunkKeys[c],
				ChunkPin:           pin,
				ChunkIndex:         i, // unique in the run, so every data file name is
				PayerAccountID:     loc.PayerAccountID,
				BillPayerAccountID: in.BillPayerAccountID,
				FilePrefix:         filePrefix,
				Accounts:           in.Accounts,
				Access:             in.Access,
				CustomerID:         in.CustomerID,
			})
			sel.AddFuture(f.Underlying(), func(workflow.Future) {
				running--
				if err := f.Get(ctx, &results[i]); err != nil {
					// The first failure is the one reported: its type names
					// the bad input. Later ones only stop the fan-out.
					if convertErr == nil {
						convertErr = err
					}
					return
				}
				progress.ChunksDone++
				progress.Rows += results[i].Rows
				showProgress(ctx, *progress)
			})
			running++
			next++
			continue
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	return results, convertErr
}

// showProgress is the ingestion's current details in the Temporal UI
// ("chunk 3/8: 125,000 rows"): state a query reads, never a command.
func showProgress(ctx workflow.Context, p IngestProgress) {
	workflow.SetCurrentDetails(ctx, p.Details())
}

// Details says where an ingestion is, in a line.
func (p IngestProgress) Details() string {
	switch p.Stage {
	case "converting":
		return fmt.Sprintf("chunk %d/%d: %s rows", p.ChunksDone, p.ChunksTotal, groupDigits(p.Rows))
	case "committing", "reconciling", "adjusting", "done":
		return fmt.Sprintf("%s: %d chunks, %s rows", p.Stage, p.ChunksTotal, groupDigits(p.Rows))
	}
	return p.Stage
}

// groupDigits writes n with thousands separators: 125,000.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return sign + b.String()
}

func dataFilesOf(results []ingest.ConvertChunkResult) []string {
	var files []string
	for _, r := range results {
		files = append(files, r.DataFiles...)
	}
	return files
}

// removeFiles deletes the data files of an attempt that will not be
// committed; it runs even when the workflow is being cancelled.
func removeFiles(ctx, short workflow.Context, loc ingest.LocateDeliveryResult, p period.Period, files []string) {
	cleanup, _ := workflow.NewDisconnectedContext(short)
	if err := ingest.RemoveDataFiles.Execute(cleanup, ingest.RemoveDataFilesInput{Table: loc.Table, PayerAccountID: loc.PayerAccountID, Period: p, Files: files}).Get(cleanup, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not remove data files of a failed ingestion", "files", len(files), "error", err)
	}
}

// reportsToRead picks the reports of a located period to convert. When
// some reports changed, only those are read: the commit leaves the
// others' rows as they are, and they are reported unchanged. Otherwise (a
// re-run) every report is read again, and the commit keeps the rows of
// those whose assembly the table already holds.
func reportsToRead(loc ingest.LocateDeliveryResult, retake bool) (read []ingest.ReportDelivery, skipped []ingest.ReportOutcome) {
	reports := loc.DeliveredReports()
	if retake {
		return reports, nil // every report, kept by the new account policy
	}
	held := func(r ingest.ReportDelivery) bool { return r.Committed != "" && r.Committed == r.AssemblyID }
	if len(reports) < 2 || !slices.ContainsFunc(reports, func(r ingest.ReportDelivery) bool { return !held(r) }) {
		return reports, nil
	}
	for _, r := range reports {
		if held(r) {
			skipped = append(skipped, ingest.ReportOutcome{Report: r.Report, AssemblyID: r.AssemblyID, Action: ingest.ReportUnchanged})
		} else {
			read = append(read, r)
		}
	}
	return read, skipped
}

// chunkJob is one chunk of one report to convert.
type chunkJob struct{ report, chunk int }

func chunkJobs(reports []ingest.ReportDelivery) []chunkJob {
	var jobs []chunkJob
	for r, rd := range reports {
		for c := range rd.ChunkKeys {
			jobs = append(jobs, chunkJob{r, c})
		}
	}
	return jobs
}
