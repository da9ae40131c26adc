package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestMetricsExposition: costlake's series and the SDK's come out of one
// registry in the Prometheus text format, under their documented names.
func TestMetricsExposition(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	m.Converted("legacy_cur", 1200, 4096, 2*time.Second)
	m.Converted("legacy_cur", 300, 1024, time.Second)
	m.Committed("line_items", 1500*time.Millisecond)
	m.ReconciliationFailed(CheckIngestion)
	m.ExportsWritten(ExportCustomer, 2)
	m.Request("/v1/payers/:id", http.MethodGet, 404, 10*time.Millisecond)
	m.Request("", http.MethodGet, 404, time.Millisecond)
	m.SDKHandler().WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(3)
	m.SDKHandler().Timer("temporal_workflow_task_execution_latency").Record(20 * time.Millisecond)

	code, body := scrape(t, m.Mux(nil), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`costlake_rows_ingested_total{format="legacy_cur"} 1500`,
		`costlake_bytes_ingested_total{format="legacy_cur"} 5120`,
		`costlake_ingestion_duration_seconds_count{stage="convert"} 2`,
		`costlake_commit_duration_seconds_count{table="line_items"} 1`,
		`costlake_reconciliation_failures_total{check="ingestion"} 1`,
		`costlake_exports_written_total{kind="customer"} 2`,
		`costlake_http_requests_total{method="GET",route="/v1/payers/:id",status="404"} 1`,
		`costlake_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`temporal_request_total{namespace="default"} 3`,
		`temporal_workflow_task_execution_latency_seconds_count 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
	// The gateway's listener serves metrics only: its probes are on its
	// main port.
	if code, _ := scrape(t, m.Mux(nil), "/readyz"); code != http.StatusNotFound {
		t.Errorf("gateway listener GET /readyz: %d, want 404", code)
	}
}

// TestNilMetricsRecordNothing: code that counts runs without a registry.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Converted("f", 1, 1, time.Second)
	m.Step(StageLocate, time.Second)
	m.Committed("t", time.Second)
	m.ReconciliationFailed(CheckIngestion)
	m.ExportsWritten(ExportReseller, 1)
	m.Request("/", "GET", 200, time.Second)
	if m.SDKHandler() != nil {
		t.Error("a nil registry has an SDK handler")
	}
}

// TestWorkerProbes: /healthz answers while the process runs; /readyz
// follows the probe.
func TestWorkerProbes(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var notReady error = errors.New("worker not polling yet")
	h := m.Mux(func(context.Context) error { return notReady })
	if code, _ := scrape(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: %d", code)
	}
	if code, body := scrape(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not polling") {
		t.Errorf("GET /readyz before ready: %d %q", code, body)
	}
	notReady = nil
	if code, _ := scrape(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz when ready: %d", code)
	}
}

// TestServeOnListener serves over TCP and stops when the context ends.
func TestServeOnListener(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(""); ln != nil || err != nil {
		t.Fatalf("empty address: %v %v, want disabled", ln, err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, m.Mux(nil)) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("go_goroutines")) {
		t.Fatalf("GET /metrics over TCP: %d\n%s", resp.StatusCode, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, FormatJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", "payer", "123456789012")
	if got := buf.String(); !strings.HasPrefix(got, "{") || !strings.Contains(got, `"payer":"123456789012"`) || strings.Contains(got, "hidden") {
		t.Errorf("JSON log: %q", got)
	}
	for _, bad := range [][2]string{{"xml", "info"}, {"json", "loud"}} {
		if _, err := NewLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("NewLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
