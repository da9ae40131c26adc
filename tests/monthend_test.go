package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/webhook"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/worker"
	"github.com/costlake/costlake/workflows"
)

// received is one webhook delivery whose signature verified.
type received struct {
	ID, Type string
	Data     map[string]any
}

// hookReceiver is the reseller's endpoint: a real HTTP server that
// verifies every delivery's Standard Webhooks signature, refuses the
// very first one (so a delivery is retried) and keeps the events, once
// per webhook-id.
type hookReceiver struct {
	t        *testing.T
	key      []byte
	mu       sync.Mutex
	events   []received
	attempts atomic.Int32
	bad      atomic.Int32
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(h.key, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		h.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if h.attempts.Add(1) == 1 {
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := r.Header.Get(webhook.HeaderID)
	if !slices.ContainsFunc(h.events, func(e received) bool { return e.ID == id }) {
		h.events = append(h.events, received{ID: id, Type: ev.Type, Data: ev.Data})
	} else {
		h.t.Errorf("event %s delivered twice", id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// of returns the events of a type (and customer, when given).
func (h *hookReceiver) of(typ, customer string) []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []received
	for _, e := range h.events {
		if e.Type == typ && (customer == "" || e.Data["customer_id"] == customer) {
			out = append(out, e)
		}
	}
	return out
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// TestMonthEnd: the month-end schedule closes three customers' cycles
// without any operator call once the period is final by date (the 10th
// has passed), and writes their exports; a customer on hold stays open;
// a customer whose payer was last crawled five days ago is blocked with
// cycle.blocked and payer.stale; one whose line items differ from Cost
// Explorer by a dollar is blocked with the figures, then closes once an
// operator accepts the difference. Every event reaches a real HTTP
// endpoint signed, exactly once, the first delivery after a retry.
func TestMonthEnd(t *testing.T) {
	ctx := context.Background()
	const period = "2026-10"
	emu := awsemu.Start(t)
	emu.Setenv(t) // Cost Explorer is the emulator's
	m := harness.MinIO(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint) // roles are assumed with MinIO's STS

	// The business date moves: before finality, then after the 10th.
	var today atomic.Pointer[time.Time]
	setToday := func(d time.Time) { today.Store(&d) }
	setToday(time.Date(2026, 11, 6, 7, 0, 0, 0, time.UTC))
	businessClock := clock.Clock(func() time.Time { return *today.Load() })

	dir := t.TempDir()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(t, dir), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { lake.Close() })
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	require.NoError(t, err)
	ts := newTemporal(t)
	c := ts.GetDefaultClient()
	cfg := activities.Config{Lake: lake, Blobs: blob.Opener{S3: m.S3Options(), FileRoots: testFileRoots}, Temporal: c, Reseller: store, TempDir: t.TempDir(),
		Clock: businessClock, AWSBase: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		CostExplorer: activities.CostExplorerTuning{Retryer: awsemu.FastRetryer},
		// The endpoint is an httptest server on loopback.
		Webhooks: webhook.Sender{AllowPrivate: true}}
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, activities.New(cfg)) },
		sdkworker.Options{MaxConcurrentActivityExecutionSize: 4})
	s := &stack{t: t, client: c, lake: lake, minio: m, dir: dir}

	rodb, ropg, err := lakehouse.OpenCatalogReadOnly(testCatalog(t, dir))
	require.NoError(t, err)
	t.Cleanup(func() { rodb.Close() })
	keys, operatorKey, _, _ := testKeys()
	gw := httptest.NewServer(validatingGateway(t, gateway.New(c, slog.New(slog.NewTextHandler(io.Discard, nil)),
		gateway.Config{Keys: keys, Clock: businessClock, Records: reseller.ReadOnly(rodb, ropg)})))
	t.Cleanup(gw.Close)
	operator := apiClient{t: t, base: gw.URL, key: operatorKey}

	// Three payers: A's accounts belong to four customers, B's (crawled
	// five days before the close) to stark, C's (which Cost Explorer
	// disagrees with) to wayne.
	const payerA, payerB, payerC = "444455556666", "777788889999", "121212343434"
	ingestAssembly := func(payerID string, linked int, seed int64, assembly string) []string {
		root := t.TempDir()
		gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "billing", Period: period,
			Rows: 600, Files: 1, Seed: seed, Payer: payerID, LinkedAccounts: linked, AssemblyID: assembly})
		require.NoError(t, err)
		_, err = s.ingest("file://"+filepath.Join(root, "cur", "billing"), period)
		require.NoError(t, err)
		var accts []string
		for a := range gen.Accounts {
			if a != payerID {
				accts = append(accts, a)
			}
		}
		slices.Sort(accts)
		return accts
	}
	ingest := func(payerID string, linked int, seed int64) []string {
		return ingestAssembly(payerID, linked, seed, "20261103T000000Z")
	}
	linkedA, linkedB, linkedC := ingest(payerA, 5, 21), ingest(payerB, 2, 22), ingest(payerC, 3, 23)
	require.Len(t, linkedA, 4)
	owned := map[string]reseller.Assignment{
		"acme":    {PayerAccountID: payerA, Accounts: linkedA[0:1]},
		"globex":  {PayerAccountID: payerA, Accounts: linkedA[1:2]},
		"initech": {PayerAccountID: payerA, Accounts: linkedA[2:3]},
		"hooli":   {PayerAccountID: payerA, Accounts: linkedA[3:4]},
		"stark":   {PayerAccountID: payerB, Accounts: []string{reseller.AllAccounts}},
		"wayne":   {PayerAccountID: payerC, Accounts: []string{reseller.AllAccounts}},
	}
	// umbrella owns payer A's own usage and has no pricebook: its guards
	// pass and its close fails by name.
	require.NoError(t, store.SetAccounts(ctx, "umbrella", period, []reseller.Assignment{{PayerAccountID: payerA, Accounts: []string{payerA}}}, "test"))
	exportDirs := map[string]string{}
	for cust, as := range owned {
		exportDirs[cust] = t.TempDir()
		require.NoError(t, store.PutCustomer(ctx, reseller.Customer{ID: cust, Export: &reseller.Destination{URL: "file://" + exportDirs[cust], Mode: "at_resale", OperatorOverride: true}}, "test"))
		require.NoError(t, store.SetAccounts(ctx, cust, period, []reseller.Assignment{as}, "test"))
		_, err := store.PutPricebook(ctx, cust, period, json.RawMessage(`{"effective_from":"`+period+`","global_percent":"10"}`), "test")
		require.NoError(t, err)
	}

	// Cost Explorer: what the line items hold, per linked account, except
	// one of payer C's accounts, a dollar more. Payer A's daily costs are
	// in billing.ce_daily_costs already (read, not asked for again); B
	// and C are CUR-only: one monthly GetCostAndUsage each, answered by
	// the emulator (which serves C's organization).
	var records []awsemu.CostRecord
	for _, p := range []string{payerA, payerC} {
		_, costs := s.tableTotals(p, period)
		var daily []costexplorer.DailyCost
		for acct, cost := range costs {
			amount := cost
			if p == payerC && acct == linkedC[0] {
				amount = amount.Add(dec(t, "1.00"))
			}
			if p == payerA {
				// Split over two days, so the comparison sums them.
				half := amount.Div(dec(t, "2")).Round(6)
				for i, a := range []decimal.Decimal{half, amount.Sub(half)} {
					daily = append(daily, costexplorer.DailyCost{Date: fmt.Sprintf("2026-10-%02d", 10+i), LinkedAccount: acct, Service: "AWS", RecordType: "Usage",
						Unblended: money.MustParse(a.String()), Currency: "USD"})
				}
				continue
			}
			records = append(records, awsemu.CostRecord{Date: "2026-10-15", Dimensions: map[string]string{"LINKED_ACCOUNT": acct},
				Metrics: map[string]awsemu.MetricValue{"UnblendedCost": {Amount: amount.String(), Unit: "USD"}}})
		}
		if p == payerA {
			_, err := lake.ReplaceCostExplorerDays(ctx, payerA, "2026-10-01", "2026-11-01", daily, "test")
			require.NoError(t, err)
		}
	}
	emu.SetCostRecords(records)
	emu.SetPageSize(100) // one page: the count below is queries
	_ = linkedB

	// Crawls: A and C were crawled this morning, B five days ago. (The
	// records CrawlPayer writes when it succeeds; the access is the role
	// month-end asks Cost Explorer with.)
	crawled := func(p string, at time.Time) {
		require.NoError(t, store.RecordCrawl(ctx, reseller.Crawl{PayerAccountID: p, SucceededAt: at,
			Access: payer.Access{Mode: payer.AssumeRole, RoleARN: "arn:aws:iam::" + p + ":role/costlake-billing-read", ExternalID: "costlake-test-1"}}))
	}

	// The reseller's endpoint, its secret on the worker by reference.
	secret := make([]byte, 24)
	copy(secret, "month-end test secret!!!")
	t.Setenv("COSTLAKE_TEST_WEBHOOK_SECRET", webhook.SecretPrefix+base64.StdEncoding.EncodeToString(secret))
	hooks := &hookReceiver{t: t, key: secret}
	endpoint := httptest.NewServer(hooks)
	t.Cleanup(endpoint.Close)
	require.Equal(t, http.StatusBadRequest, operator.do("PUT", "/v1/webhook", `{"url":"`+endpoint.URL+`","secret_ref":"whsec_inline"}`, nil),
		"a secret in the request is refused: only a reference")
	require.Equal(t, http.StatusOK, operator.do("PUT", "/v1/webhook", `{"url":"`+endpoint.URL+`","secret_ref":"env:COSTLAKE_TEST_WEBHOOK_SECRET"}`, nil))

	// hooli is held, with a reason (none is a named error).
	var errBody struct {
		Error gateway.Error `json:"error"`
	}
	require.Equal(t, http.StatusBadRequest, operator.do("POST", "/v1/customers/hooli/hold", `{}`, &errBody))
	require.Contains(t, errBody.Error.Fields, "reason")
	var hold reseller.Hold
	require.Equal(t, http.StatusOK, operator.do("POST", "/v1/customers/hooli/hold", `{"reason":"disputed October invoice"}`, &hold))
	require.Equal(t, "test-operator", hold.HeldBy)

	// The schedule: daily; the test triggers it as its day comes.
	require.NoError(t, worker.EnsureMonthEndSchedule(ctx, c, worker.DefaultMonthEndHour, monthend.Input{Settings: monthend.Settings{MaxCrawlAge: 72 * time.Hour}}))
	sched := c.ScheduleClient().GetHandle(ctx, monthend.ScheduleID)
	runs := 0
	var lastRun string
	monthEndRun := func() monthend.Result {
		t.Helper()
		require.NoError(t, sched.Trigger(ctx, client.ScheduleTriggerOptions{}))
		runs++
		var wid string
		require.Eventually(t, func() bool {
			d, err := sched.Describe(ctx)
			if err != nil || len(d.Info.RecentActions) < runs {
				return false
			}
			wid = d.Info.RecentActions[len(d.Info.RecentActions)-1].StartWorkflowResult.WorkflowID
			return true
		}, time.Minute, 100*time.Millisecond)
		wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		var res monthend.Result
		require.NoError(t, c.GetWorkflow(wctx, wid, "").Get(wctx, &res))
		lastRun = wid
		return res
	}

	// November 6th: October is not final (no invoice IDs, before the
	// 10th); nothing closes, and the hold is announced.
	crawled(payerA, *today.Load())
	res := monthEndRun()
	require.Equal(t, period, res.Period.String())
	require.Empty(t, res.Closed)
	require.Equal(t, []string{"acme", "globex", "initech", "stark", "umbrella", "wayne"}, res.Waiting)
	require.Len(t, res.Blocked, 1)
	require.Equal(t, monthend.Blocked{CustomerID: "hooli", Reason: monthend.BlockedHold, Message: res.Blocked[0].Message}, res.Blocked[0])
	require.Contains(t, res.Blocked[0].Message, "disputed October invoice")
	require.Len(t, hooks.of(webhook.CycleBlocked, "hooli"), 1)
	require.Equal(t, monthend.BlockedHold, hooks.of(webhook.CycleBlocked, "hooli")[0].Data["reason"])
	require.Empty(t, emu.Calls("GetCostAndUsage"), "a period not final costs no Cost Explorer query")

	// November 12th: final by date. A and C crawled this morning, B five
	// days ago.
	setToday(time.Date(2026, 11, 12, 6, 0, 0, 0, time.UTC))
	crawled(payerA, *today.Load())
	crawled(payerC, today.Load().Add(-2*time.Hour))
	crawled(payerB, today.Load().AddDate(0, 0, -5))
	res = monthEndRun()
	require.Equal(t, []string{"acme", "globex", "initech"}, res.Closed, "%+v", res)
	require.Len(t, res.Failed, 1)
	require.False(t, res.Done)
	blocked := map[string]monthend.Blocked{}
	for _, b := range res.Blocked {
		blocked[b.CustomerID] = b
	}
	require.Equal(t, monthend.BlockedHold, blocked["hooli"].Reason)
	require.Equal(t, monthend.BlockedStale, blocked["stark"].Reason)
	require.Contains(t, blocked["stark"].Message, payerB)
	require.Equal(t, monthend.BlockedCostExplorer, blocked["wayne"].Reason)
	require.Contains(t, blocked["wayne"].Message, linkedC[0])
	require.Equal(t, monthend.BlockedCloseFailed, blocked["umbrella"].Reason)
	require.Contains(t, blocked["umbrella"].Message, "pricebook")
	require.Len(t, hooks.of(webhook.CycleBlocked, "umbrella"), 1)
	for _, cust := range []string{"acme", "globex", "initech"} {
		cyc, err := store.CycleOf(ctx, cust, period)
		require.NoError(t, err, cust)
		require.NotZero(t, cyc.Snapshots[payerA], cust)
		closed := hooks.of(webhook.CycleClosed, cust)
		require.Len(t, closed, 1, cust)
		written := hooks.of(webhook.ExportWritten, cust)
		require.Len(t, written, 1, cust)
		url, _ := written[0].Data["url"].(string)
		require.True(t, strings.HasPrefix(url, "file://"+exportDirs[cust]), "%s's export %s", cust, url)
		_, err = os.Stat(strings.TrimPrefix(url, "file://"))
		require.NoError(t, err, "the announced manifest exists")
	}
	for _, cust := range []string{"hooli", "stark", "wayne"} {
		_, err := store.CycleOf(ctx, cust, period)
		require.ErrorIs(t, err, reseller.ErrNotFound, "%s stays open", cust)
	}
	require.Len(t, hooks.of(webhook.CycleBlocked, "hooli"), 1, "the same hold is announced once")
	stale := hooks.of(webhook.PayerStale, "")
	require.Len(t, stale, 1)
	require.Equal(t, payerB, stale[0].Data["payer_account_id"])
	starkBlocked := hooks.of(webhook.CycleBlocked, "stark")
	require.Len(t, starkBlocked, 1)
	require.Equal(t, monthend.BlockedStale, starkBlocked[0].Data["reason"])
	wayneBlocked := hooks.of(webhook.CycleBlocked, "wayne")
	require.Len(t, wayneBlocked, 1)
	diffs, _ := wayneBlocked[0].Data["differences"].([]any)
	require.Len(t, diffs, 1, "the figures: %v", wayneBlocked[0].Data)
	d := diffs[0].(map[string]any)
	require.Equal(t, linkedC[0], d["account_id"])
	require.True(t, dec(t, d["difference"].(string)).Equal(dec(t, "-1")), "line items − Cost Explorer = %v", d["difference"])
	require.Equal(t, "0.01", d["tolerance"])
	// The replay test's MonthEnd history: closes, blocks, announcements.
	if os.Getenv(recordHistoriesEnv) != "" {
		recordHistory(t, c, lastRun, filepath.Join(historiesDir, "month_end.json"))
	}
	// One monthly query: C's (A's costs are in the table; B is stale,
	// so not compared).
	require.Len(t, emu.Calls("GetCostAndUsage"), 1)

	// An operator accepts wayne's difference and runs month-end now.
	var acc reseller.Acceptance
	require.Equal(t, http.StatusBadRequest, operator.do("POST", "/v1/customers/wayne/cycles/"+period+"/accept-difference", `{"payer_account_id":"`+payerC+`"}`, nil))
	require.Equal(t, http.StatusOK, operator.do("POST", "/v1/customers/wayne/cycles/"+period+"/accept-difference",
		`{"payer_account_id":"`+payerC+`","reason":"AWS credit posted after the CUR; confirmed with AWS support"}`, &acc))
	require.Equal(t, "test-operator", acc.AcceptedBy)
	require.NotZero(t, acc.SnapshotID)

	// AWS restates C's month (the same amounts, a new assembly): the
	// acceptance covered the line items it saw, so wayne is blocked
	// again, with the same figures (announced once), until accepted anew.
	require.Equal(t, linkedC, ingestAssembly(payerC, 3, 23, "20261111T000000Z"))
	res = monthEndRun()
	require.Empty(t, res.Closed)
	blocked = map[string]monthend.Blocked{}
	for _, b := range res.Blocked {
		blocked[b.CustomerID] = b
	}
	require.Equal(t, monthend.BlockedCostExplorer, blocked["wayne"].Reason)
	require.Len(t, hooks.of(webhook.CycleBlocked, "wayne"), 1)
	require.Equal(t, http.StatusOK, operator.do("POST", "/v1/customers/wayne/cycles/"+period+"/accept-difference",
		`{"payer_account_id":"`+payerC+`","reason":"the restatement changed nothing; confirmed with AWS support"}`, &acc))
	var started gateway.MonthEndStarted
	require.Equal(t, http.StatusAccepted, operator.do("POST", "/v1/month-end", `{"period":"`+period+`"}`, &started))
	require.Equal(t, monthend.WorkflowID(billingPeriod(period)), started.WorkflowID)
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	require.NoError(t, c.GetWorkflow(wctx, started.WorkflowID, started.RunID).Get(wctx, &res))
	require.Equal(t, []string{"wayne"}, res.Closed)
	// The run started now judged with the schedule's settings.
	hist := c.GetWorkflowHistory(ctx, started.WorkflowID, started.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := hist.Next()
	require.NoError(t, err)
	var startedWith monthend.Input
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0], &startedWith))
	require.Equal(t, 72*time.Hour, startedWith.MaxCrawlAge)
	require.Equal(t, []string{"acme", "globex", "initech"}, res.Already)
	require.Len(t, hooks.of(webhook.CycleClosed, "wayne"), 1)
	require.Len(t, hooks.of(webhook.ExportWritten, "wayne"), 1)
	_, err = store.CycleOf(ctx, "hooli", period)
	require.ErrorIs(t, err, reseller.ErrNotFound, "hooli is still on hold")
	require.Len(t, emu.Calls("GetCostAndUsage"), 1, "the day's monthly answer is reused")

	// Every fact was announced once: 1 hold, 3×2 closes and exports, a
	// stale payer and its block, a difference, a failed close, wayne's
	// close and export; every delivery verified, and the first was
	// retried.
	require.Equal(t, 13, hooks.count())
	require.Zero(t, hooks.bad.Load())
	require.Greater(t, hooks.attempts.Load(), int32(13))

	// Releasing the hold: once; a second release is 404.
	require.Equal(t, http.StatusOK, operator.do("DELETE", "/v1/customers/hooli/hold", "", &hold))
	require.Equal(t, "disputed October invoice", hold.Reason)
	require.Equal(t, http.StatusNotFound, operator.do("DELETE", "/v1/customers/hooli/hold", "", nil))
}

// recordHistory writes a completed run's history as the replay test's
// data (see record_histories_test.go).
func recordHistory(t *testing.T, c client.Client, workflowID, path string) {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, h.Events[len(h.Events)-1].GetEventType(), "%s is not completed", workflowID)
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("%s: %d events of %s", path, len(h.Events), workflowID)
}

// A scheduled crawl that succeeds records the payer's freshness in the
// catalog, on the business clock and with the role it used: what the
// month-end guard reads. A close with the default finality waits for the
// 10th to pass. With COSTLAKE_RECORD_HISTORIES set it records both runs
// for the replay test: they pass the crawl-record and final-day-10 gates.
func TestCrawlRecordsFreshness(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "810987654321"
	p, _ := e.activate("acme", payerID, "fresh-cur")
	db, postgres := e.lake.DB()
	store := reseller.ReadOnly(db, postgres)
	e.crawlNow(payerID)
	var last reseller.Crawl
	require.Eventually(t, func() bool {
		var err error
		last, err = store.LastCrawl(context.Background(), payerID)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	require.True(t, last.SucceededAt.Equal(e.today), "recorded %s, the business date is %s", last.SucceededAt, e.today)
	require.Equal(t, payer.AssumeRole, last.Access.Mode)
	require.Contains(t, last.Access.RoleARN, payerID)
	require.True(t, strings.HasPrefix(last.RunID, workflows.CrawlScheduleID(payerID)), last.RunID)

	// Last month (2026-09) is final by date on 2026-10-15: closed at once.
	period := clock.Period(e.today, 1)
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["`+p.Accounts[0]+`"]}]}`, nil))
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"5"}`, nil))
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/customers/acme/cycles/"+period+"/close", "", nil))
	closeID := workflows.CycleWorkflowID("acme", billingPeriod(period))
	var closed workflows.CloseBillingCycleResult
	e.waitWorkflow(closeID, &closed)
	require.NotZero(t, closed.Snapshots[payerID])
	if os.Getenv(recordHistoriesEnv) != "" {
		recordHistory(t, e.client, last.RunID[:strings.LastIndex(last.RunID, "/")], filepath.Join(historiesDir, "crawl_payer_record.json"))
		recordHistory(t, e.client, closeID, filepath.Join(historiesDir, "close_billing_cycle_day10.json"))
	}
}
