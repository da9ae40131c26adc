package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/workflows"
)

// startWorker runs `costlake worker`, from a production build, as its own
// process.
func startWorker(t *testing.T, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(productionBinary(t), "worker")
	// Metrics on any free port unless the test names one: workers of
	// parallel tests never clash over the default.
	cmd.Env = append(append(os.Environ(), "COSTLAKE_METRICS_ADDRESS=127.0.0.1:0"), env...)
	log, err := os.Create(filepath.Join(t.TempDir(), "worker.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("worker log:\n%s", out)
		}
	})
	return cmd
}

// TestWorkerKilledMidIngestion kills the worker process with SIGKILL while
// chunks are being converted; a new worker finishes the ingestion, and the
// table holds every source row exactly once, reconciled to the last digit,
// with no stray files.
func TestWorkerKilledMidIngestion(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes")
	}
	ts := newTemporal(t)
	c := ts.GetDefaultClient()
	dir := t.TempDir()
	catalog, warehouse := testCatalog(t, dir), "file://"+filepath.Join(dir, "warehouse")
	env := []string{
		"COSTLAKE_TEMPORAL_ADDRESS=" + ts.GetFrontendHostPort(),
		"COSTLAKE_TEMPORAL_NAMESPACE=" + ts.GetDefaultNamespace(),
		"COSTLAKE_CATALOG=" + catalog,
		"COSTLAKE_WAREHOUSE=" + warehouse,
		"COSTLAKE_FILE_ROOTS=" + dir, // the source below
	}
	root := filepath.Join(dir, "bucket")
	gen, err := synth.Generate(context.Background(), blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "crash", Period: "2026-08", Rows: 240_000, Files: 8, Seed: 11})
	require.NoError(t, err)

	first := startWorker(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := workflows.StartIngestion(ctx, c, workflows.IngestBillingPeriodInput{Source: "file://" + filepath.Join(root, "cur", "crash"), Period: billingPeriod("2026-08")})
	require.NoError(t, err)

	// Kill the worker once a chunk is done and others are under way.
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.IngestProgressQuery)
		var p workflows.IngestProgress
		return err == nil && v.Get(&p) == nil && p.ChunksDone >= 1
	}, 2*time.Minute, 100*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_, _ = first.Process.Wait()

	startWorker(t, env)
	var res workflows.IngestBillingPeriodResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, int64(240_000), res.Rows)

	// The kill hit work in flight: some activity needed a second attempt.
	retried := 0
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enums.EVENT_TYPE_ACTIVITY_TASK_STARTED && ev.GetActivityTaskStartedEventAttributes().GetAttempt() > 1 {
			retried++
		}
	}
	require.Positive(t, retried, "no activity was interrupted by the kill")

	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: catalog, Warehouse: warehouse})
	require.NoError(t, err)
	defer lake.Close()
	s := &stack{t: t, lake: lake, dir: dir}
	requireSynthTotalsFor(t, s, gen, res.PayerAccountID, "2026-08")

	// Every Parquet file on disk is one the table references.
	tbl, err := lake.LineItems(ctx)
	require.NoError(t, err)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	require.NoError(t, err)
	var referenced []string
	for _, task := range tasks {
		referenced = append(referenced, strings.TrimPrefix(task.File.FilePath(), "file://"))
	}
	require.ElementsMatch(t, referenced, s.dataFiles())
}

// A production worker that cannot open its catalog refuses to start,
// before it takes any activity, and says why without the password.
func TestWorkerRefusesAnUnreachableCatalog(t *testing.T) {
	bin := productionBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "worker", "--catalog", "postgres://costlake:hunter2@127.0.0.1:1/costlake",
		"--warehouse", "file://"+t.TempDir(), "--aws-principal-arn", "arn:aws:iam::999999999999:role/costlake-worker")
	cmd.Env = append(os.Environ(), "COSTLAKE_TEMPORAL_ADDRESS=127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the worker exits: %s", out)
	require.NotEqual(t, 0, exit.ExitCode())
	require.Contains(t, string(out), "refusing to start")
	require.Contains(t, string(out), "COSTLAKE_CATALOG")
	require.NotContains(t, string(out), "hunter2")
	require.NotContains(t, string(out), "Temporal", "the catalog is checked before Temporal")
}
