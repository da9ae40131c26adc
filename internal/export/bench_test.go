package export

import (
	"testing"
	"time"

	"github.com/costlake/costlake/internal/money"
)

// BenchmarkAppendRow prints one typical line item, tags included.
func BenchmarkAppendRow(b *testing.B) {
	amt := func(s string) money.Amount { a, _ := money.Parse(s); return a }
	r := Row{InvoiceID: "1234567890", PayerAccountID: "111122223333", LinkedAccountID: "444455556666", RecordID: "abc123",
		ProductName: "Amazon Elastic Compute Cloud", UsageType: "USE1-BoxUsage:m5.large", Operation: "RunInstances",
		AvailabilityZone: "us-east-1a", ReservedInstance: "N", ItemDescription: "$0.096 per On Demand Linux m5.large Instance Hour",
		UsageStartDate: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), UsageEndDate: time.Date(2026, 9, 1, 1, 0, 0, 0, time.UTC),
		UsageQuantity: amt("1"), BlendedRate: amt("0.096"), BlendedCost: amt("0.096"), UnBlendedRate: amt("0.096"), UnBlendedCost: amt("0.096"),
		ResourceID: "i-0123456789abcdef0", Tags: map[string]string{"user:Name": "web", "user:env": "prod"}}
	s := Spec{Mode: AtCost, TagKeys: []string{"user:Name", "user:env"}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = s.appendRow(buf[:0], &r)
	}
}
