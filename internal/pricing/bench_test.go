package pricing

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkPricerAdd prices line items with a pricebook of every kind of
// rule, withheld types and a currency conversion: the per-row cost of a
// cycle's pricing pass.
func BenchmarkPricerAdd(b *testing.B) {
	p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "7.5", Currency: "USD", PartnerCredits: []string{"AWS Partner*"},
		Conversions: []Conversion{{From: "EUR", Rate: "1.0825"}},
		Rules: []Rule{{Service: "AmazonEC2", Percent: "5"}, {Account: acctA, UsageType: "USE1-*", Percent: "-3"},
			{UsageType: "USE1-BoxUsage:m5.large", Operation: "RunInstances", Percent: "-8"}, {BillingEntity: "AWS Marketplace", Percent: "0"},
			{Service: "AmazonS3", Region: "eu-west-1", Percent: "2"}, {LineItemType: "Fee", Percent: "0"}}}
	pr, err := NewPricer(p)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	items := make([]LineItem, 1024)
	for i := range items {
		items[i] = randomItem(r, 10)
		items[i].Operation, items[i].Region, items[i].Currency = "RunInstances", "eu-west-1", []string{"USD", "EUR"}[i%2]
	}
	var t Totals
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pr.Add(&t, items[i%len(items)])
	}
}
