package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/tests/harness"
)

const cePayer = "210987654321"

// ceRecords makes Cost Explorer's data for days [from, to): three linked
// accounts, five services, five record types, not every combination
// every day, amounts with up to 10 fractional digits (credits negative).
func ceRecords(seed uint64, from string, days int) []awsemu.CostRecord {
	r := rand.New(rand.NewPCG(seed, 7))
	accounts := []string{cePayer, "310987654321", "410987654321"}
	services := []string{"Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service", "AWS Lambda", "Amazon Relational Database Service", "Tax"}
	recordTypes := []string{"Usage", "Credit", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "Tax"}
	start, _ := time.Parse(time.DateOnly, from)
	amount := func(neg bool) string {
		v := fmt.Sprintf("%d.%010d", r.IntN(5000), r.IntN(10_000_000_000))
		if neg {
			v = "-" + v
		}
		return v
	}
	var out []awsemu.CostRecord
	for d := range days {
		day := start.AddDate(0, 0, d).Format(time.DateOnly)
		for _, acct := range accounts {
			for _, svc := range services {
				for _, rt := range recordTypes {
					if (svc == "Tax") != (rt == "Tax") || r.IntN(3) == 0 {
						continue
					}
					neg := rt == "Credit" || rt == "SavingsPlanNegation"
					u := amount(neg)
					out = append(out, awsemu.CostRecord{Date: day, Estimated: d >= days-2,
						Dimensions: map[string]string{"LINKED_ACCOUNT": acct, "SERVICE": svc, "RECORD_TYPE": rt},
						Metrics: map[string]awsemu.MetricValue{
							"UnblendedCost":    {Amount: u, Unit: "USD"},
							"AmortizedCost":    {Amount: amount(neg), Unit: "USD"},
							"NetUnblendedCost": {Amount: amount(neg), Unit: "USD"},
							"BlendedCost":      {Amount: u, Unit: "USD"},
						}})
				}
			}
		}
	}
	return out
}

// ceRow is a row of billing.ce_daily_costs (or a record), as text.
func ceRecordRow(rec awsemu.CostRecord) string {
	m := func(name string) string { return money.MustParse(rec.Metrics[name].Amount).String() }
	return strings.Join([]string{rec.Date, rec.Dimensions["LINKED_ACCOUNT"], rec.Dimensions["SERVICE"], rec.Dimensions["RECORD_TYPE"],
		m("UnblendedCost"), m("AmortizedCost"), m("NetUnblendedCost"), "USD", fmt.Sprint(rec.Estimated)}, "|")
}

// expectedCE is what the table must hold for the payer in [start, end):
// the records' rows, sorted, and exact totals per account.
func expectedCE(records []awsemu.CostRecord, start, end string) (rows []string, totals string) {
	var sum []lakehouse.CostTotal
	idx := map[string]int{}
	for _, rec := range records {
		if rec.Date < start || rec.Date >= end {
			continue
		}
		rows = append(rows, ceRecordRow(rec))
		acct := rec.Dimensions["LINKED_ACCOUNT"]
		i, ok := idx[acct]
		if !ok {
			i = len(sum)
			idx[acct] = i
			sum = append(sum, lakehouse.CostTotal{LinkedAccount: acct})
		}
		sum[i].Rows++
		sum[i].Unblended = sum[i].Unblended.Add(money.MustParse(rec.Metrics["UnblendedCost"].Amount))
		sum[i].Amortized = sum[i].Amortized.Add(money.MustParse(rec.Metrics["AmortizedCost"].Amount))
		sum[i].NetUnblended = sum[i].NetUnblended.Add(money.MustParse(rec.Metrics["NetUnblendedCost"].Amount))
	}
	slices.Sort(rows)
	slices.SortFunc(sum, func(a, b lakehouse.CostTotal) int { return strings.Compare(a.LinkedAccount, b.LinkedAccount) })
	return rows, ceTotalsString(sum)
}

func ceTotalsString(ts []lakehouse.CostTotal) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%s rows=%d unblended=%s amortized=%s net=%s\n", t.LinkedAccount, t.Rows, t.Unblended, t.Amortized, t.NetUnblended)
	}
	return b.String()
}

// ceTableRows reads every row of the payer from the table, as text.
func ceTableRows(t *testing.T, lake *lakehouse.Lake) []string {
	t.Helper()
	tbl, err := lake.CostExplorerDaily(context.Background())
	require.NoError(t, err)
	_, records, err := tbl.Scan(table.WithRowFilter(iceberg.EqualTo(iceberg.Reference(lakehouse.ColCEPayer), cePayer))).ToArrowRecords(context.Background())
	require.NoError(t, err)
	var out []string
	for rec, err := range records {
		require.NoError(t, err)
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		str := func(name string, i int) string { return col(name).(*array.String).Value(i) }
		dec := func(name string, i int) string { return money.FromNum(col(name).(*array.Decimal128).Value(i)).String() }
		for i := 0; i < int(rec.NumRows()); i++ {
			day := col(lakehouse.ColCEDate).(*array.Date32).Value(i).ToTime().Format(time.DateOnly)
			require.Equal(t, day[:7], str(lakehouse.ColCEPeriod, i))
			out = append(out, strings.Join([]string{day, str(lakehouse.ColCEAccount, i), str(lakehouse.ColCEService, i), str(lakehouse.ColCERecordType, i),
				dec(lakehouse.ColCEUnblended, i), dec(lakehouse.ColCEAmortized, i), dec(lakehouse.ColCENetUnblended, i),
				str(lakehouse.ColCECurrency, i), fmt.Sprint(col(lakehouse.ColCEEstimated).(*array.Boolean).Value(i))}, "|"))
		}
		rec.Release()
	}
	slices.Sort(out)
	return out
}

// TestCostExplorerIngest crawls a payer that grants only
// ce:GetCostAndUsage: credentials through STS (MinIO) with the external
// ID, Cost Explorer through the wire-protocol emulator, a real Iceberg
// catalog. The table must hold exactly the emulator's data, the paid
// calls must match what the emulator received, throttling beyond the
// SDK's retries must be waited out, and a second crawl of the same days
// must replace them.
func TestCostExplorerIngest(t *testing.T) {
	ctx := context.Background()
	emu := awsemu.Start(t)
	emu.Setenv(t) // AWS_ENDPOINT_URL_COST_EXPLORER and friends
	m := harness.MinIO(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint)

	dir := t.TempDir()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(t, dir), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { lake.Close() })
	acts := &activities.Crawl{Lake: lake, AWS: activities.AWS{Base: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")}}

	// The SDK's standard retryer (3 attempts) with a 1 ms delay, and an
	// instant outer back-off, so throttling runs fast.
	var waits []time.Duration
	acts.CostExplorer.Retryer = awsemu.FastRetryer
	acts.CostExplorer.Backoff = costexplorer.Backoff{Attempts: 5, Base: time.Second, Max: 30 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }}

	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	in := crawl.IngestCostExplorerInput{
		PayerAccountID: cePayer,
		Access:         payer.Access{Mode: payer.AssumeRole, RoleARN: "arn:aws:iam::" + cePayer + ":role/costlake-billing-read", ExternalID: "costlake-test-1"},
		Start:          "2025-04-27", End: "2025-05-06", // nine days over two billing periods
	}
	run := func() (crawl.IngestCostExplorerResult, int, error) {
		t.Helper()
		before := len(emu.Calls("GetCostAndUsage"))
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		v, err := env.ExecuteActivity(crawl.IngestCostExplorerActivity, in)
		calls := len(emu.Calls("GetCostAndUsage")) - before
		if err != nil {
			return crawl.IngestCostExplorerResult{}, calls, err
		}
		var res crawl.IngestCostExplorerResult
		require.NoError(t, v.Get(&res))
		return res, calls, nil
	}
	snapshots := func() int {
		tbl, err := lake.CostExplorerDaily(ctx)
		require.NoError(t, err)
		return len(tbl.Metadata().Snapshots())
	}

	// Ten days of data; the crawl takes nine. Five groups a page: many pages.
	records := ceRecords(1, "2025-04-27", 10)
	emu.SetCostRecords(records)
	emu.SetPageSize(5)
	wantRows, wantTotals := expectedCE(records, in.Start, in.End)
	require.Greater(t, len(wantRows), 200)

	res, calls, err := run()
	require.NoError(t, err)
	t.Logf("first crawl: %d rows, %d paid calls, %d pages", res.Rows, res.Calls, res.Pages)
	require.Equal(t, len(wantRows), res.Rows)
	require.Equal(t, calls, res.Calls, "every request the emulator received is counted")
	require.Equal(t, res.Calls, res.Pages, "no throttling, no retries")
	require.Zero(t, res.Throttled)
	// One discovery query and one per record type (5), each many pages.
	require.Greater(t, res.Pages, 6)
	require.Equal(t, []string{cePayer, "310987654321", "410987654321"}, res.Accounts)
	require.Equal(t, "USD", res.Currency)
	require.NotZero(t, res.SnapshotID)

	require.Equal(t, wantRows, ceTableRows(t, lake), "the table holds exactly the emulator's rows")
	totals, err := lake.CostExplorerTotals(ctx, cePayer, in.Start, in.End, 0)
	require.NoError(t, err)
	require.Equal(t, wantTotals, ceTotalsString(totals), "exact totals per account")
	var unblended money.Amount
	for _, tt := range totals {
		unblended = unblended.Add(tt.Unblended)
	}
	require.Zero(t, unblended.Cmp(res.Unblended), "result total %s, table %s", res.Unblended, unblended)

	// Every call was signed with the role's temporary keys from STS, not
	// with costlake's own.
	for _, c := range emu.Calls("GetCostAndUsage") {
		require.NotEmpty(t, c.AccessKeyID)
		require.NotEqual(t, m.AccessKey, c.AccessKeyID)
		require.Equal(t, "ce", c.Service)
	}

	// AWS restates: amounts change, a row disappears, one appears. The
	// second crawl of the same days is throttled 7 times, more than the
	// SDK's 3 attempts absorb, twice over, and still succeeds.
	restated := slices.Clone(records)
	restated[3].Metrics = map[string]awsemu.MetricValue{
		"UnblendedCost": {Amount: "0.0000000001", Unit: "USD"}, "AmortizedCost": {Amount: "0", Unit: "USD"}, "NetUnblendedCost": {Amount: "-0.5", Unit: "USD"}}
	restated = slices.Delete(restated, 10, 11)
	restated = append(restated, awsemu.CostRecord{Date: "2025-05-05",
		Dimensions: map[string]string{"LINKED_ACCOUNT": "510987654321", "SERVICE": "AWS Support (Business)", "RECORD_TYPE": "Support fee"},
		Metrics: map[string]awsemu.MetricValue{"UnblendedCost": {Amount: "100", Unit: "USD"}, "AmortizedCost": {Amount: "100", Unit: "USD"},
			"NetUnblendedCost": {Amount: "97.5", Unit: "USD"}}})
	emu.SetCostRecords(restated)
	wantRows, wantTotals = expectedCE(restated, in.Start, in.End)
	emu.FailNext("GetCostAndUsage", "LimitExceededException", "Rate exceeded", 7)
	n := snapshots()

	res2, calls, err := run()
	require.NoError(t, err)
	t.Logf("throttled crawl: %d rows, %d paid calls, %d pages, %d throttled, waits %v", res2.Rows, res2.Calls, res2.Pages, res2.Throttled, waits)
	require.Equal(t, 7, res2.Throttled)
	require.Equal(t, calls, res2.Calls, "throttled attempts and SDK retries are paid calls too")
	require.Equal(t, res2.Pages+7, res2.Calls)
	require.Len(t, waits, 2, "the outer back-off waited twice")
	require.GreaterOrEqual(t, waits[1], waits[0], "exponential")
	require.Equal(t, len(wantRows), res2.Rows)
	require.Equal(t, n+1, snapshots(), "one snapshot per crawl")
	require.Equal(t, wantRows, ceTableRows(t, lake), "the second crawl replaced the days, no duplicates")
	totals, err = lake.CostExplorerTotals(ctx, cePayer, in.Start, in.End, 0)
	require.NoError(t, err)
	require.Equal(t, wantTotals, ceTotalsString(totals))
	require.Contains(t, res2.Accounts, "510987654321")

	// The snapshot records the payer, the range and the run.
	c, ok, err := lake.LatestCostExplorerCommit(ctx, cePayer, in.Start, in.End)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, res2.SnapshotID, c.SnapshotID)
	require.Equal(t, [2]string{in.Start, in.End}, [2]string{c.Start, c.End})
	require.NotEmpty(t, c.RunID)

	// The same crawl once more: same rows, still no duplicates.
	_, _, err = run()
	require.NoError(t, err)
	require.Equal(t, wantRows, ceTableRows(t, lake))

	// A role without ce:GetCostAndUsage: a named, non-retryable failure.
	emu.Deny("GetCostAndUsage")
	_, calls, err = run()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, crawl.ErrTypeCostExplorerRejected, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Contains(t, err.Error(), "AccessDeniedException")
	require.Equal(t, 1, calls)
	require.Equal(t, wantRows, ceTableRows(t, lake), "a failed crawl leaves the table as it was")
}
