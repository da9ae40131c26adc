package awsemu_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	cetypes "github.com/aws/aws-sdk-go-v2/service/costexplorer/types"

	"github.com/costlake/costlake/tests/awsemu"
)

func TestCostExplorerAggregatesRecords(t *testing.T) {
	emu := awsemu.Start(t)
	emu.SetPageSize(3)
	rec := func(day, acct, svc, rt, amount string) awsemu.CostRecord {
		return awsemu.CostRecord{Date: day,
			Dimensions: map[string]string{"LINKED_ACCOUNT": acct, "SERVICE": svc, "RECORD_TYPE": rt},
			Metrics:    map[string]awsemu.MetricValue{"UnblendedCost": {Amount: amount, Unit: "USD"}, "UsageQuantity": {Amount: "1", Unit: "N/A"}}}
	}
	emu.SetCostRecords([]awsemu.CostRecord{
		rec("2025-01-01", "222222222222", "Amazon S3", "Usage", "1.5"),
		rec("2025-01-01", "222222222222", "Amazon S3", "Usage", "0.0000000001"), // summed with the one above
		rec("2025-01-01", "333333333333", "Amazon EC2", "Usage", "2"),
		rec("2025-01-01", "333333333333", "Tax", "Tax", "0.2"),
		rec("2025-01-02", "222222222222", "Amazon S3", "Credit", "-1.25E-2"),
		rec("2025-01-03", "222222222222", "Amazon S3", "Usage", "9"), // outside the request
	})
	client := costexplorer.NewFromConfig(emu.Config())
	ctx := context.Background()
	run := func(in costexplorer.GetCostAndUsageInput) (out []string, pages int) {
		t.Helper()
		in.TimePeriod = &cetypes.DateInterval{Start: aws.String("2025-01-01"), End: aws.String("2025-01-03")}
		in.Granularity = cetypes.GranularityDaily
		in.Metrics = []string{"UnblendedCost"}
		for {
			page, err := client.GetCostAndUsage(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range page.ResultsByTime {
				day := aws.ToString(r.TimePeriod.Start)
				if len(r.Groups) == 0 {
					out = append(out, fmt.Sprintf("%s total=%s", day, aws.ToString(r.Total["UnblendedCost"].Amount)))
				}
				for _, g := range r.Groups {
					if _, ok := g.Metrics["UsageQuantity"]; ok {
						t.Errorf("unrequested metric returned")
					}
					out = append(out, fmt.Sprintf("%s %v=%s", day, g.Keys, aws.ToString(g.Metrics["UnblendedCost"].Amount)))
				}
			}
			if page.NextPageToken == nil {
				return out, pages
			}
			in.NextPageToken = page.NextPageToken
		}
	}
	dim := func(key string) cetypes.GroupDefinition {
		return cetypes.GroupDefinition{Type: cetypes.GroupDefinitionTypeDimension, Key: aws.String(key)}
	}

	got, pages := run(costexplorer.GetCostAndUsageInput{GroupBy: []cetypes.GroupDefinition{dim("RECORD_TYPE")}})
	want := []string{"2025-01-01 [Tax]=0.2", "2025-01-01 [Usage]=3.5000000001", "2025-01-02 [Credit]=-0.0125"}
	if !slices.Equal(got, want) || pages != 1 {
		t.Errorf("by record type: %q in %d pages, want %q in 1", got, pages, want)
	}

	// Four groups on day one, three a page: the day continues on page two.
	got, pages = run(costexplorer.GetCostAndUsageInput{GroupBy: []cetypes.GroupDefinition{dim("LINKED_ACCOUNT"), dim("SERVICE")}})
	want = []string{"2025-01-01 [222222222222 Amazon S3]=1.5000000001", "2025-01-01 [333333333333 Amazon EC2]=2",
		"2025-01-01 [333333333333 Tax]=0.2", "2025-01-02 [222222222222 Amazon S3]=-0.0125"}
	if !slices.Equal(got, want) || pages != 2 {
		t.Errorf("by account and service: %q in %d pages, want %q in 2", got, pages, want)
	}

	got, _ = run(costexplorer.GetCostAndUsageInput{
		GroupBy: []cetypes.GroupDefinition{dim("LINKED_ACCOUNT"), dim("SERVICE")},
		Filter:  &cetypes.Expression{Dimensions: &cetypes.DimensionValues{Key: cetypes.DimensionRecordType, Values: []string{"Usage"}}},
	})
	want = []string{"2025-01-01 [222222222222 Amazon S3]=1.5000000001", "2025-01-01 [333333333333 Amazon EC2]=2", "2025-01-02 total="}
	if !slices.Equal(got, want) {
		t.Errorf("filtered to Usage: %q, want %q (an empty day included)", got, want)
	}

	got, _ = run(costexplorer.GetCostAndUsageInput{Filter: &cetypes.Expression{Not: &cetypes.Expression{
		Dimensions: &cetypes.DimensionValues{Key: cetypes.DimensionLinkedAccount, Values: []string{"333333333333"}}}}})
	want = []string{"2025-01-01 total=1.5000000001", "2025-01-02 total=-0.0125"}
	if !slices.Equal(got, want) {
		t.Errorf("ungrouped, not 333333333333: %q, want %q", got, want)
	}
}

// The metrics of CUR rows are the same whichever header shape names the
// columns, and follow AWS's amortization.
func TestCostRecordsFromCUR(t *testing.T) {
	legacy := []string{"lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/ProductCode",
		"lineItem/UnblendedCost", "lineItem/NetUnblendedCost", "savingsPlan/SavingsPlanEffectiveCost",
		"savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment", "reservation/ReservationARN",
		"reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/UnusedRecurringFee", "reservation/NetUnusedRecurringFee"}
	cur2 := []string{"line_item_usage_account_id", "line_item_line_item_type", "line_item_usage_start_date", "line_item_product_code",
		"line_item_unblended_cost", "line_item_net_unblended_cost", "savings_plan_savings_plan_effective_cost",
		"savings_plan_total_commitment_to_date", "savings_plan_used_commitment", "reservation_reservation_a_r_n",
		"reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee", "reservation_net_unused_recurring_fee"}
	rows := [][]string{
		{"2", "Usage", "2025-01-01T00:00:00Z", "AmazonS3", "1.5", "1.4", "", "", "", "", "", "", ""},
		{"2", "SavingsPlanCoveredUsage", "2025-01-01T00:00:00Z", "AmazonEC2", "10", "", "6", "", "", "", "", "", ""},
		{"2", "SavingsPlanNegation", "2025-01-01T00:00:00Z", "AmazonEC2", "-10", "", "", "", "", "", "", "", ""},
		{"3", "SavingsPlanRecurringFee", "2025-01-01 00:00:00", "ComputeSavingsPlans", "8", "", "", "8", "6", "", "", "", ""},
		{"3", "RIFee", "2025-01-01T00:00:00Z", "AmazonEC2", "20", "19", "", "", "", "arn:r", "1.5", "2", "1.9"},
		{"3", "Fee", "2025-01-01T00:00:00Z", "AmazonEC2", "300", "", "", "", "", "arn:r", "", "", ""},
	}
	want := []string{
		"2 Usage u=1.5 a=1.5 nu=1.4 na=1.4",
		"2 SavingsPlanCoveredUsage u=10 a=6 nu=10 na=6",
		"2 SavingsPlanNegation u=-10 a=0 nu=-10 na=0",
		"3 SavingsPlanRecurringFee u=8 a=2 nu=8 na=2",
		"3 RIFee u=20 a=3.5 nu=19 na=3.4",
		"3 Fee u=300 a=0 nu=300 na=0",
	}
	for _, header := range [][]string{legacy, cur2} {
		recs, err := awsemu.CostRecordsFromCUR(header, rows)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			m := func(name string) string {
				v, ok := new(big.Rat).SetString(r.Metrics[name].Amount)
				if !ok {
					t.Fatalf("%s: %q", name, r.Metrics[name].Amount)
				}
				return strings.TrimSuffix(strings.TrimRight(v.FloatString(6), "0"), ".")
			}
			got = append(got, fmt.Sprintf("%s %s u=%s a=%s nu=%s na=%s", r.Dimensions["LINKED_ACCOUNT"], r.Dimensions["RECORD_TYPE"],
				m("UnblendedCost"), m("AmortizedCost"), m("NetUnblendedCost"), m("NetAmortizedCost")))
			if r.Date != "2025-01-01" {
				t.Errorf("date %q", r.Date)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s headers:\n got %q\nwant %q", header[0], got, want)
		}
	}
	if _, err := awsemu.CostRecordsFromCUR(legacy, [][]string{{"2", "Usage", "2025-01-01", "S3", "x1", "", "", "", "", "", "", "", ""}}); err == nil {
		t.Error("a cost that is not a number is an error")
	}
}
