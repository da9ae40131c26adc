package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/period"
)

// fakeActivities stands in for the activities in unit tests; the real
// ones run in tests/ against real servers.
type fakeActivities struct {
	mu           sync.Mutex
	running, max int
	removed      []string
	failChunk    int // -1: none
	// changes is how many times chunk 2 reports DeliveryChanged before it
	// converts; locates counts LocateDelivery calls.
	changes, locates int
}

func (f *fakeActivities) locate(_ context.Context, in ingest.LocateDeliveryInput) (ingest.LocateDeliveryResult, error) {
	f.mu.Lock()
	f.locates++
	f.mu.Unlock()
	keys := make([]string, 7)
	for i := range keys {
		keys[i] = fmt.Sprintf("cur/r/20261001-20261101/a1/r-%d.csv.gz", i+1)
	}
	return ingest.LocateDeliveryResult{ManifestURL: in.Source + "/m.json", ManifestKey: "m", AssemblyID: "a1", PayerAccountID: "111122223333", ChunkKeys: keys}, nil
}

func (f *fakeActivities) convert(_ context.Context, in ingest.ConvertChunkInput) (ingest.ConvertChunkResult, error) {
	f.mu.Lock()
	f.running++
	f.max = max(f.max, f.running)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	if in.ChunkIndex == 2 {
		f.mu.Lock()
		changed := f.changes > 0
		f.changes--
		f.mu.Unlock()
		if changed {
			return ingest.ConvertChunkResult{}, temporal.NewNonRetryableApplicationError("r-3.csv.gz: the delivery changed while it was read", ingest.ErrTypeDeliveryChanged, nil)
		}
	}
	if in.ChunkIndex == f.failChunk {
		return ingest.ConvertChunkResult{}, temporal.NewNonRetryableApplicationError("chunk 3 line 9: corrupt", ingest.ErrTypeCorruptChunk, nil)
	}
	return ingest.ConvertChunkResult{
		DataFiles: []string{fmt.Sprintf("file:///w/%s-%d.parquet", in.FilePrefix, in.ChunkIndex)},
		Rows:      10,
		Totals: []billing.Total{
			{Account: "111122223333", LineItemType: "Usage", Rows: 6, UnblendedCost: money.MustParse("0.1")},
			{Account: "444455556666", LineItemType: "Tax", Rows: 4, UnblendedCost: money.MustParse("0.2")},
		},
	}, nil
}

func (f *fakeActivities) commit(_ context.Context, in ingest.CommitPeriodInput) (ingest.CommitPeriodResult, error) {
	if len(in.DataFiles) != 7 || in.Rows != 70 {
		return ingest.CommitPeriodResult{}, fmt.Errorf("commit got %d files, %d rows", len(in.DataFiles), in.Rows)
	}
	return ingest.CommitPeriodResult{SnapshotID: 42}, nil
}

func (f *fakeActivities) reconcile(_ context.Context, in ingest.ReconcilePeriodInput) (ingest.ReconcilePeriodResult, error) {
	return ingest.ReconcilePeriodResult{Actual: in.Expected}, nil
}

func (f *fakeActivities) remove(_ context.Context, in ingest.RemoveDataFilesInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, in.Files...)
	return nil
}

func newEnv(t *testing.T, f *fakeActivities) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(IngestBillingPeriod)
	env.RegisterActivityWithOptions(f.locate, activityName(ingest.LocateDeliveryActivity))
	env.RegisterActivityWithOptions(f.convert, activityName(ingest.ConvertChunkActivity))
	env.RegisterActivityWithOptions(f.commit, activityName(ingest.CommitPeriodActivity))
	env.RegisterActivityWithOptions(f.reconcile, activityName(ingest.ReconcilePeriodActivity))
	env.RegisterActivityWithOptions(f.remove, activityName(ingest.RemoveDataFilesActivity))
	return env
}

func TestIngestSumsChunksAndBoundsConcurrency(t *testing.T) {
	f := &fakeActivities{failChunk: -1}
	env := newEnv(t, f)
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b/cur/r", Period: period.MustParse("2026-10"), Concurrency: 3})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res IngestBillingPeriodResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, int64(70), res.Rows)
	require.Equal(t, 7, res.Chunks)
	require.Equal(t, int64(42), res.SnapshotID)
	require.Equal(t, "2.1", res.UnblendedCost.String()) // 7 × (0.1 + 0.2), exactly
	require.Len(t, res.Accounts, 2)
	require.Equal(t, "0.7", res.Accounts[0].UnblendedCost.String())
	require.LessOrEqual(t, f.max, 3, "more chunks ran at once than asked")
	require.Empty(t, f.removed)
}

func TestIngestFailedChunkRemovesWrittenFiles(t *testing.T) {
	f := &fakeActivities{failChunk: 3}
	env := newEnv(t, f)
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b/cur/r", Period: period.MustParse("2026-10")})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "got %v", err)
	require.Equal(t, ingest.ErrTypeCorruptChunk, app.Type())
	require.NotEmpty(t, f.removed, "files of the converted chunks must be removed")
	for _, r := range f.removed {
		require.NotContains(t, r, "-3.parquet")
	}
}

func TestIngestPayerMismatch(t *testing.T) {
	f := &fakeActivities{failChunk: -1}
	env := newEnv(t, f)
	env.OnActivity(ingest.ConvertChunkActivity, mock.Anything, mock.Anything).Never()
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b/cur/r", Period: period.MustParse("2026-10"), PayerAccountID: "999999999999"})
	var app *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &app))
	require.Equal(t, ingest.ErrTypePayerMismatch, app.Type())
}

func TestIngestWorkflowID(t *testing.T) {
	require.Equal(t, "ingest/111122223333/2026-10", IngestWorkflowID("111122223333", "s3://b/p", period.MustParse("2026-10")))
	require.Equal(t, "ingest/s3://b/p/2026-10", IngestWorkflowID("", "s3://b/p", period.MustParse("2026-10")))
}

func TestIngestStartsOverWhenTheDeliveryChanges(t *testing.T) {
	f := &fakeActivities{failChunk: -1, changes: 1}
	env := newEnv(t, f)
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b/cur/r", Period: period.MustParse("2026-10"), Concurrency: 1})
	require.NoError(t, env.GetWorkflowError())
	var res IngestBillingPeriodResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 1, res.DeliveryChanges)
	require.Equal(t, 2, f.locates, "located again after the change")
	require.Equal(t, int64(70), res.Rows, "only the second attempt's chunks count")
	// Chunks 0 and 1 of the first attempt were converted, then removed.
	require.Len(t, f.removed, 2)
	for _, r := range f.removed {
		require.NotContains(t, r, "restart")
	}
}

func TestIngestDeliveryThatKeepsChangingFails(t *testing.T) {
	f := &fakeActivities{failChunk: -1, changes: 100}
	env := newEnv(t, f)
	env.OnActivity(ingest.CommitPeriodActivity, mock.Anything, mock.Anything).Never()
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b/cur/r", Period: period.MustParse("2026-10")})
	var app *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &app), "got %v", env.GetWorkflowError())
	require.Equal(t, ingest.ErrTypeDeliveryChanged, app.Type())
	require.Equal(t, MaxDeliveryChanges+1, f.locates, "bounded")
}

// Several reports: every report's chunks are converted, the commit gets
// each report's own files, and every report that was not superseded is
// reconciled on its own.
func TestIngestSeveralReports(t *testing.T) {
	f := &fakeActivities{failChunk: -1}
	env := newEnv(t, f)
	env.OnActivity(ingest.LocateDeliveryActivity, mock.Anything, mock.Anything).Return(ingest.LocateDeliveryResult{
		AssemblyID: "a=a1,b=b1,c=c1", PayerAccountID: "111122223333", Format: "partner-cur-csv",
		Reports: []ingest.ReportDelivery{
			{Report: "a", ManifestKey: "ma", AssemblyID: "a1", ChunkKeys: []string{"a/1", "a/2"}},
			{Report: "b", ManifestKey: "mb", AssemblyID: "b1", ChunkKeys: []string{"b/1"}},
			{Report: "c", ManifestKey: "mc", AssemblyID: "c1", ChunkKeys: []string{"c/1"}},
		}}, nil)
	var converted []string
	env.OnActivity(ingest.ConvertChunkActivity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in ingest.ConvertChunkInput) (ingest.ConvertChunkResult, error) {
			converted = append(converted, in.Report+":"+in.ManifestKey+":"+in.AssemblyID+":"+in.ChunkKey)
			return ingest.ConvertChunkResult{DataFiles: []string{fmt.Sprintf("f-%d", in.ChunkIndex)}, Rows: 1,
				Totals: []billing.Total{{Account: "111122223333", LineItemType: "Usage", Rows: 1, UnblendedCost: money.MustParse("1")}}}, nil
		})
	var committed ingest.CommitPeriodInput
	env.OnActivity(ingest.CommitPeriodActivity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in ingest.CommitPeriodInput) (ingest.CommitPeriodResult, error) {
			committed = in
			return ingest.CommitPeriodResult{SnapshotID: 7, PeriodAssembly: "a=a1,b=b1,c=c1", Reports: []ingest.ReportOutcome{
				{Report: "a", Action: ingest.ReportUnchanged}, {Report: "b", Action: ingest.ReportSuperseded}, {Report: "c", Action: ingest.ReportReplaced}}}, nil
		})
	var reconciled []string
	env.OnActivity(ingest.ReconcilePeriodActivity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in ingest.ReconcilePeriodInput) (ingest.ReconcilePeriodResult, error) {
			for _, r := range in.Reports {
				reconciled = append(reconciled, fmt.Sprintf("%s:%d", r.Report, r.Expected[0].Rows))
			}
			return ingest.ReconcilePeriodResult{}, nil
		})
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b", Period: period.MustParse("2026-10")})
	require.NoError(t, env.GetWorkflowError())
	slices.Sort(converted)
	require.Equal(t, []string{"a:ma:a1:a/1", "a:ma:a1:a/2", "b:mb:b1:b/1", "c:mc:c1:c/1"}, converted)
	require.Len(t, committed.Reports, 3)
	require.Equal(t, []string{"f-0", "f-1"}, committed.Reports[0].DataFiles)
	require.Equal(t, []string{"f-2"}, committed.Reports[1].DataFiles)
	require.Equal(t, []string{"f-3"}, committed.Reports[2].DataFiles)
	require.Equal(t, int64(2), committed.Reports[0].Rows)
	require.Equal(t, []string{"a:2", "c:1"}, reconciled, "the superseded report is not reconciled")
	var res IngestBillingPeriodResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 4, res.Chunks)
	require.Len(t, res.Reports, 3)
}

// A restatement of one report reads that report only; the others are
// reported unchanged without being read.
func TestIngestReadsOnlyChangedReports(t *testing.T) {
	f := &fakeActivities{failChunk: -1}
	env := newEnv(t, f)
	env.OnActivity(ingest.LocateDeliveryActivity, mock.Anything, mock.Anything).Return(ingest.LocateDeliveryResult{
		AssemblyID: "a=a1,b=b2", PayerAccountID: "111122223333", Format: "partner-cur-csv",
		Reports: []ingest.ReportDelivery{
			{Report: "a", ManifestKey: "ma", AssemblyID: "a1", Committed: "a1", ChunkKeys: []string{"a/1"}},
			{Report: "b", ManifestKey: "mb", AssemblyID: "b2", Committed: "b1", ChunkKeys: []string{"b/1"}},
		}}, nil)
	var converted []string
	env.OnActivity(ingest.ConvertChunkActivity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in ingest.ConvertChunkInput) (ingest.ConvertChunkResult, error) {
			converted = append(converted, in.ChunkKey)
			return ingest.ConvertChunkResult{DataFiles: []string{"f"}, Rows: 1}, nil
		})
	var committed []string
	env.OnActivity(ingest.CommitPeriodActivity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in ingest.CommitPeriodInput) (ingest.CommitPeriodResult, error) {
			var out []ingest.ReportOutcome
			for _, r := range in.Reports {
				committed = append(committed, r.Report)
				out = append(out, ingest.ReportOutcome{Report: r.Report, AssemblyID: r.AssemblyID, Action: ingest.ReportReplaced})
			}
			return ingest.CommitPeriodResult{SnapshotID: 7, Reports: out}, nil
		})
	env.ExecuteWorkflow(IngestBillingPeriod, IngestBillingPeriodInput{Source: "s3://b", Period: period.MustParse("2026-10")})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"b/1"}, converted)
	require.Equal(t, []string{"b"}, committed)
	var res IngestBillingPeriodResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, []ingest.ReportOutcome{{Report: "b", AssemblyID: "b2", Action: ingest.ReportReplaced}, {Report: "a", AssemblyID: "a1", Action: ingest.ReportUnchanged}}, res.Reports)
}

// TestIngestProgressDetails: the line the Temporal UI shows of a running
// ingestion.
func TestIngestProgressDetails(t *testing.T) {
	for _, c := range []struct {
		p    IngestProgress
		want string
	}{
		{IngestProgress{Stage: "converting", ChunksTotal: 8, ChunksDone: 3, Rows: 125_000}, "chunk 3/8: 125,000 rows"},
		{IngestProgress{Stage: "converting", ChunksTotal: 1, Rows: 999}, "chunk 0/1: 999 rows"},
		{IngestProgress{Stage: "done", ChunksTotal: 8, ChunksDone: 8, Rows: 1_234_567}, "done: 8 chunks, 1,234,567 rows"},
		{IngestProgress{Stage: "locating"}, "locating"},
	} {
		if got := c.p.Details(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
}
