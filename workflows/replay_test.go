package workflows

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// changeIDs are every version gate's change ID (versions.go); the
// recorded histories must pass through each of them.
var changeIDs = []string{setupCheckChange, crawlScheduleChange, exportHealthChange, adjustClosedCyclesChange, businessClockChange,
	registrationChange, exportCutoverChange, crawlRecordChange, finalDayChange, statusRecordChange}

// TestReplayRecordedHistories replays histories of real runs (recorded by
// tests/record_histories_test.go, see testdata/histories/README.md) with
// today's workflow code: a change that would break a run started before
// it on its next task (an activity added, removed or reordered, a version
// gate removed) fails here. Such a change must be gated with
// workflow.GetVersion (see versions.go).
func TestReplayRecordedHistories(t *testing.T) {
	histories := map[string]string{
		"onboard_payer.json":         "OnboardPayer",
		"ingest_billing_period.json": "IngestBillingPeriod",
		"crawl_payer.json":           "CrawlPayer",
		"close_billing_cycle.json":   "CloseBillingCycle",
		"month_end.json":             "MonthEnd",
		// A recorded crawl and an operator's close with the default
		// finality, through the month-end gates.
		"crawl_payer_record.json":        "CrawlPayer",
		"close_billing_cycle_day10.json": "CloseBillingCycle",
		// A registration change, and a crawl during an export cut-over.
		"onboard_payer_change.json": "OnboardPayer",
		"crawl_payer_cutover.json":  "CrawlPayer",
		// An onboarding recording each status it enters.
		"onboard_payer_status.json": "OnboardPayer",
	}
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(histories) {
		t.Fatalf("testdata/histories holds %d histories, want one each of %d workflows: %v", len(files), len(histories), files)
	}
	var gates []string
	for file, workflowType := range histories {
		t.Run(file, func(t *testing.T) {
			h := readHistory(t, filepath.Join("testdata", "histories", file))
			if got := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName(); got != workflowType {
				t.Fatalf("%s is a history of %q, want %s", file, got, workflowType)
			}
			r := worker.NewWorkflowReplayer()
			// Every workflow, under the names the worker registers: a
			// history may start children of the others.
			for name, w := range map[string]any{
				"OnboardPayer": OnboardPayer, "IngestBillingPeriod": IngestBillingPeriod, "CrawlPayer": CrawlPayer,
				"ManageCustomer": ManageCustomer, "CloseBillingCycle": CloseBillingCycle, "ExportResellerPeriod": ExportResellerPeriod,
				"MonthEnd": MonthEnd, "MonthEndRequest": MonthEndRequest,
			} {
				r.RegisterWorkflowWithOptions(w, workflow.RegisterOptions{Name: name})
			}
			var logs bytes.Buffer
			logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err := r.ReplayWorkflowHistory(logger, h); err != nil {
				t.Fatalf("replay %s: %v\n%s", file, err, logs.String())
			}
			gates = append(gates, versionMarkers(t, h)...)
		})
	}
	for _, id := range changeIDs {
		if !slices.Contains(gates, id) {
			t.Errorf("no recorded history passes the version gate %q: record one that does (testdata/histories/README.md)", id)
		}
	}
}

// versionMarkers are the change IDs of a history's version markers.
func versionMarkers(t *testing.T, h *historypb.History) []string {
	t.Helper()
	var ids []string
	for _, e := range h.Events {
		m := e.GetMarkerRecordedEventAttributes()
		if e.GetEventType() != enumspb.EVENT_TYPE_MARKER_RECORDED || m.GetMarkerName() != "Version" {
			continue
		}
		var id string
		if p := m.GetDetails()["change-id"].GetPayloads(); len(p) == 1 {
			if err := converter.GetDefaultDataConverter().FromPayload(p[0], &id); err != nil {
				t.Fatalf("version marker %d: %v", e.GetEventId(), err)
			}
		}
		ids = append(ids, id)
	}
	return ids
}

// readHistory reads a history in the JSON the SDK's replayer reads.
func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("recorded history: %v", err)
	}
	h := &historypb.History{}
	if err := (temporalproto.CustomJSONUnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, h); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(h.Events) < 3 {
		t.Fatalf("%s holds %d events", path, len(h.Events))
	}
	return h
}
