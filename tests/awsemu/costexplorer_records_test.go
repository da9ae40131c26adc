package awsemu_test

import (
	"context"
	"fmt"
	"slices"
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
