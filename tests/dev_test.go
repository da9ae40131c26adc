package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/export"
	payerpkg "github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/workflows"
)

// devProcess is `costlake dev` running as a separate process.
type devProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan error
}

func startDev(t *testing.T, bin string, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{cmd: exec.Command(bin, append([]string{"dev"}, args...)...), done: make(chan error, 1)}
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.cmd.Stderr = p.cmd.Stdout
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

func (p *devProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *devProcess) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.output(), text) {
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("costlake dev exited (%v) before printing %q:\n%s", err, text, p.output())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("costlake dev did not print %q within %s:\n%s", text, timeout, p.output())
}

// stop sends Ctrl-C and expects a clean exit.
func (p *devProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-p.done:
		require.NoErrorf(t, err, "costlake dev did not exit cleanly:\n%s", p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("costlake dev did not stop within 60s of Ctrl-C:\n%s", p.output())
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDevDemo runs the README's run command as a user would: `dev --demo`
// shows the whole platform without AWS, so after it the dev server holds
// every kind of run (onboarding, crawl, ingestion, cycle) and every
// schedule (the payer's crawl, month-end, maintenance), and the closed
// cycle's export and invoice are in the local folder, reconciled. The UI
// and /healthz answer, Ctrl-C stops it cleanly, and a restart with --demo
// on the same data folder does nothing twice and still has the history
// and the table rows.
func TestDevDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the costlake binary")
	}
	dir := t.TempDir()
	bin := costlakeBinary(t)

	data := filepath.Join(dir, "data")
	temporalPort, uiPort, httpPort := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	// Pinned: the test never asks the wall clock which month is "last".
	const today, period, rows = "2026-10-05", "2026-09", 3000
	args := []string{"--data-dir", data, "--temporal-port", fmt.Sprint(temporalPort), "--ui-port", fmt.Sprint(uiPort),
		"--http", fmt.Sprintf("127.0.0.1:%d", httpPort), "--today", today}
	demo := append(slices.Clone(args), "--demo", "--demo-rows", fmt.Sprint(rows))

	first := startDev(t, bin, demo...)
	first.waitFor(t, "demo: done", 4*time.Minute)
	require.Equal(t, http.StatusOK, getStatus(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)))
	require.Equal(t, http.StatusOK, getStatus(t, fmt.Sprintf("http://127.0.0.1:%d/", uiPort)))
	for _, where := range []string{"CostlakeKind%3D%22onboarding%22", filepath.Join(data, "exports"), filepath.Join(data, "operator.key"), fmt.Sprintf("http://127.0.0.1:%d/", httpPort)} {
		require.Contains(t, first.output(), where, "the demo prints where to look")
	}

	c, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", temporalPort), Logger: quietSDKLogger{}})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	types := map[string]int{}
	var next []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: next})
		require.NoError(t, err)
		for _, e := range resp.GetExecutions() {
			types[e.GetType().GetName()]++
		}
		if next = resp.GetNextPageToken(); len(next) == 0 {
			break
		}
	}
	for _, typ := range []string{"OnboardPayer", "CrawlPayer", "IngestBillingPeriod", "CloseBillingCycle"} {
		require.Positivef(t, types[typ], "no %s run after dev --demo; runs: %v", typ, types)
	}
	require.Equal(t, 1, types["CloseBillingCycle"], "one cycle closed")
	// The filters the demo prints find its runs.
	for _, q := range []string{`CostlakeKind="onboarding"`, `CostlakeKind="crawl"`, `CostlakeKind="ingestion"`, `CostlakeKind="cycle"`,
		`CostlakePayer="111122223333" OR CostlakeCustomer="demo"`} {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q})
		require.NoError(t, err, q)
		require.NotEmpty(t, resp.GetExecutions(), "no run matches %s", q)
	}
	schedules := map[string]bool{}
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	require.NoError(t, err)
	for it.HasNext() {
		s, err := it.Next()
		require.NoError(t, err)
		schedules[s.ID] = true
	}
	for _, id := range []string{workflows.CrawlScheduleID("111122223333"), monthend.ScheduleID, maintain.ScheduleID} {
		require.Truef(t, schedules[id], "no schedule %s; schedules: %v", id, schedules)
	}
	payer, err := c.QueryWorkflow(ctx, workflows.OnboardingWorkflowID("111122223333"), "", workflows.OnboardingStateQuery)
	require.NoError(t, err)
	var st workflows.OnboardingState
	require.NoError(t, payer.Get(&st))
	require.Equal(t, workflows.StatusActive, st.Status)
	require.Equal(t, payerpkg.Local, st.Registration.Access.Mode)

	// The cycle's export and invoice, in the customer's local folder.
	exports := blob.NewLocal(filepath.Join(data, "exports"))
	jsonKey, csvKey := export.InvoiceKeys("at-resale", "demo", period)
	inv, err := export.ReadInvoice(ctx, exports, jsonKey)
	require.NoError(t, err)
	require.NoError(t, inv.Check(), "invoice.json reconciles")
	require.Equal(t, int64(rows), inv.Reconciliation.ExportedRows)
	require.Positive(t, inv.Total.Cmp(inv.Cost), "the pricebook's markup, support fee and VAT are on the bill")
	_, err = exports.Stat(ctx, csvKey)
	require.NoError(t, err)
	for _, m := range inv.Reconciliation.Manifests { // keys of the file:// store, rooted at /
		_, err := blob.NewLocal("/").Stat(ctx, m)
		require.NoError(t, err, "the line items' export %s", m)
	}
	first.stop(t)

	// Again, on the same folder: every step is found done.
	second := startDev(t, bin, demo...)
	second.waitFor(t, "demo: done", 2*time.Minute)
	require.NotContains(t, second.output(), "demo: closing", "the closed cycle is not closed again")
	require.NotContains(t, second.output(), "demo: registering", "the payer is not registered again")
	desc, err := c.DescribeWorkflowExecution(ctx, workflows.CycleWorkflowID("demo", billingPeriod(period)), "")
	require.NoError(t, err, "the demo's cycle must survive the restart")
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	second.stop(t)

	// A plain restart keeps the history too.
	third := startDev(t, bin, args...)
	third.waitFor(t, "costlake is running", 2*time.Minute)
	third.stop(t)

	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(data, "catalog.db"), Warehouse: "file://" + filepath.Join(data, "warehouse")})
	require.NoError(t, err)
	defer lake.Close()
	totals, err := lake.PeriodTotals(ctx, billing.LineItems, "111122223333", billingPeriod(period), 0)
	require.NoError(t, err)
	var n int64
	for _, tot := range totals {
		n += tot.Rows
	}
	require.Equal(t, int64(rows), n, "the demo rows must survive the restart")
}
