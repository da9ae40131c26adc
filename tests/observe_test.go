package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/server/temporaltest"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/searchattr"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/workflows"
)

// newTemporal is a test Temporal server whose namespace holds costlake's
// search attributes, as `costlake setup` leaves a production one: every
// costlake run is started with them.
func newTemporal(t *testing.T, opts ...temporaltest.TestServerOption) *temporaltest.TestServer {
	t.Helper()
	ts := temporaltest.NewServer(append([]temporaltest.TestServerOption{temporaltest.WithT(t)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := searchattr.Ensure(ctx, ts.GetDefaultClient(), ts.GetDefaultNamespace())
	require.NoError(t, err)
	return ts
}

// TestObservability runs production `costlake setup`, `worker` and
// `gateway` processes on a bare Temporal server: setup adds the search
// attributes (twice: the second changes nothing), a worker refuses to
// start before it, and after an ingestion the worker's /metrics counts
// exactly the rows and bytes of the source, the commit and the chunks,
// beside the SDK's temporal_* series; the gateway's /metrics counts its
// requests by route pattern; the ingestion is listed by its search
// attributes, shows its summary and its current details, and the
// worker's JSON logs name the workflow, the payer and the period.
func TestObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker and gateway processes")
	}
	bin := productionBinary(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t)) // bare: no search attributes yet
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	temporalEnv := []string{
		"COSTLAKE_TEMPORAL_ADDRESS=" + ts.GetFrontendHostPort(),
		"COSTLAKE_TEMPORAL_NAMESPACE=" + ts.GetDefaultNamespace(),
	}
	workerEnv := append([]string{
		"COSTLAKE_CATALOG=" + testCatalog(t, dir),
		"COSTLAKE_WAREHOUSE=file://" + filepath.Join(dir, "warehouse"),
		"COSTLAKE_FILE_ROOTS=" + dir,
	}, temporalEnv...)

	// Before setup, a worker refuses to start and says what to run.
	early := exec.CommandContext(ctx, bin, "worker", "--metrics-address", "")
	early.Env = append(os.Environ(), workerEnv...)
	out, err := early.CombinedOutput()
	require.Error(t, err, "a worker started on a namespace without the search attributes: %s", out)
	require.Contains(t, string(out), "costlake setup")
	require.Contains(t, string(out), "CostlakePayer")

	setup := func() string {
		cmd := exec.CommandContext(ctx, bin, "setup")
		cmd.Env = append(os.Environ(), temporalEnv...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "costlake setup: %s", out)
		return string(out)
	}
	require.Contains(t, setup(), "added the search attributes CostlakeCustomer, CostlakeKind, CostlakePayer, CostlakePeriod")
	require.Contains(t, setup(), "already has costlake's search attributes")
	attrs, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ts.GetDefaultNamespace()})
	require.NoError(t, err)
	for _, name := range []string{"CostlakePayer", "CostlakeCustomer", "CostlakePeriod", "CostlakeKind"} {
		require.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, attrs.GetCustomAttributes()[name], name)
	}

	workerMetrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	workerLog := startProcess(t, bin, append(workerEnv, "COSTLAKE_METRICS_ADDRESS="+workerMetrics), "worker")
	require.Eventually(t, func() bool { return httpStatus(t, "http://"+workerMetrics+"/readyz", "") == http.StatusOK },
		time.Minute, 100*time.Millisecond, "the worker's /readyz never answered 200")
	require.Equal(t, http.StatusOK, httpStatus(t, "http://"+workerMetrics+"/healthz", ""))

	const payer, period = "123456789012", "2026-08"
	root := filepath.Join(dir, "bucket")
	gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "observe", Period: period, Rows: 6000, Files: 3, Seed: 5, Payer: payer})
	require.NoError(t, err)
	var sourceBytes int64
	for _, key := range gen.ReportKeys {
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(key)))
		require.NoError(t, err)
		sourceBytes += st.Size()
	}
	run, err := workflows.StartIngestion(ctx, c, workflows.IngestBillingPeriodInput{
		Source: "file://" + filepath.Join(root, "cur", "observe"), Period: billingPeriod(period), PayerAccountID: payer,
	})
	require.NoError(t, err)
	var res workflows.IngestBillingPeriodResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, int64(gen.Rows), res.Rows)

	// The worker's metrics: exactly what the source held.
	families := scrapeMetrics(t, "http://"+workerMetrics+"/metrics")
	require.Equal(t, float64(gen.Rows), counterSum(t, families, "costlake_rows_ingested_total", map[string]string{"format": res.Format}))
	require.Equal(t, float64(sourceBytes), counterSum(t, families, "costlake_bytes_ingested_total", map[string]string{"format": res.Format}))
	require.Equal(t, uint64(1), histogramCount(t, families, "costlake_commit_duration_seconds", map[string]string{"table": res.Table}))
	require.Equal(t, uint64(len(gen.ReportKeys)), histogramCount(t, families, "costlake_ingestion_duration_seconds", map[string]string{"stage": "convert"}))
	require.Equal(t, uint64(1), histogramCount(t, families, "costlake_ingestion_duration_seconds", map[string]string{"stage": "reconcile"}))
	require.NotContains(t, families, "costlake_reconciliation_failures_total", "no reconciliation failed")
	var sdkSeries []string
	for name := range families {
		if strings.HasPrefix(name, "temporal_") {
			sdkSeries = append(sdkSeries, name)
		}
	}
	require.Contains(t, sdkSeries, "temporal_activity_execution_latency_seconds", "the SDK's series: %v", sdkSeries)
	require.Contains(t, sdkSeries, "temporal_request_total", "the SDK's series: %v", sdkSeries)

	// The gateway's metrics: its requests by route pattern, never by path.
	key, entry := gateway.NewAPIKey("observer", gateway.RoleOperator, "")
	keysFile := filepath.Join(dir, "keys.json")
	writeKeys(t, keysFile, entry)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	gatewayMetrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	startProcess(t, bin, append(temporalEnv, "COSTLAKE_API_KEYS_FILE="+keysFile, "COSTLAKE_HTTP_ADDRESS="+httpAddr, "COSTLAKE_METRICS_ADDRESS="+gatewayMetrics), "gateway")
	require.Eventually(t, func() bool { return httpStatus(t, "http://"+httpAddr+"/healthz", "") == http.StatusOK },
		time.Minute, 100*time.Millisecond, "the gateway never answered")
	require.Equal(t, http.StatusOK, httpStatus(t, "http://"+httpAddr+"/v1/ingestions/"+run.GetID(), key))
	require.Equal(t, http.StatusNotFound, httpStatus(t, "http://"+httpAddr+"/v1/payers/999999999999", key))
	require.Equal(t, http.StatusNotFound, httpStatus(t, "http://"+gatewayMetrics+"/readyz", ""), "the gateway's probes are on its main port")
	gw := scrapeMetrics(t, "http://"+gatewayMetrics+"/metrics")
	require.Equal(t, float64(1), counterSum(t, gw, "costlake_http_requests_total", map[string]string{"route": "/v1/ingestions/*", "method": "GET", "status": "200"}))
	require.Equal(t, float64(1), counterSum(t, gw, "costlake_http_requests_total", map[string]string{"route": "/v1/payers/:id", "method": "GET", "status": "404"}))
	for _, m := range gw["costlake_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			require.NotContains(t, l.GetValue(), payer, "a label holds a path")
			require.NotContains(t, l.GetValue(), "999999999999", "a label holds a path")
		}
	}
	require.Contains(t, gw, "temporal_request_total", "the gateway's client reports the SDK's series")

	// Listed by its search attributes (visibility may lag a little).
	query := fmt.Sprintf("CostlakePayer = '%s' AND CostlakeKind = 'ingestion' AND CostlakePeriod = '%s'", payer, period)
	var listed []string
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ts.GetDefaultNamespace(), Query: query})
		require.NoError(t, err)
		listed = nil
		for _, e := range resp.GetExecutions() {
			listed = append(listed, e.GetExecution().GetWorkflowId()+"/"+e.GetExecution().GetRunId())
		}
		return len(listed) > 0
	}, 30*time.Second, 200*time.Millisecond, "no run listed by %s", query)
	require.Equal(t, []string{run.GetID() + "/" + run.GetRunID()}, listed)
	other, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ts.GetDefaultNamespace(), Query: "CostlakePayer = '999999999999'"})
	require.NoError(t, err)
	require.Empty(t, other.GetExecutions(), "another payer's query lists this run")

	// Its summary and its current details, as the UI shows them.
	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	var summary string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary))
	require.Equal(t, "ingest 2026-08 for payer "+payer, summary)
	v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), "__temporal_workflow_metadata")
	require.NoError(t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&md))
	require.Equal(t, "done: 3 chunks, 6,000 rows", md.GetCurrentDetails())

	// The worker's logs are JSON; a chunk's names its run, payer and period.
	var chunkLogs int
	f, err := os.Open(workerLog)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "a log line is not JSON: %s", sc.Text())
		if line["msg"] != "converted chunk" {
			continue
		}
		chunkLogs++
		require.Equal(t, run.GetID(), line["WorkflowID"], "%s", sc.Text())
		require.Equal(t, run.GetRunID(), line["RunID"], "%s", sc.Text())
		require.Equal(t, payer, line["payer"], "%s", sc.Text())
		require.Equal(t, period, line["period"], "%s", sc.Text())
	}
	require.NoError(t, sc.Err())
	require.Equal(t, len(gen.ReportKeys), chunkLogs, "one log line per chunk")
}

// startProcess runs a costlake command until the test ends and returns
// the file its output goes to.
func startProcess(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logPath := filepath.Join(t.TempDir(), args[0]+".log")
	log, err := os.Create(logPath)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", args[0], out)
		}
	})
	return logPath
}

// httpStatus is the status of a GET, 0 when nothing answers.
func httpStatus(t *testing.T, url, key string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// scrapeMetrics reads a /metrics page in the Prometheus text format.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// matching are a family's series whose labels include want.
func matching(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no %s", name)
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range want {
			ok = ok && labels[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	require.NotEmpty(t, out, "no %s%v", name, want)
	return out
}

// counterSum sums a counter's series whose labels include want.
func counterSum(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, m := range matching(t, families, name, want) {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// histogramCount counts a histogram's observations whose labels include want.
func histogramCount(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range matching(t, families, name, want) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}
