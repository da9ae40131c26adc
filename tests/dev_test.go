package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
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

// TestDevSurvivesRestart runs the README's run command as a user would: the
// stack comes up with the demo, the UI and /healthz answer, Ctrl-C stops
// it cleanly, and a restart on the same data folder still has the
// workflow history and the table rows.
func TestDevSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the costlake binary")
	}
	dir := t.TempDir()
	bin := costlakeBinary(t)

	data := filepath.Join(dir, "data")
	temporalPort, uiPort, httpPort := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	args := []string{"--data-dir", data, "--temporal-port", fmt.Sprint(temporalPort), "--ui-port", fmt.Sprint(uiPort),
		"--http", fmt.Sprintf("127.0.0.1:%d", httpPort)}

	const period = "2026-09" // pinned: the test never asks the wall clock which month is "last"
	first := startDev(t, bin, append(args, "--demo", "--demo-rows", "3000", "--demo-period", period)...)
	first.waitFor(t, "TOTAL", 3*time.Minute)
	require.Equal(t, http.StatusOK, getStatus(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)))
	require.Equal(t, http.StatusOK, getStatus(t, fmt.Sprintf("http://127.0.0.1:%d/", uiPort)))
	first.stop(t)
	require.Contains(t, first.output(), "3000")

	second := startDev(t, bin, args...)
	second.waitFor(t, "costlake is running", 2*time.Minute)
	c, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", temporalPort)})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	id := "ingest/file://" + filepath.Join(data, "source", "cur", "costlake-demo") + "/" + period
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err, "the demo workflow must survive the restart")
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	second.stop(t)

	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(data, "catalog.db"), Warehouse: "file://" + filepath.Join(data, "warehouse")})
	require.NoError(t, err)
	defer lake.Close()
	totals, err := lake.PeriodTotals(ctx, billing.LineItems, "111122223333", billingPeriod(period), 0)
	require.NoError(t, err)
	var rows int64
	for _, tot := range totals {
		rows += tot.Rows
	}
	require.Equal(t, int64(3000), rows, "the demo rows must survive the restart")
}
