package costexplorer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ce "github.com/aws/aws-sdk-go-v2/service/costexplorer"

	"github.com/costlake/costlake/internal/costexplorer"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/tests/awsemu"
)

func record(day, acct, svc, rt, unblended, amortized, net string) awsemu.CostRecord {
	return awsemu.CostRecord{Date: day,
		Dimensions: map[string]string{"LINKED_ACCOUNT": acct, "SERVICE": svc, "RECORD_TYPE": rt},
		Metrics: map[string]awsemu.MetricValue{
			"UnblendedCost":    {Amount: unblended, Unit: "USD"},
			"AmortizedCost":    {Amount: amortized, Unit: "USD"},
			"NetUnblendedCost": {Amount: net, Unit: "USD"},
			"BlendedCost":      {Amount: "999", Unit: "USD"},
		}}
}

var records = []awsemu.CostRecord{
	record("2025-03-01", "222222222222", "Amazon Simple Storage Service", "Usage", "1.0000000001", "1.0000000001", "0.9"),
	record("2025-03-01", "222222222222", "Amazon Elastic Compute Cloud - Compute", "Usage", "12.5", "3.25", "12.5"),
	record("2025-03-01", "222222222222", "Amazon Elastic Compute Cloud - Compute", "SavingsPlanCoveredUsage", "8", "2.5", "8"),
	record("2025-03-01", "333333333333", "Tax", "Tax", "0.31", "0.31", "0.31"),
	record("2025-03-02", "333333333333", "Amazon Simple Storage Service", "Usage", "5.0E-7", "5.0E-7", "5.0E-7"),
	record("2025-03-02", "222222222222", "Amazon Simple Storage Service", "Credit", "-0.75", "-0.75", "-0.75"),
	record("2025-03-02", "222222222222", "Amazon Simple Storage Service", "Usage", "123456789.123456789", "123456789.123456789", "123456789"),
	record("2025-03-03", "222222222222", "Amazon Simple Storage Service", "Usage", "100", "100", "100"), // outside the range
}

func setup(t *testing.T) (*awsemu.Server, *ce.Client) {
	t.Helper()
	emu := awsemu.Start(t)
	emu.SetPageSize(2)
	emu.SetCostRecords(records)
	return emu, ce.NewFromConfig(emu.Config())
}

var instant = costexplorer.Backoff{Attempts: 4, Base: time.Second, Max: 8 * time.Second,
	Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }}

func TestFetchExactRowsAndCountsCalls(t *testing.T) {
	emu, client := setup(t)
	var progress int
	rows, st, err := costexplorer.Fetch(context.Background(), client, "2025-03-01", "2025-03-03",
		costexplorer.WithBackoff(instant), costexplorer.WithProgress(func(costexplorer.Stats) { progress++ }))
	if err != nil {
		t.Fatal(err)
	}
	want := []costexplorer.DailyCost{
		{"2025-03-01", "222222222222", "Amazon Elastic Compute Cloud - Compute", "SavingsPlanCoveredUsage", money.MustParse("8"), money.MustParse("2.5"), money.MustParse("8"), "USD", false},
		{"2025-03-01", "222222222222", "Amazon Elastic Compute Cloud - Compute", "Usage", money.MustParse("12.5"), money.MustParse("3.25"), money.MustParse("12.5"), "USD", false},
		{"2025-03-01", "222222222222", "Amazon Simple Storage Service", "Usage", money.MustParse("1.0000000001"), money.MustParse("1.0000000001"), money.MustParse("0.9"), "USD", false},
		{"2025-03-01", "333333333333", "Tax", "Tax", money.MustParse("0.31"), money.MustParse("0.31"), money.MustParse("0.31"), "USD", false},
		{"2025-03-02", "222222222222", "Amazon Simple Storage Service", "Credit", money.MustParse("-0.75"), money.MustParse("-0.75"), money.MustParse("-0.75"), "USD", false},
		{"2025-03-02", "222222222222", "Amazon Simple Storage Service", "Usage", money.MustParse("123456789.123456789"), money.MustParse("123456789.123456789"), money.MustParse("123456789"), "USD", false},
		{"2025-03-02", "333333333333", "Amazon Simple Storage Service", "Usage", money.MustParse("0.0000005"), money.MustParse("0.0000005"), money.MustParse("0.0000005"), "USD", false},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if fmt.Sprint(rows[i]) != fmt.Sprint(want[i]) {
			t.Errorf("row %d:\n got %v\nwant %v", i, rows[i], want[i])
		}
	}

	calls := emu.Calls("GetCostAndUsage")
	// Discovery: 5 (day, record type) groups, 2 a page: 3 pages. Then per
	// record type (Credit, SavingsPlanCoveredUsage, Tax, Usage), groups
	// plus empty days: Credit 1+1 day → 1 page, SPCU 1+1 → 1, Tax 1+1 → 1,
	// Usage 2+2 → 2 pages.
	if st.Calls != len(calls) || st.Calls != 8 || st.Pages != 8 || st.Throttled != 0 {
		t.Errorf("stats %+v, emulator saw %d calls; want 8 calls and pages", st, len(calls))
	}
	if progress < st.Pages {
		t.Errorf("progress reported %d times for %d pages", progress, st.Pages)
	}
	var first struct {
		GroupBy []struct{ Key string }
		Metrics []string
	}
	if err := json.Unmarshal([]byte(calls[0].Input), &first); err != nil || len(first.GroupBy) != 1 || first.GroupBy[0].Key != "RECORD_TYPE" {
		t.Errorf("first query %s, want a discovery by RECORD_TYPE", calls[0].Input)
	}
	var last struct {
		GroupBy []struct{ Key string }
		Filter  struct {
			Dimensions struct {
				Key    string
				Values []string
			}
		}
		Metrics []string
	}
	if err := json.Unmarshal([]byte(calls[len(calls)-1].Input), &last); err != nil || len(last.GroupBy) != 2 ||
		last.Filter.Dimensions.Key != "RECORD_TYPE" || len(last.Metrics) != 3 {
		t.Errorf("last query %s, want LINKED_ACCOUNT × SERVICE filtered by RECORD_TYPE", calls[len(calls)-1].Input)
	}
}

func TestFetchOutlastsThrottling(t *testing.T) {
	emu, client := setup(t)
	// The SDK's retryer makes 3 attempts; 7 throttles exhaust it twice.
	emu.FailNext("GetCostAndUsage", "LimitExceededException", "Rate exceeded", 7)
	var waits []time.Duration
	b := instant
	b.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	rows, st, err := costexplorer.Fetch(context.Background(), client, "2025-03-01", "2025-03-03", costexplorer.WithBackoff(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 {
		t.Errorf("%d rows", len(rows))
	}
	if n := len(emu.Calls("GetCostAndUsage")); st.Calls != n || st.Calls != 8+7 || st.Throttled != 7 || st.Pages != 8 {
		t.Errorf("stats %+v, emulator saw %d calls; want 15 calls, 7 throttled, 8 pages", st, n)
	}
	if len(waits) != 2 || waits[0] < 500*time.Millisecond || waits[0] > time.Second || waits[1] < time.Second || waits[1] > 2*time.Second {
		t.Errorf("waits %v, want two growing waits", waits)
	}

	// Throttling that never ends: bounded tries, a named error, stats kept.
	emu.FailNext("GetCostAndUsage", "ThrottlingException", "Rate exceeded", 100)
	before := len(emu.Calls("GetCostAndUsage"))
	_, st, err = costexplorer.Fetch(context.Background(), client, "2025-03-01", "2025-03-03", costexplorer.WithBackoff(b))
	if !errors.Is(err, costexplorer.ErrThrottled) {
		t.Fatalf("persistent throttling: %v", err)
	}
	if n := len(emu.Calls("GetCostAndUsage")) - before; st.Calls != n || n != 4*3 || st.Throttled != n {
		t.Errorf("stats %+v, emulator saw %d calls; want 4 tries of 3 attempts", st, n)
	}
	emu.ClearFaults("")

	// A context that ends during a wait stops the fetch.
	emu.FailNext("GetCostAndUsage", "LimitExceededException", "Rate exceeded", 3)
	ctx, cancel := context.WithCancel(context.Background())
	b.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	_, _, err = costexplorer.Fetch(ctx, client, "2025-03-01", "2025-03-03", costexplorer.WithBackoff(b))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during back-off: %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := costexplorer.Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: func() float64 { return 0.999999 }}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := b.Delay(n); got > want || got < want*99/100 {
			t.Errorf("Delay(%d) = %v, want about %v", n, got, want)
		}
	}
	b.Jitter = func() float64 { return 0 }
	if got := b.Delay(3); got != 2*time.Second {
		t.Errorf("Delay(3) with no jitter = %v, want half of 4s", got)
	}
}

func TestFetchRejectsBadInput(t *testing.T) {
	_, client := setup(t)
	ctx := context.Background()
	for _, r := range [][2]string{{"2025-03-02", "2025-03-02"}, {"2025-3-1", "2025-03-02"}, {"2025-03-01", ""}} {
		if _, st, err := costexplorer.Fetch(ctx, client, r[0], r[1]); !errors.Is(err, costexplorer.ErrRange) || st.Calls != 0 {
			t.Errorf("range %v: %v, %+v", r, err, st)
		}
	}
}

// A response Fetch cannot keep exactly fails with ErrResponse: an amount
// with more digits than decimal(38,18), or a metric missing.
func TestFetchRejectsInexactResponses(t *testing.T) {
	for name, metrics := range map[string]string{
		"too precise": `{"UnblendedCost":{"Amount":"0.0000000000000000001","Unit":"USD"},"AmortizedCost":{"Amount":"0","Unit":"USD"},"NetUnblendedCost":{"Amount":"0","Unit":"USD"}}`,
		"missing":     `{"UnblendedCost":{"Amount":"1","Unit":"USD"},"AmortizedCost":{"Amount":"1","Unit":"USD"}}`,
		"mixed units": `{"UnblendedCost":{"Amount":"1","Unit":"USD"},"AmortizedCost":{"Amount":"1","Unit":"EUR"},"NetUnblendedCost":{"Amount":"1","Unit":"USD"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var in struct{ GroupBy []any }
				_ = json.NewDecoder(r.Body).Decode(&in)
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				if len(in.GroupBy) == 1 {
					fmt.Fprint(w, `{"ResultsByTime":[{"TimePeriod":{"Start":"2025-03-01","End":"2025-03-02"},"Groups":[{"Keys":["Usage"],"Metrics":{}}]}]}`)
					return
				}
				fmt.Fprintf(w, `{"ResultsByTime":[{"TimePeriod":{"Start":"2025-03-01","End":"2025-03-02"},"Groups":[{"Keys":["222222222222","S3"],"Metrics":%s}]}]}`, metrics)
			}))
			defer srv.Close()
			cfg := awsemu.Start(t).Config()
			client := ce.NewFromConfig(cfg, func(o *ce.Options) { o.BaseEndpoint = aws.String(srv.URL) })
			_, st, err := costexplorer.Fetch(context.Background(), client, "2025-03-01", "2025-03-02")
			if !errors.Is(err, costexplorer.ErrResponse) || st.Calls != 2 {
				t.Errorf("%v, %+v", err, st)
			}
		})
	}
}
