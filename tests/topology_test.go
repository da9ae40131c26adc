package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/workflows"
)

// process is a costlake command of the production build running as its
// own process, its output in a log file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProduction runs the production binary with args and env (added to
// the test's environment) in dir. It is killed when the test ends; a
// failed test logs the last lines of its output.
func startProduction(t *testing.T, name, dir string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(productionBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	require.NoError(t, err)
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s log, last lines:\n%s", name, tailLines(p.log, 30))
		}
	})
	return p
}

func tailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// identity is the Temporal identity the SDK gives the process's worker.
func (p *process) identity() string { return strconv.Itoa(p.cmd.Process.Pid) + "@" }

// waitReady polls url until it answers 200, failing the test if the
// process exits first.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready:\n%s", p.cmd.Args, tailLines(p.log, 30))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s: %v", p.cmd.Args, url, err)
		}
	}
}

// TestProductionTopology runs the production shape on one machine, every
// part its own process: a Temporal server on PostgreSQL (persistence and
// visibility), the catalog on PostgreSQL, the warehouse on MinIO, two
// `costlake worker` processes and one `costlake gateway` of the
// production build. Through the gateway's HTTP API alone, as an operator,
// it ingests a payer's delivery from a MinIO bucket and, while a chunk is
// being converted, kills the worker converting it with SIGKILL: the other
// worker finishes, and the table holds every source row exactly once,
// reconciled to the last digit per account, with no stray data file. Then
// it describes a customer owning two of the payer's accounts, with a
// pricebook, closes its cycle and checks the bill and the at-cost export
// against the table, summed and priced independently. The payer is named
// on the ingestion (POST /v1/ingestions): onboarding one through POST
// /v1/payers needs AWS's APIs, which the onboarding tests emulate.
func TestProductionTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, MinIO, Temporal and costlake as processes")
	}
	pg, err := harness.StartPostgres()
	if errors.Is(err, harness.ErrNoPostgres) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(pg.Stop)
	temporal := harness.StartTemporalOnPostgres(t, pg)
	catalog := pg.CreateDatabase(t, "costlake")
	minio := harness.MinIO(t)
	minio.CreateBucket(t, "warehouse")
	source := minio.CreateBucket(t, "acme-cur")
	exports := minio.CreateBucket(t, "acme-bills")

	// A payer's delivery of 8 chunks, each row carrying AWS's invoice ID:
	// the period is then final by its data, whatever day the test runs.
	const (
		payerID = "552233445566"
		period  = "2026-09"
		rows    = 120_000
	)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	gen := invoicedDelivery(t, source, synth.Options{Prefix: "cur", Report: "billing", Bucket: "acme-cur", Period: period,
		Rows: rows, Files: 8, Seed: 23, Payer: payerID, LinkedAccounts: 5})

	dir := t.TempDir()
	common := []string{
		"COSTLAKE_TEMPORAL_ADDRESS=" + temporal.HostPort,
		"COSTLAKE_TEMPORAL_NAMESPACE=" + temporal.Namespace,
		"COSTLAKE_CATALOG=" + catalog,
		"COSTLAKE_LOG_FORMAT=json",
	}
	workerEnv := append(slices.Clone(common),
		"COSTLAKE_WAREHOUSE=s3://warehouse/costlake",
		"COSTLAKE_WAREHOUSE_S3_ENDPOINT="+minio.Endpoint,
		"COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID="+minio.AccessKey,
		"COSTLAKE_WAREHOUSE_AWS_SECRET_ACCESS_KEY="+minio.SecretKey,
		// Customers' buckets: the worker's own identity, on MinIO.
		"COSTLAKE_S3_ENDPOINT="+minio.Endpoint,
		"AWS_ACCESS_KEY_ID="+minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+minio.SecretKey,
		"AWS_REGION=us-east-1",
		"COSTLAKE_TEMPLATES="+filepath.Join(dir, "templates"),
		"COSTLAKE_MAX_CONCURRENT_ACTIVITIES=2",
	)
	// A production namespace gets costlake's search attributes once,
	// before any worker or gateway starts.
	setup := exec.Command(productionBinary(t), "setup")
	setup.Env = append(os.Environ(), common...)
	out, err := setup.CombinedOutput()
	require.NoError(t, err, "costlake setup: %s", out)
	workers, ready := make([]*process, 2), make([]string, 2)
	for i := range workers {
		metrics := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
		workers[i] = startProduction(t, fmt.Sprintf("worker-%d", i+1), dir, append(slices.Clone(workerEnv), "COSTLAKE_METRICS_ADDRESS="+metrics), "worker")
		ready[i] = "http://" + metrics + "/readyz" // polling, and Temporal answers
	}

	keys := filepath.Join(dir, "keys.json")
	out, err = exec.Command(productionBinary(t), "apikey", "--name", "admin", "--role", "operator", "--file", keys).Output()
	require.NoError(t, err)
	key := strings.TrimSpace(string(out))
	httpAddr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	gw := startProduction(t, "gateway", dir, append(slices.Clone(common),
		"COSTLAKE_HTTP_ADDRESS="+httpAddr,
		"COSTLAKE_API_KEYS_FILE="+keys,
		"COSTLAKE_METRICS_ADDRESS=127.0.0.1:"+strconv.Itoa(harness.FreePort(t)),
	), "gateway")
	base := "http://" + httpAddr
	gw.waitReady(t, base+"/readyz")
	for i, w := range workers {
		w.waitReady(t, ready[i])
	}
	op := apiClient{t: t, base: base, key: key}

	// The test watches Temporal only to time the kill and read history.
	tc, err := client.Dial(client.Options{HostPort: temporal.HostPort, Namespace: temporal.Namespace, Logger: quietSDKLogger{}})
	require.NoError(t, err)
	defer tc.Close()

	var started gateway.IngestionResponse
	require.Equal(t, http.StatusAccepted, op.do("POST", "/v1/ingestions",
		`{"source":"s3://acme-cur/cur/billing","period":"`+period+`","payer_account_id":"`+payerID+`","concurrency":4}`, &started))
	require.Equal(t, "ingest/"+payerID+"/"+period, started.ID)

	// Kill a worker converting a chunk, once another chunk is done. The
	// worker is stopped (SIGSTOP) before the check that it still holds
	// the conversion, so the conversion cannot finish between the check
	// and the kill.
	victim := -1
	converting := func(w *process) bool {
		desc, err := tc.DescribeWorkflowExecution(ctx, started.ID, started.RunID)
		if err != nil {
			return false
		}
		for _, pa := range desc.GetPendingActivities() {
			if pa.GetActivityType().GetName() == ingest.ConvertChunkActivity && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED &&
				strings.HasPrefix(pa.GetLastWorkerIdentity(), w.identity()) {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool {
		v, err := tc.QueryWorkflow(ctx, started.ID, started.RunID, workflows.IngestProgressQuery)
		var p workflows.IngestProgress
		if err != nil || v.Get(&p) != nil || p.ChunksDone < 1 {
			return false
		}
		for i, w := range workers {
			if !converting(w) {
				continue
			}
			require.NoError(t, w.cmd.Process.Signal(syscall.SIGSTOP))
			time.Sleep(200 * time.Millisecond) // a completion already sent lands
			if converting(w) {
				require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
				victim = i
				return true
			}
			require.NoError(t, w.cmd.Process.Signal(syscall.SIGCONT))
		}
		return false
	}, 3*time.Minute, 50*time.Millisecond, "no chunk was being converted after the first was done")
	<-workers[victim].done
	survivor := 1 - victim
	t.Logf("killed worker-%d (pid %d) mid-conversion", victim+1, workers[victim].cmd.Process.Pid)

	var got gateway.IngestionResponse
	require.Eventually(t, func() bool {
		op.do("GET", "/v1/ingestions/"+started.ID, "", &got)
		return got.Status != "running"
	}, 4*time.Minute, 500*time.Millisecond)
	require.Equal(t, "completed", got.Status, got.Failure)
	require.NotNil(t, got.Result)
	require.Equal(t, int64(rows), got.Result.Rows)
	require.Equal(t, payerID, got.Result.PayerAccountID)
	for _, a := range got.Result.Accounts {
		require.Equal(t, gen.Accounts[a.Account].UnblendedCost, a.UnblendedCost.String(), "account %s", a.Account)
	}

	// The killed conversion was retried, and finished, on the other worker.
	retried := 0
	it := tc.GetWorkflowHistory(ctx, started.ID, started.RunID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
			require.True(t, strings.HasPrefix(a.GetIdentity(), workers[survivor].identity()), "attempt %d ran on %s", a.GetAttempt(), a.GetIdentity())
			retried++
		}
	}
	require.Positive(t, retried, "no activity was interrupted by the kill")

	// The table, read through the catalog with iceberg-go and summed with
	// shopspring/decimal, equals the source exactly; every data file in
	// the warehouse is one the table references.
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: catalog, Warehouse: "s3://warehouse/costlake", S3: minio.S3Options()})
	require.NoError(t, err)
	defer lake.Close()
	s := &stack{t: t, lake: lake, dir: dir}
	requireSynthTotalsFor(t, s, gen, payerID, period)
	tbl, err := lake.LineItems(ctx)
	require.NoError(t, err)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	require.NoError(t, err)
	var referenced, stored []string
	for _, task := range tasks {
		referenced = append(referenced, strings.TrimPrefix(task.File.FilePath(), "s3://warehouse/"))
	}
	warehouse, err := blob.NewS3(ctx, "warehouse", minio.S3Options())
	require.NoError(t, err)
	objects, err := warehouse.List(ctx, "costlake/")
	require.NoError(t, err)
	for _, o := range objects {
		if strings.HasSuffix(o.Key, ".parquet") && strings.Contains(o.Key, "/data/") {
			stored = append(stored, o.Key)
		}
	}
	require.NotEmpty(t, stored)
	require.ElementsMatch(t, referenced, stored, "data files in the warehouse")

	// A customer owns two of the payer's linked accounts, with a pricebook;
	// its cycle closes and exports at cost to its bucket.
	var linked []string
	for a := range gen.Accounts {
		if a != payerID {
			linked = append(linked, a)
		}
	}
	slices.Sort(linked)
	require.GreaterOrEqual(t, len(linked), 2)
	owned := linked[:2]
	require.Equal(t, http.StatusOK, op.do("PUT", "/v1/customers/acme",
		`{"name":"Acme","export":{"url":"s3://acme-bills/costlake","mode":"at_cost","operator_override":true}}`, nil))
	require.Equal(t, http.StatusOK, op.do("PUT", "/v1/customers/acme/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["`+owned[0]+`","`+owned[1]+`"]}]}`, nil))
	require.Equal(t, http.StatusOK, op.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"10"}`, nil))
	var view struct {
		Accounts []struct {
			PayerAccountID string   `json:"payer_account_id"`
			Accounts       []string `json:"accounts"`
		} `json:"accounts"`
	}
	require.Equal(t, http.StatusOK, op.do("GET", "/v1/customers/acme?period="+period, "", &view))
	require.Len(t, view.Accounts, 1)
	require.ElementsMatch(t, owned, view.Accounts[0].Accounts)

	require.Equal(t, http.StatusAccepted, op.do("POST", "/v1/customers/acme/cycles/"+period+"/close", "", nil))
	var cyc gateway.CycleResponse
	require.Eventually(t, func() bool {
		cyc = gateway.CycleResponse{}
		op.do("GET", "/v1/customers/acme/cycles/"+period, "", &cyc)
		return cyc.Status != "running" && cyc.Status != ""
	}, 3*time.Minute, 500*time.Millisecond)
	require.Equal(t, "completed", cyc.Status, cyc.Failure)
	res := cyc.Result
	require.NotNil(t, res)
	require.Equal(t, map[string]int64{payerID: got.Result.SnapshotID}, res.Snapshots, "the cycle pins the ingested snapshot")

	cs := &cycleStack{stack: s}
	lines := filterRows(cs.snapshotRows(payerID, period, got.Result.SnapshotID), owned)
	wantCost := sumOf(lines, func(string) bool { return true })
	var fromSource decimal.Decimal
	for _, a := range owned {
		fromSource = fromSource.Add(dec(t, gen.Accounts[a].UnblendedCost))
	}
	require.Truef(t, wantCost.Equal(fromSource), "table %s, source %s", wantCost, fromSource)
	require.Truef(t, dec(t, res.Bill.Cost.String()).Equal(wantCost), "bill cost %s, table %s", res.Bill.Cost, wantCost)
	wantTotal := priceIndependently(lines, "10", nil)
	require.Truef(t, dec(t, res.Bill.Total.String()).Equal(wantTotal), "bill total %s, priced independently %s", res.Bill.Total, wantTotal)

	require.Len(t, res.Exports, 1)
	n, sum, m := exportSum(t, exports, res.Exports[0].ManifestKey)
	require.Equal(t, export.AtCost, m.Mode)
	require.Equal(t, len(lines), n)
	require.Equal(t, int64(n), res.Rows)
	require.Truef(t, sum.Equal(wantCost), "at-cost export %s, table %s", sum, wantCost)
	require.Equal(t, []string{"s3://acme-bills/" + res.Exports[0].ManifestKey}, res.ExportKeys)
}

// invoicedDelivery generates o's delivery and uploads it to store with
// every row's bill/InvoiceId set, as AWS writes once the month is
// invoiced. Costs are untouched, so the generator's totals still hold.
func invoicedDelivery(t *testing.T, store blob.Store, o synth.Options) *synth.Result {
	t.Helper()
	ctx := context.Background()
	local := blob.NewLocal(t.TempDir())
	gen, err := synth.Generate(ctx, local, o)
	require.NoError(t, err)
	for _, key := range gen.ReportKeys {
		rc, err := local.Open(ctx, key)
		require.NoError(t, err)
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(synth.WithInvoiceID(rc, pw, "EUINIE26-"+o.Period)) }()
		require.NoError(t, store.Put(ctx, key, pr))
		rc.Close()
	}
	for _, key := range []string{gen.AssemblyManifestKey, gen.ManifestKey} { // manifests last, as AWS writes them
		rc, err := local.Open(ctx, key)
		require.NoError(t, err)
		require.NoError(t, store.Put(ctx, key, rc))
		rc.Close()
	}
	return gen
}

// quietSDKLogger keeps the test's own Temporal client quiet.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(string, ...any)  {}
func (quietSDKLogger) Error(string, ...any) {}
