package pricing

import (
	"errors"
	"strings"
	"testing"
)

// The payer's program discounts and partner credits stay with the
// reseller unless the pricebook passes them through.
func TestResellerDiscountsAreWithheld(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "10", PartnerCredits: []string{"APN *", "MAP 2.0 credit"}}
	pr, err := NewPricer(p)
	if err != nil {
		t.Fatal(err)
	}
	withheld := []LineItem{
		{LineItemType: "SppDiscount", UnblendedCost: amt("-3.5")},
		{LineItemType: "EdpDiscount", UnblendedCost: amt("-7")},
		{LineItemType: "PrivateRateDiscount", UnblendedCost: amt("-1")},
		{LineItemType: "DistributorDiscount", UnblendedCost: amt("-2")},
		{LineItemType: "BundledDiscount", UnblendedCost: amt("-0.25")},
		{LineItemType: "RiVolumeDiscount", UnblendedCost: amt("-0.5")},
		{LineItemType: TypeCredit, Description: "APN Migration credit", UnblendedCost: amt("-100")},
		{LineItemType: TypeCredit, Description: "MAP 2.0 credit", UnblendedCost: amt("-50")},
	}
	passed := []LineItem{
		{LineItemType: "Usage", UnblendedCost: amt("100")},
		{LineItemType: TypeCredit, Description: "AWS Promotional credit", UnblendedCost: amt("-20")},
		{LineItemType: TypeCredit, Description: "MAP 2.0 credit (extra)", UnblendedCost: amt("-1")},
	}
	var tot Totals
	for _, it := range withheld {
		got, ref := pr.Add(&tot, it)
		if ref != RefWithheld || !got.IsZero() {
			t.Errorf("%s %q: resale %s by %s, want 0 withheld", it.LineItemType, it.Description, got, ref)
		}
	}
	for _, it := range passed {
		if _, ref := pr.Add(&tot, it); ref == RefWithheld {
			t.Errorf("%s %q withheld, want it on the invoice", it.LineItemType, it.Description)
		}
	}
	if tot.Withheld.Lines != 8 || tot.Withheld.Cost.String() != "-164.25" || !tot.Withheld.Resale.IsZero() {
		t.Errorf("withheld totals %+v, want 8 lines costing -164.25, resale 0", tot.Withheld)
	}
	if all := tot.All(); all.Cost.String() != "-85.25" {
		t.Errorf("all cost %s, want -85.25 (every line, withheld ones included)", all.Cost)
	}
	bill, err := pr.Invoice("2025-03", tot)
	if err != nil {
		t.Fatal(err)
	}
	// Usage 110 + credits -21 at cost; nothing withheld is on the bill.
	if bill.Total.String() != "89" {
		t.Errorf("bill total %s, want 89; lines %+v", bill.Total, bill.Lines)
	}

	// Passed through, they are priced like any other line.
	p.PassThrough = []string{"EdpDiscount", PartnerCredit}
	pr, err = NewPricer(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, ref := pr.Resale(withheld[1]); ref != RefGlobal || got.String() != "-7.7" {
		t.Errorf("EDP passed through: %s by %s, want -7.7 by global_percent", got, ref)
	}
	if got, ref := pr.Resale(withheld[6]); ref != RefAtCost || got.String() != "-100" {
		t.Errorf("partner credit passed through: %s by %s, want -100 at cost", got, ref)
	}
	if _, ref := pr.Resale(withheld[0]); ref != RefWithheld {
		t.Errorf("SPP not passed through: by %s, want withheld", ref)
	}
}

func TestRulesMatchTypeEntitySKUAndRegion(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "10", Rules: []Rule{
		{BillingEntity: "AWS Marketplace", Percent: "0"},                                      // 0
		{LineItemType: "Fee", Percent: "5"},                                                   // 1
		{UsageType: "USE1-BoxUsage:m5.large", Operation: "RunInstances:0002", Percent: "-20"}, // 2: a SKU
		{UsageType: "USE1-BoxUsage:m5.large", Percent: "-10"},                                 // 3
		{Service: "AmazonEC2", Region: "eu-west-1", Percent: "-5"},                            // 4
		{Service: "AmazonEC2", Percent: "-1"},                                                 // 5
	}}
	pr, err := NewPricer(p)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		item LineItem
		want RuleRef
	}{
		{"marketplace", LineItem{BillingEntity: "AWS Marketplace", ProductCode: "prod-abc", LineItemType: "Usage"}, RuleRefOf(0)},
		{"fee", LineItem{LineItemType: "Fee", ProductCode: "AmazonRoute53"}, RuleRefOf(1)},
		{"SKU beats usage type", LineItem{ProductCode: "AmazonEC2", UsageType: "USE1-BoxUsage:m5.large", Operation: "RunInstances:0002"}, RuleRefOf(2)},
		{"usage type of another operation", LineItem{ProductCode: "AmazonEC2", UsageType: "USE1-BoxUsage:m5.large", Operation: "RunInstances"}, RuleRefOf(3)},
		{"service in region", LineItem{ProductCode: "AmazonEC2", Region: "eu-west-1"}, RuleRefOf(4)},
		{"service elsewhere", LineItem{ProductCode: "AmazonEC2", Region: "us-east-1"}, RuleRefOf(5)},
		{"nothing", LineItem{ProductCode: "AmazonS3"}, RefGlobal},
	}
	for _, c := range cases {
		c.item.UnblendedCost = amt("1")
		if _, ref := pr.Resale(c.item); ref != c.want {
			t.Errorf("%s: priced by %s, want %s", c.name, ref, c.want)
		}
	}
}

func TestPricebookWithholdingAndCurrencyProblems(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-01",
		Rules:          []Rule{{Operation: "Run Instances", Percent: "1"}, {BillingEntity: " AWS", Percent: "1"}, {LineItemType: "Fee", Percent: "1"}, {LineItemType: "Fee", Percent: "2"}},
		PassThrough:    []string{"SppDiscount", "SppDiscount", "Usage"},
		PartnerCredits: []string{"*", "a*b*"},
		Conversions:    []Conversion{{From: "EUR", Rate: "1.1"}},
	}
	err := p.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	var fields []string
	for _, f := range ve.Problems {
		fields = append(fields, f.Field)
	}
	want := "rules[0].operation rules[1].billing_entity rules[3] pass_through[1] pass_through[2] partner_credits[0] partner_credits[1] conversions"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("problems at %q, want %q\n%v", got, want, err)
	}
	p = Pricebook{EffectiveFrom: "2025-01", Currency: "usd", Conversions: []Conversion{{From: "EUR", Rate: "0"}, {From: "usd", Rate: "1"}, {From: "EUR", Rate: "2"}}}
	err = p.Validate()
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	fields = fields[:0]
	for _, f := range ve.Problems {
		fields = append(fields, f.Field)
	}
	if got := strings.Join(fields, " "); got != "currency conversions[0].rate conversions[1].from" {
		t.Errorf("problems at %q\n%v", got, err)
	}
}

// One currency per bill: several are refused unless the pricebook names
// the bill's currency and converts the others at a pinned rate.
func TestOneCurrencyPerBill(t *testing.T) {
	pr, err := NewPricer(Pricebook{EffectiveFrom: "2025-01"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pr.BillCurrency([]string{"USD", "", "USD"}); err != nil || c != "USD" {
		t.Errorf("one currency: %q, %v", c, err)
	}
	if _, err := pr.BillCurrency([]string{"USD", "EUR"}); !errors.Is(err, ErrCurrency) {
		t.Errorf("two currencies: %v, want ErrCurrency", err)
	}
	pr, err = NewPricer(Pricebook{EffectiveFrom: "2025-01", Currency: "USD", GlobalPercent: "10", Conversions: []Conversion{{From: "EUR", Rate: "1.0825"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pr.BillCurrency([]string{"USD", "EUR"}); err != nil || c != "USD" {
		t.Errorf("converted: %q, %v", c, err)
	}
	if _, err := pr.BillCurrency([]string{"USD", "JPY"}); !errors.Is(err, ErrCurrency) {
		t.Errorf("JPY without a conversion: %v, want ErrCurrency", err)
	}
	var tot Totals
	eur := LineItem{LineItemType: "Usage", Currency: "EUR", UnblendedCost: amt("100")}
	resale, _ := pr.Add(&tot, eur)
	if resale.String() != "119.075" || tot.Usage.Cost.String() != "108.25" {
		t.Errorf("EUR 100 at 1.0825 +10%%: resale %s cost %s, want 119.075 and 108.25", resale, tot.Usage.Cost)
	}
	if r, ok := pr.ResaleRate(eur, RefGlobal, amt("0.2")); !ok || r.String() != "0.23815" {
		t.Errorf("resale rate %s %v, want 0.23815", r, ok)
	}
	if _, ok := pr.ResaleRate(eur, RefWithheld, amt("0.2")); ok {
		t.Error("a withheld line has a resale rate")
	}
}

// A pricebook may price on amortized or public on-demand cost; taxes,
// credits and refunds at cost stay at their unblended cost.
func TestCostBasis(t *testing.T) {
	covered := LineItem{LineItemType: "SavingsPlanCoveredUsage", UnblendedCost: amt("10"), AmortizedCost: amt("6"), HasAmortizedCost: true,
		PublicOnDemandCost: amt("10"), HasPublicOnDemandCost: true}
	negation := LineItem{LineItemType: "SavingsPlanNegation", UnblendedCost: amt("-10"), AmortizedCost: amt("0"), HasAmortizedCost: true}
	tax := LineItem{LineItemType: TypeTax, UnblendedCost: amt("1.5"), AmortizedCost: amt("1.5"), HasAmortizedCost: true}
	cases := []struct {
		basis string
		want  []string // covered, negation, tax
	}{
		{"", []string{"11", "-11", "1.5"}},
		{CostUnblended, []string{"11", "-11", "1.5"}},
		{CostAmortized, []string{"6.6", "0", "1.5"}},
		{CostPublicOnDemand, []string{"11", "0", "1.5"}},
	}
	for _, c := range cases {
		pr, err := NewPricer(Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "10", CostBasis: c.basis})
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range []LineItem{covered, negation, tax} {
			if got, _ := pr.Resale(it); got.String() != c.want[i] {
				t.Errorf("basis %q, %s: resale %s, want %s", c.basis, it.LineItemType, got, c.want[i])
			}
		}
	}
	pr, err := NewPricer(Pricebook{EffectiveFrom: "2025-01", CostBasis: CostAmortized})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.MissingBasis(LineItem{AccountID: "111122223333", LineItemType: "Usage", UnblendedCost: amt("1")}); !errors.Is(err, ErrNoCostBasis) {
		t.Errorf("a line without amortized_cost on an amortized pricebook: %v, want ErrNoCostBasis", err)
	}
	if err := (Pricebook{EffectiveFrom: "2025-01", CostBasis: "blended"}).Validate(); err == nil || !strings.Contains(err.Error(), "cost_basis") {
		t.Errorf("cost_basis blended: %v", err)
	}
}

// The reseller's taxes are a percent of the invoice before taxes,
// adjustments included and AWS's own tax left out.
func TestResellerTaxes(t *testing.T) {
	pr, err := NewPricer(Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "10",
		Credits: []Credit{{Description: "welcome", Amount: "10", Period: "2025-03"}},
		Taxes:   []TaxRate{{Name: "VAT", Percent: "20"}, {Name: "Levy", Percent: "0.5"}}})
	if err != nil {
		t.Fatal(err)
	}
	var tot Totals
	pr.Add(&tot, LineItem{LineItemType: "Usage", UnblendedCost: amt("100")}) // 110
	pr.Add(&tot, LineItem{LineItemType: TypeTax, UnblendedCost: amt("7")})   // AWS's tax, at cost, not taxed again
	b, err := pr.Invoice("2025-03", tot)
	if err != nil {
		t.Fatal(err)
	}
	AddLines(&b, AdjustmentLine("2025-02", "111122223333", "a1", amt("4"), nil, 0)) // at cost
	pr.AddTaxes(&b)
	// Base: 110 - 10 + 4 = 104; VAT 20.8, levy 0.52; total 104 + 7 + 20.8 + 0.52.
	if b.Total.String() != "132.32" || b.Lines[len(b.Lines)-2].Amount.String() != "20.8" || b.Lines[len(b.Lines)-1].Amount.String() != "0.52" {
		t.Errorf("total %s, lines %+v", b.Total, b.Lines)
	}
	if err := (Pricebook{EffectiveFrom: "2025-01", Taxes: []TaxRate{{Percent: "101"}}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "taxes[0].name") || !strings.Contains(err.Error(), "taxes[0].percent") {
		t.Errorf("a bad tax: %v", err)
	}
}
