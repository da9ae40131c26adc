package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// TemporalServer is a Temporal server running as its own process.
type TemporalServer struct {
	// HostPort is the frontend's gRPC address, e.g. "127.0.0.1:PORT".
	HostPort string
	// Namespace is the namespace the server registered.
	Namespace string
}

// temporalPGPackage is the test-only main that runs the server on PostgreSQL.
const temporalPGPackage = "github.com/costlake/costlake/tests/harness/temporalpg"

// StartTemporalOnPostgres builds tests/harness/temporalpg and runs it as a
// process: a Temporal server on pg, its persistence in the database
// temporal and its visibility in temporal_visibility (both created with
// their schemas), the namespace "default" registered. It returns once the
// frontend passes a health check and describes the namespace; the process
// is stopped when the test ends, and its log's last lines are logged if
// the test failed.
func StartTemporalOnPostgres(t testing.TB, pg *PostgresServer) *TemporalServer {
	t.Helper()
	bin := buildTemporalPG(t)
	dir := t.TempDir()
	const attempts = 3
	for i := 1; ; i++ {
		srv, err := startTemporalPG(t, bin, dir, i, pg)
		if err == nil {
			return srv
		}
		if i == attempts || !errors.Is(err, errPortTaken) {
			t.Fatalf("harness: %v", err)
		}
		t.Logf("harness: attempt %d failed, retrying with another port: %v", i, err)
	}
}

func startTemporalPG(t testing.TB, bin, dir string, attempt int, pg *PostgresServer) (*TemporalServer, error) {
	t.Helper()
	port := FreePort(t)
	srv := &TemporalServer{HostPort: "127.0.0.1:" + strconv.Itoa(port), Namespace: "default"}
	logPath := filepath.Join(dir, fmt.Sprintf("temporal-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, "--pg-addr", pg.Addr(), "--pg-user", pg.User(),
		"--db", "temporal", "--visibility-db", "temporal_visibility",
		"--port", strconv.Itoa(port), "--namespace", srv.Namespace)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	if err := waitTemporal(srv, done, 2*time.Minute); err != nil {
		stop()
		tail := tailFile(logPath, 40)
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("temporal server on PostgreSQL at %s: %w\n--- %s (last lines) ---\n%s", srv.HostPort, err, logPath, tail)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("harness: Temporal log (%s), last lines:\n%s", logPath, tailFile(logPath, 40))
		}
	})
	return srv, nil
}

// waitTemporal polls until the frontend answers its health check and
// describes the namespace, the process exits, or the timeout passes.
func waitTemporal(srv *TemporalServer, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := probeTemporal(srv)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("server exited before it was ready")
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
	}
}

func probeTemporal(srv *TemporalServer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.HostPort, Namespace: srv.Namespace, Logger: silentLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: srv.Namespace})
	return err
}

// silentLogger keeps the SDK's retries of a server still starting out of
// the test's output.
type silentLogger struct{}

func (silentLogger) Debug(string, ...any) {}
func (silentLogger) Info(string, ...any)  {}
func (silentLogger) Warn(string, ...any)  {}
func (silentLogger) Error(string, ...any) {}

// buildTemporalPG builds the temporalpg main into the test's temporary
// folder; Go's build cache makes later builds a link.
func buildTemporalPG(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "temporalpg")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", out, temporalPGPackage).CombinedOutput(); err != nil {
		t.Fatalf("harness: go build %s: %v\n%s", temporalPGPackage, err, b)
	}
	t.Logf("harness: built temporalpg in %v", time.Since(start).Round(time.Second))
	return out
}
