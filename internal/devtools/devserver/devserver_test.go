package devserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/devtools/devserver"
)

const (
	testNamespace = "costlake-test"
	taskQueue     = "devserver-test"
	childEnv      = "DEVSERVER_TEST_CHILD"
	doneMarker    = "WORKFLOW_DONE"
)

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, greetActivity, name).Get(ctx, &out)
	return out, err
}

func greetActivity(_ context.Context, name string) (string, error) {
	return "hello, " + name, nil
}

// TestHelperProcess is the "first run" of TestPersistsAcrossRestart. It runs
// in a child process so that the parent can kill it without Stop: the data
// must then survive a crash and be read back from the file alone (within one
// process the SQLite plugin would keep serving its already open connection).
func TestHelperProcess(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("helper for TestPersistsAcrossRestart")
	}
	port, _ := strconv.Atoi(os.Getenv("DEVSERVER_TEST_PORT"))
	srv, err := devserver.Start(devserver.Config{
		DataDir:      os.Getenv("DEVSERVER_TEST_DATADIR"),
		FrontendPort: port,
		UIPort:       -1,
		Namespace:    testNamespace,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child start:", err)
		os.Exit(2)
	}
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child dial:", err)
		os.Exit(2)
	}
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(greetWorkflow)
	w.RegisterActivity(greetActivity)
	if err := w.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "child worker:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet-1", TaskQueue: taskQueue}, greetWorkflow, "costlake")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child execute:", err)
		os.Exit(2)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil {
		fmt.Fprintln(os.Stderr, "child result:", err)
		os.Exit(2)
	}
	fmt.Printf("%s %s %s\n", doneMarker, run.GetID(), run.GetRunID())
	select {} // wait for the parent's SIGKILL
}

func TestPersistsAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Temporal servers")
	}
	dataDir := filepath.Join(t.TempDir(), "not", "yet", "there")
	frontendPort, uiPort := freePort(t), freePort(t)

	began := time.Now()
	wfID, runID := runChild(t, dataDir, frontendPort)
	t.Logf("first run (child: start, workflow, kill -9): %s", time.Since(began).Round(time.Millisecond))

	cfg := devserver.Config{
		DataDir:      dataDir,
		FrontendPort: frontendPort,
		UIPort:       uiPort,
		Namespace:    testNamespace,
	}
	for i := 1; i <= 2; i++ {
		began = time.Now()
		srv, err := devserver.Start(cfg)
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		t.Logf("restart %d: Start took %s", i, time.Since(began).Round(time.Millisecond))

		if got, want := srv.FrontendHostPort(), net.JoinHostPort("127.0.0.1", strconv.Itoa(frontendPort)); got != want {
			t.Errorf("FrontendHostPort() = %q, want %q", got, want)
		}
		if got, want := srv.UIURL(), "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort)); got != want {
			t.Errorf("UIURL() = %q, want %q", got, want)
		}
		if srv.Namespace() != testNamespace {
			t.Errorf("Namespace() = %q, want %q", srv.Namespace(), testNamespace)
		}
		checkHistory(t, srv, wfID, runID)
		checkNamespace(t, srv)
		checkUI(t, srv.UIURL())

		began = time.Now()
		if err := srv.Stop(); err != nil {
			t.Fatalf("restart %d: Stop: %v", i, err)
		}
		if err := srv.Stop(); err != nil {
			t.Fatalf("restart %d: second Stop: %v", i, err)
		}
		t.Logf("restart %d: Stop took %s", i, time.Since(began).Round(time.Millisecond))
	}
}

// runChild runs TestHelperProcess against dataDir, waits for its workflow to
// complete and kills it. It returns the workflow's ID and run ID.
func runChild(t *testing.T, dataDir string, port int) (string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		"DEVSERVER_TEST_DATADIR="+dataDir,
		"DEVSERVER_TEST_PORT="+strconv.Itoa(port),
	)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_ = cmd.Wait()
		close(exited)
		close(lines)
	}()
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited before completing the workflow: %v", cmd.ProcessState)
			}
			fields := strings.Fields(line)
			if len(fields) != 3 || fields[0] != doneMarker {
				continue
			}
			killed = true
			_ = cmd.Process.Kill()
			go func() {
				for range lines { // drain so the reader goroutine can finish
				}
			}()
			<-exited
			return fields[1], fields[2]
		case <-timeout:
			t.Fatal("timed out waiting for the child's workflow")
		}
	}
}

func checkHistory(t *testing.T, srv *devserver.Server, wfID, runID string) {
	t.Helper()
	c := dial(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	desc, err := c.DescribeWorkflowExecution(ctx, wfID, runID)
	if err != nil {
		t.Fatalf("DescribeWorkflowExecution: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("status = %v, want COMPLETED", st)
	}
	var out string
	if err := c.GetWorkflow(ctx, wfID, runID).Get(ctx, &out); err != nil || out != "hello, costlake" {
		t.Errorf("result = %q, %v; want %q", out, err, "hello, costlake")
	}
	var types []enumspb.EventType
	it := c.GetWorkflowHistory(ctx, wfID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		types = append(types, ev.GetEventType())
	}
	if len(types) < 2 || types[0] != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED ||
		types[len(types)-1] != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Errorf("history events = %v, want STARTED ... COMPLETED", types)
	}
}

func checkNamespace(t *testing.T, srv *devserver.Server) {
	t.Helper()
	nc, err := client.NewNamespaceClient(client.Options{HostPort: srv.FrontendHostPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := nc.Describe(ctx, testNamespace)
	if err != nil {
		t.Fatalf("describe namespace: %v", err)
	}
	if got := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got < 7*24*time.Hour {
		t.Errorf("retention = %s, want >= 7 days", got)
	}
}

func checkUI(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s, want 200", url, resp.Status)
	}
}

func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name     string
		cfg      devserver.Config
		wantFlag string
	}{
		{"frontend", devserver.Config{FrontendPort: busyPort, UIPort: -1}, "--temporal-port"},
		{"ui", devserver.Config{FrontendPort: freePort(t), UIPort: busyPort}, "--ui-port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = filepath.Join(t.TempDir(), "data")
			srv, err := devserver.Start(tc.cfg)
			if err == nil {
				srv.Stop()
				t.Fatal("Start succeeded on a busy port")
			}
			for _, want := range []string{strconv.Itoa(busyPort), tc.wantFlag} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if _, statErr := os.Stat(tc.cfg.DataDir); !os.IsNotExist(statErr) {
				t.Errorf("DataDir was touched before the port check failed: %v", statErr)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]devserver.Config{
		"no data dir":   {},
		"bad log level": {DataDir: t.TempDir(), LogLevel: "loud"},
		"bad ip":        {DataDir: t.TempDir(), IP: "localhost"},
	} {
		if _, err := devserver.Start(cfg); err == nil {
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func dial(t *testing.T, srv *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
