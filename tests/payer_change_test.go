package tests

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/workflows"
)

// sourceSums is what a delivery holds per usage account: rows and the
// exact sum of its unblended cost.
type sourceSums struct {
	rows  map[string]int
	costs map[string]decimal.Decimal
}

func legacySums(gen *synth.Result) sourceSums {
	s := sourceSums{rows: map[string]int{}, costs: map[string]decimal.Decimal{}}
	for a, t := range gen.Accounts {
		s.rows[a], s.costs[a] = t.Rows, decimal.RequireFromString(t.UnblendedCost)
	}
	return s
}

// cur2Delivery writes a CUR 2.0 (Data Exports) delivery of payer's period
// into bucket under cur/<export>, made of a synthetic legacy delivery
// (seed) renamed to CUR 2.0's columns, and returns its sums, taken from
// the CSV it was made of.
func (e *onboardEnv) cur2Delivery(bucket, payerID, export, period, execution string, seed int64) sourceSums {
	e.t.Helper()
	ctx := context.Background()
	scratch := blob.NewLocal(e.t.TempDir())
	gen, err := synth.Generate(ctx, scratch, synth.Options{Prefix: "cur", Report: "scratch", Bucket: bucket, Period: period, Rows: 700, Files: 1, Seed: seed, Payer: payerID})
	require.NoError(e.t, err)
	rc, err := scratch.Open(ctx, gen.ReportKeys[0])
	require.NoError(e.t, err)
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	require.NoError(e.t, err)
	records, err := csv.NewReader(gz).ReadAll()
	require.NoError(e.t, err)
	tbl := cur2FromLegacy(e.t, records)
	store, err := blob.NewS3(ctx, bucket, e.minio.S3Options())
	require.NoError(e.t, err)
	uploadExport(e.t, store, bucket, "cur", export, period, execution,
		map[string][]byte{export + "-00001.csv.gz": tbl.csvGz(e.t, 0, len(tbl.rows))}, append(slices.Clone(tbl.columns), "product", "resource_tags"))
	rows, costs := sourceTotals(e.t, records)
	return sourceSums{rows: rows, costs: costs}
}

// requirePeriodHolds checks that the table holds payer's period exactly
// as want: every account's rows and cost once, from one delivery.
func (e *onboardEnv) requirePeriodHolds(payerID, period string, want sourceSums, what string) {
	e.t.Helper()
	totals, err := e.lake.PeriodTotals(context.Background(), billing.LineItems, payerID, billingPeriod(period), 0)
	require.NoError(e.t, err)
	got := sourceSums{rows: map[string]int{}, costs: map[string]decimal.Decimal{}}
	for _, a := range billing.ByAccount(totals) {
		got.rows[a.Account], got.costs[a.Account] = int(a.Rows), decimal.RequireFromString(a.UnblendedCost.String())
	}
	require.Equal(e.t, want.rows, got.rows, "%s: rows per account of %s", what, period)
	for a, c := range want.costs {
		require.Truef(e.t, c.Equal(got.costs[a]), "%s: account %s of %s: table %s, source %s", what, a, period, got.costs[a], c)
	}
}

// TestPayerMigratesToCUR2 is the acceptance of a registration change: a
// payer delivers its legacy CUR and, for the same periods, a CUR 2.0
// export into one bucket. PATCH moves it to CUR 2.0 from the current
// period on; the crawl then takes last month from the legacy CUR only
// (its restatements too) and this month from CUR 2.0 only, so each
// period's total is one source's, exactly, never both. The CUR 2.0
// delivery of this month was written before the legacy CUR's newest
// assembly of it, and still replaces it: the two exports' delivery times
// are not compared. A bad change is refused by field, an unknown payer
// or another customer's is 404, and the schedule changes in Temporal.
// Connecting fewer accounts then re-takes both open periods.
func TestPayerMigratesToCUR2(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "720987654321"
	const bucket = "acme-migrating"
	_, gen := e.activate("acme", payerID, bucket)
	current, previous := clock.Period(e.today, 0), clock.Period(e.today, 1)

	// CUR 2.0 has been delivering for a while: last month (backfilled)
	// and this month; then the legacy CUR writes this month too.
	cur2Previous := e.cur2Delivery(bucket, payerID, "acme-cur2", previous, "exec-prev-1", 41)
	cur2Current := e.cur2Delivery(bucket, payerID, "acme-cur2", current, "exec-cur-1", 42)
	time.Sleep(1100 * time.Millisecond) // S3 times have a second's resolution
	legacyCurrent := legacySums(e.generate(bucket, payerID, current, 21))
	legacyPrevious := legacySums(gen)
	require.NotEqual(t, legacyCurrent.costs, cur2Current.costs, "the sources differ, so the table tells which one it holds")
	require.NotEqual(t, legacyPrevious.costs, cur2Previous.costs)

	// Registered for the legacy CUR: both periods come from it.
	r := e.crawlNow(payerID)
	require.Equal(t, workflows.ActionIngested, outcome(t, r, current).Action, outcome(t, r, current).Failure)
	e.requirePeriodHolds(payerID, previous, legacyPrevious, "legacy CUR")
	e.requirePeriodHolds(payerID, current, legacyCurrent, "legacy CUR")

	path := "/v1/payers/" + payerID
	cur2Export := fmt.Sprintf(`{"type":"cur2","bucket":%q,"prefix":"cur","name":"acme-cur2"}`, bucket)

	// Refused: by field, like a registration; not found; not visible.
	var bad apiErrorBody
	require.Equal(t, http.StatusBadRequest, e.operator.do("PATCH", path,
		`{"export":{"type":"cur2","bucket":"Bad_Bucket","name":"acme-cur2","create":true},"cutover_from":"2026-13","schedule":{"interval":"5m"},"access":{"mode":"access_keys"}}`, &bad))
	require.Equal(t, "invalid_request", bad.Error.Code)
	for _, f := range []string{"cutover_from", "access"} {
		require.Contains(t, bad.Error.Fields, f)
	}
	bad = apiErrorBody{}
	require.Equal(t, http.StatusBadRequest, e.operator.do("PATCH", path,
		`{"export":{"type":"cur2","bucket":"Bad_Bucket","name":"acme-cur2","create":true},"schedule":{"interval":"5m"},"linked_accounts":"some"}`, &bad))
	for _, f := range []string{"export.bucket", "export.create", "schedule.interval", "linked_accounts"} {
		require.Contains(t, bad.Error.Fields, f, "%v", bad.Error.Fields)
	}
	bad = apiErrorBody{}
	require.Equal(t, http.StatusBadRequest, e.operator.do("PATCH", path, `{}`, &bad))
	require.Contains(t, bad.Error.Fields, "body")
	require.Equal(t, http.StatusBadRequest, e.operator.do("PATCH", path, `{"schedul":{}}`, &bad))
	require.Equal(t, http.StatusNotFound, e.operator.do("PATCH", "/v1/payers/999999999998", `{"name":"x"}`, nil))
	require.Equal(t, http.StatusNotFound, e.operator.do("PATCH", "/v1/payers/not-a-payer", `{"name":"x"}`, nil))
	require.Equal(t, http.StatusNotFound, e.globex.do("PATCH", path, `{"name":"x"}`, nil), "another customer's payer")
	require.Equal(t, http.StatusForbidden, e.viewer.do("PATCH", path, `{"name":"x"}`, nil))

	// An export in a bucket the payer's role does not grant: refused with
	// AWS's reason, nothing changed.
	e.minio.CreateBucket(t, "acme-elsewhere")
	var conflict apiErrorBody
	require.Equal(t, http.StatusConflict, e.operator.do("PATCH", path,
		`{"export":{"type":"cur2","bucket":"acme-elsewhere","prefix":"cur","name":"acme-cur2"},"cutover_from":"`+current+`"}`, &conflict))
	require.Contains(t, conflict.Error.Message, "the payer's role cannot read the new export s3://acme-elsewhere/cur/acme-cur2")
	_, p := e.state(e.operator, payerID)
	require.Equal(t, "s3://"+bucket+"/cur/billing", p.Registration.Export.Source())
	require.Nil(t, p.Registration.Cutover)

	// The migration: CUR 2.0 from this month on, and crawls every 6 hours.
	var changed gateway.PayerChanged
	require.Equal(t, http.StatusOK, e.operator.do("PATCH", path,
		`{"export":`+cur2Export+`,"cutover_from":"`+current+`","schedule":{"interval":"6h"}}`, &changed))
	require.True(t, changed.Applied)
	require.Equal(t, []string{"cutover", "export", "schedule"}, changed.Changed)
	require.Equal(t, "s3://"+bucket+"/cur/acme-cur2", changed.Registration.Export.Source())
	require.NotNil(t, changed.Registration.Cutover)
	require.Equal(t, current, changed.Registration.Cutover.From.String())
	require.Equal(t, "s3://"+bucket+"/cur/billing", changed.Registration.Cutover.Previous.Source())
	require.NotNil(t, changed.Schedule)

	// The Temporal schedule has the new spec.
	desc, err := e.client.ScheduleClient().GetHandle(context.Background(), workflows.CrawlScheduleID(payerID)).Describe(context.Background())
	require.NoError(t, err)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	require.Equal(t, 6*time.Hour, desc.Schedule.Spec.Intervals[0].Every)
	_, p = e.state(e.operator, payerID)
	require.Equal(t, changed.Registration, p.Registration)

	// The crawl after the change: last month stays with the legacy CUR
	// (CUR 2.0's backfill of it is not looked at), this month is CUR 2.0's.
	r = e.crawlNow(payerID)
	o := outcome(t, r, current)
	require.Equal(t, workflows.ActionIngested, o.Action, o.Failure)
	require.Equal(t, "exec-cur-1", o.AssemblyID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, previous).Action)
	e.requirePeriodHolds(payerID, previous, legacyPrevious, "after the cut-over, last month")
	e.requirePeriodHolds(payerID, current, cur2Current, "after the cut-over, this month")

	// Both exports restate both periods: each period follows its own export.
	legacyRestated := legacySums(e.generate(bucket, payerID, previous, 77))
	e.generate(bucket, payerID, current, 78)
	e.cur2Delivery(bucket, payerID, "acme-cur2", previous, "exec-prev-2", 79)
	cur2Restated := e.cur2Delivery(bucket, payerID, "acme-cur2", current, "exec-cur-2", 80)
	r = e.crawlNow(payerID)
	require.Equal(t, workflows.ActionIngested, outcome(t, r, previous).Action, outcome(t, r, previous).Failure)
	require.Equal(t, "exec-cur-2", outcome(t, r, current).AssemblyID)
	e.requirePeriodHolds(payerID, previous, legacyRestated, "restated, last month")
	e.requirePeriodHolds(payerID, current, cur2Restated, "restated, this month")
	require.Equal(t, []string{payerID}, e.payersOf(current), "one payer's rows")

	// Nothing new: nothing ingested from either export.
	r = e.crawlNow(payerID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, previous).Action)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, current).Action)
	_, p = e.state(e.operator, payerID)
	require.Contains(t, p.Events[len(p.Events)-1].What, "registration changed by test-operator: cutover, export, schedule; periods from "+current)

	// Only the payer's own account from now on: the next crawl takes both
	// open periods again, each from its export, though neither delivery
	// changed, and keeps the connected account's rows only.
	require.Equal(t, http.StatusOK, e.operator.do("PATCH", path, `{"linked_accounts":"connected","connected_accounts":["`+payerID+`"]}`, &changed))
	require.Equal(t, []string{"connected_accounts", "linked_accounts"}, changed.Changed)
	require.Equal(t, "s3://"+bucket+"/cur/acme-cur2", changed.Registration.Export.Source(), "the export and its cut-over stay")
	require.NotNil(t, changed.Registration.Cutover)
	r = e.crawlNow(payerID)
	for _, period := range []string{previous, current} {
		o := outcome(t, r, period)
		require.Equal(t, workflows.ActionIngested, o.Action, o.Failure)
		require.True(t, o.AccountsChanged, period)
	}
	e.requirePeriodHolds(payerID, previous, legacyRestated.only(payerID), "connected, last month")
	e.requirePeriodHolds(payerID, current, cur2Restated.only(payerID), "connected, this month")
	r = e.crawlNow(payerID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, previous).Action)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, current).Action)
}

// only is the sums of one account.
func (s sourceSums) only(account string) sourceSums {
	return sourceSums{rows: map[string]int{account: s.rows[account]}, costs: map[string]decimal.Decimal{account: s.costs[account]}}
}

func (e *onboardEnv) payersOf(period string) []string {
	e.t.Helper()
	payers, err := e.lake.PayersOfPeriod(context.Background(), billing.LineItems, billingPeriod(period))
	require.NoError(e.t, err)
	return payers
}

// TestScopedKeyChangesItsOwnPayer: a customer-scoped operator key changes
// its own customer's payer (PATCH is not a decision), in any open status
// but the export, which waits for activation (409); acme's operator key
// hears of globex's payer only as any unscoped key does, and globex never
// of acme's (404, in TestPayerMigratesToCUR2).
func TestScopedKeyChangesItsOwnPayer(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "740987654321"
	e.delivery("globex-cur", payerID)
	e.completeStack(payerID)
	require.Equal(t, http.StatusCreated, e.globex.do("POST", "/v1/payers", registration("globex", payerID, "globex-cur"), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	path := "/v1/payers/" + payerID

	var changed gateway.PayerChanged
	require.Equal(t, http.StatusOK, e.globex.do("PATCH", path, `{"name":"Globex EU","schedule":{"interval":"12h"}}`, &changed))
	require.True(t, changed.Applied)
	require.Equal(t, workflows.StatusAwaitingApproval, changed.Status)
	require.Equal(t, "Globex EU", changed.Registration.Name)
	require.Nil(t, changed.Schedule, "no schedule before approval")

	var conflict apiErrorBody
	require.Equal(t, http.StatusConflict, e.globex.do("PATCH", path, `{"export":{"type":"cur2","bucket":"globex-cur","prefix":"cur","name":"globex-cur2"}}`, &conflict))
	require.Contains(t, conflict.Error.Message, "while its onboarding is awaiting_approval")

	// Approval creates the schedule from the changed registration.
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", path+"/approve", "", nil))
	e.waitActive(payerID)
	require.Eventually(t, func() bool {
		desc, err := e.client.ScheduleClient().GetHandle(context.Background(), workflows.CrawlScheduleID(payerID)).Describe(context.Background())
		return err == nil && len(desc.Schedule.Spec.Intervals) == 1 && desc.Schedule.Spec.Intervals[0].Every == 12*time.Hour
	}, 30*time.Second, 100*time.Millisecond)
	_, p := e.state(e.globex, payerID)
	require.Equal(t, "Globex EU", p.Registration.Name)
	require.Contains(t, eventTexts(p), "registration changed by globex-operator: name, schedule")
}
