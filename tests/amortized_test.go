package tests

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/aws"
	ce "github.com/aws/aws-sdk-go-v2/service/costexplorer"
	cetypes "github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/awsemu"
)

// commitmentHeader is the legacy CUR layout of commitmentMonth.
var commitmentHeader = []string{
	"identity/LineItemId", "bill/InvoiceId", "bill/PayerAccountId", "bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate",
	"lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/UsageEndDate",
	"lineItem/ProductCode", "lineItem/UsageType", "lineItem/LineItemDescription", "lineItem/UsageAmount",
	"lineItem/UnblendedCost", "lineItem/NetUnblendedCost",
	"reservation/ReservationARN", "reservation/EffectiveCost", "reservation/NetEffectiveCost",
	"reservation/AmortizedUpfrontFeeForBillingPeriod",
	"reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/NetUnusedAmortizedUpfrontFeeForBillingPeriod",
	"reservation/UnusedRecurringFee", "reservation/NetUnusedRecurringFee",
	"savingsPlan/SavingsPlanARN", "savingsPlan/SavingsPlanEffectiveCost", "savingsPlan/NetSavingsPlanEffectiveCost",
	"savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment",
	"savingsPlan/RecurringCommitmentForBillingPeriod", "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod",
}

// commitmentMonth writes a month (2025-05) of a payer with two member
// accounts, daily lines, under a 5% discount that the net columns carry:
//   - ordinary usage in every account, one line in scientific notation,
//     tax without net columns, a credit and a support fee;
//   - a partial-upfront Savings Plan the payer owns, committed at 24 a
//     day (12 upfront, 12 recurring): its upfront fee, a recurring fee
//     line a day with the commitment used that day, and covered usage in
//     both members with its negation;
//   - a partial-upfront Reserved Instance member b owns: its upfront
//     fee (a Fee line with the reservation's ARN), the month's RI fee
//     with what went unused, and discounted usage in both members.
//
// Amounts have up to 10 fractional digits; the generator's arithmetic is
// shopspring's, not costlake's.
func commitmentMonth(seed uint64, payer, memberA, memberB string) [][]string {
	r := rand.New(rand.NewPCG(seed, 15))
	start := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	discount := decimal.RequireFromString("0.95")
	spARN := "arn:aws:savingsplans::" + payer + ":savingsplan/sp-0001"
	riARN := "arn:aws:ec2:us-east-1:" + memberB + ":reserved-instances/ri-0001"
	amount := func(lo, hi int) decimal.Decimal { // [lo, hi) with 10 fractional digits
		return decimal.New(int64(lo)*1e10+r.Int64N(int64(hi-lo)*1e10), -10)
	}
	ts := func(t time.Time) string { return t.Format("2006-01-02T15:04:05Z") }
	col := map[string]int{}
	for i, h := range commitmentHeader {
		col[h] = i
	}
	records := [][]string{commitmentHeader}
	line := func(acct, typ string, day time.Time, until time.Time, product string, set map[string]string) {
		row := make([]string, len(commitmentHeader))
		vals := map[string]string{
			"identity/LineItemId": fmt.Sprintf("li-%04d", len(records)), "bill/PayerAccountId": payer,
			"bill/BillingPeriodStartDate": ts(start), "bill/BillingPeriodEndDate": ts(end),
			"lineItem/UsageAccountId": acct, "lineItem/LineItemType": typ,
			"lineItem/UsageStartDate": ts(day), "lineItem/UsageEndDate": ts(until), "lineItem/ProductCode": product,
		}
		for k, v := range set {
			vals[k] = v
		}
		for k, v := range vals {
			i, ok := col[k]
			if !ok {
				panic("no column " + k)
			}
			row[i] = v
		}
		records = append(records, row)
	}
	cost := func(unblended decimal.Decimal) map[string]string {
		return map[string]string{"lineItem/UnblendedCost": unblended.String(), "lineItem/NetUnblendedCost": unblended.Mul(discount).String()}
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	spDaily, spHalf := decimal.NewFromInt(24), decimal.NewFromInt(12)
	days := int64(end.Sub(start) / (24 * time.Hour))
	line(payer, "SavingsPlanUpfrontFee", start, end, "ComputeSavingsPlans",
		with(cost(spHalf.Mul(decimal.NewFromInt(days))), "savingsPlan/SavingsPlanARN", spARN))
	line(memberB, "Fee", start, end, "AmazonEC2",
		with(cost(decimal.NewFromInt(500)), "reservation/ReservationARN", riARN, "lineItem/LineItemDescription", "Sign up charge for subscription: ri-0001"))
	riRecurring := decimal.NewFromInt(200)
	unusedUpfront, unusedRecurring := amount(5, 15), amount(1, 9)
	line(memberB, "RIFee", start, end, "AmazonEC2", with(cost(riRecurring), "reservation/ReservationARN", riARN,
		"reservation/AmortizedUpfrontFeeForBillingPeriod", "500",
		"reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", unusedUpfront.String(),
		"reservation/NetUnusedAmortizedUpfrontFeeForBillingPeriod", unusedUpfront.Mul(discount).String(),
		"reservation/UnusedRecurringFee", unusedRecurring.String(),
		"reservation/NetUnusedRecurringFee", unusedRecurring.Mul(discount).String()))
	for _, acct := range []string{payer, memberA, memberB} {
		line(acct, "Tax", start, end, "AWSSupportBusiness", map[string]string{"lineItem/UnblendedCost": amount(0, 3).String()})
	}
	line(memberA, "Credit", start, end, "AmazonEC2", cost(decimal.NewFromInt(-10)))
	line(payer, "Fee", start, end, "AWSSupportBusiness", cost(decimal.NewFromInt(29)))
	line(memberA, "Usage", start, start.Add(time.Hour), "AmazonS3",
		map[string]string{"lineItem/UnblendedCost": "5.0E-5", "lineItem/NetUnblendedCost": "4.75E-5"})

	for day := start; day.Before(end); day = day.AddDate(0, 0, 1) {
		next := day.AddDate(0, 0, 1)
		for _, acct := range []string{payer, memberA, memberB} {
			for _, product := range []string{"AmazonEC2", "AmazonS3"} {
				line(acct, "Usage", day, next, product, cost(amount(0, 40)))
			}
		}
		used := decimal.Zero
		for _, acct := range []string{memberA, memberB} {
			onDemand := amount(5, 18)
			effective := onDemand.Mul(decimal.RequireFromString("0.6"))
			used = used.Add(effective)
			line(acct, "SavingsPlanCoveredUsage", day, next, "AmazonEC2", with(cost(onDemand),
				"savingsPlan/SavingsPlanARN", spARN, "savingsPlan/SavingsPlanEffectiveCost", effective.String(),
				"savingsPlan/NetSavingsPlanEffectiveCost", effective.Mul(discount).String()))
			line(acct, "SavingsPlanNegation", day, next, "AmazonEC2", with(cost(onDemand.Neg()), "savingsPlan/SavingsPlanARN", spARN))
			riEffective := amount(1, 3)
			line(acct, "DiscountedUsage", day, next, "AmazonEC2", with(cost(decimal.Zero), "reservation/ReservationARN", riARN,
				"reservation/EffectiveCost", riEffective.String(), "reservation/NetEffectiveCost", riEffective.Mul(discount).String()))
		}
		line(payer, "SavingsPlanRecurringFee", day, next, "ComputeSavingsPlans", with(cost(spHalf), "savingsPlan/SavingsPlanARN", spARN,
			"savingsPlan/TotalCommitmentToDate", spDaily.String(), "savingsPlan/UsedCommitment", used.String(),
			"savingsPlan/RecurringCommitmentForBillingPeriod", spHalf.String(),
			"savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod", spHalf.String()))
	}
	return records
}

// measureSums reads billing.line_items with iceberg-go's own scan and sums
// the cost measures per usage account with shopspring/decimal, counting
// rows where a measure is null.
func measureSums(t *testing.T, lake *lakehouse.Lake, payer, period string) (sums map[string]map[string]decimal.Decimal, nulls int) {
	t.Helper()
	ctx := context.Background()
	tbl, err := lake.Catalog().LoadTable(ctx, lakehouse.TableID(billing.LineItems))
	require.NoError(t, err)
	measures := []string{billing.ColUnblendedCost, billing.ColAmortizedCost, billing.ColNetUnblendedCost, billing.ColNetAmortizedCost}
	at, err := tbl.Scan(table.WithSelectedFields(append([]string{billing.ColPayerAccountID, billing.ColBillingPeriod, billing.ColUsageAccountID}, measures...)...)).ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	sums = map[string]map[string]decimal.Decimal{}
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) any { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		payers, periods := col(billing.ColPayerAccountID).(*array.String), col(billing.ColBillingPeriod).(*array.String)
		accts := col(billing.ColUsageAccountID).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			if payers.Value(i) != payer || periods.Value(i) != period {
				continue
			}
			a := accts.Value(i)
			if sums[a] == nil {
				sums[a] = map[string]decimal.Decimal{}
			}
			for _, m := range measures {
				d := col(m).(*array.Decimal128)
				if !d.IsValid(i) {
					nulls++
					continue
				}
				sums[a][m] = sums[a][m].Add(decimal.NewFromBigInt(d.Value(i).BigInt(), -18))
			}
		}
	}
	require.NoError(t, tr.Err())
	return sums, nulls
}

// ceMetrics maps Cost Explorer's metric names to the table's columns.
var ceMetrics = map[string]string{
	"UnblendedCost": billing.ColUnblendedCost, "AmortizedCost": billing.ColAmortizedCost,
	"NetUnblendedCost": billing.ColNetUnblendedCost, "NetAmortizedCost": billing.ColNetAmortizedCost,
}

// costExplorerMonth asks Cost Explorer, over its wire protocol, for the
// month's four cost metrics per linked account, every page.
func costExplorerMonth(t *testing.T, client *ce.Client, start, end string) map[string]map[string]decimal.Decimal {
	t.Helper()
	in := &ce.GetCostAndUsageInput{
		TimePeriod:  &cetypes.DateInterval{Start: aws.String(start), End: aws.String(end)},
		Granularity: cetypes.GranularityMonthly,
		Metrics:     slices.Sorted(maps.Keys(ceMetrics)),
		GroupBy:     []cetypes.GroupDefinition{{Type: cetypes.GroupDefinitionTypeDimension, Key: aws.String("LINKED_ACCOUNT")}},
	}
	out := map[string]map[string]decimal.Decimal{}
	for {
		page, err := client.GetCostAndUsage(context.Background(), in)
		require.NoError(t, err)
		for _, res := range page.ResultsByTime {
			require.Equal(t, start, aws.ToString(res.TimePeriod.Start), "one month")
			for _, g := range res.Groups {
				acct := g.Keys[0]
				if out[acct] == nil {
					out[acct] = map[string]decimal.Decimal{}
				}
				for name, col := range ceMetrics {
					mv, ok := g.Metrics[name]
					require.True(t, ok, "%s missing for %s", name, acct)
					out[acct][col] = out[acct][col].Add(decimal.RequireFromString(aws.ToString(mv.Amount)))
				}
			}
		}
		if page.NextPageToken == nil {
			return out
		}
		in.NextPageToken = page.NextPageToken
	}
}

// TestAmortizedCostMatchesCostExplorer ingests a month with Savings Plans
// and Reserved Instances through the real workflow from MinIO, once as a
// legacy CUR, as a CUR 2.0 export in CSV and in Parquet (doubles for the
// costs, as AWS writes them), each under a payer of its own, and compares
// the sums per account of the table's unblended, amortized, net unblended
// and net amortized costs with what an emulated Cost Explorer, fed the same
// rows and computing on its own, answers for the month, to the last digit.
func TestAmortizedCostMatchesCostExplorer(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "commitments")
	emu := awsemu.Start(t)
	emu.SetPageSize(2)
	client := ce.NewFromConfig(emu.Config())

	type shape struct {
		name, payer, a, b string
		upload            func(records [][]string) (source string, header []string, rows [][]string)
	}
	shapes := []shape{
		{"legacy CUR", "510000000001", "510000000002", "510000000003", func(records [][]string) (string, []string, [][]string) {
			d := delivery{prefix: "cur", report: "legacy", period: "2025-05", assembly: "asm-1", payer: "510000000001",
				header: records[0], chunks: csvChunks(t, records, 2)}
			d.upload(t, bucket, "commitments")
			return "s3://commitments/cur/legacy", records[0], records[1:]
		}},
		{"CUR 2.0", "520000000001", "520000000002", "520000000003", func(records [][]string) (string, []string, [][]string) {
			c2 := cur2FromLegacy(t, records)
			n := len(c2.rows)
			uploadExport(t, bucket, "commitments", "cur2", "export", "2025-05", "exec-1",
				map[string][]byte{"export-00001.csv.gz": c2.csvGz(t, 0, n/2), "export-00002.csv.gz": c2.csvGz(t, n/2, n)},
				append(slices.Clone(c2.columns), "product", "resource_tags"))
			return "s3://commitments/cur2/export", c2.columns, c2.rows
		}},
		{"CUR 2.0 Parquet", "530000000001", "530000000002", "530000000003", func(records [][]string) (string, []string, [][]string) {
			c2 := cur2FromLegacy(t, records)
			uploadExport(t, bucket, "commitments", "cur2", "parquet", "2025-05", "exec-1",
				map[string][]byte{"parquet-00001.snappy.parquet": c2.parquetFile(t, 0, len(c2.rows))},
				append(slices.Clone(c2.columns), "product", "resource_tags"))
			return "s3://commitments/cur2/parquet", c2.columns, c2.rows
		}},
	}
	for i, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			records := commitmentMonth(uint64(i+1), sh.payer, sh.a, sh.b)
			source, header, rows := sh.upload(records)
			res, err := s.ingest(source, "2025-05")
			require.NoError(t, err)
			require.Equal(t, int64(len(records)-1), res.Rows)

			ceRecords, err := awsemu.CostRecordsFromCUR(header, rows)
			require.NoError(t, err)
			emu.SetCostRecords(ceRecords)
			want := costExplorerMonth(t, client, "2025-05-01", "2025-06-01")
			got, nulls := measureSums(t, s.lake, sh.payer, "2025-05")
			require.Zero(t, nulls, "every row has every measure")
			require.ElementsMatch(t, []string{sh.payer, sh.a, sh.b}, keysOf(want))
			require.ElementsMatch(t, keysOf(want), keysOf(got))
			for _, acct := range keysOf(want) {
				for _, col := range ceMetrics {
					require.Truef(t, want[acct][col].Equal(got[acct][col]), "%s %s: table %s, Cost Explorer %s", acct, col, got[acct][col], want[acct][col])
				}
			}
			// The month is one where the measures differ: a check of
			// amortized against unblended could not pass by accident.
			for _, acct := range []string{sh.payer, sh.b} {
				require.False(t, got[acct][billing.ColAmortizedCost].Equal(got[acct][billing.ColUnblendedCost]), "%s: amortized equals unblended", acct)
				require.False(t, got[acct][billing.ColNetAmortizedCost].Equal(got[acct][billing.ColAmortizedCost]), "%s: net amortized equals amortized", acct)
			}
		})
	}
}

func keysOf[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
