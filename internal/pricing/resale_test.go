package pricing

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/costlake/costlake/internal/money"
)

var amt = money.MustParse

// precedenceBook has one rule per combination; each percent is unique so
// a resale of 100 names the rule.
func precedenceBook() Pricebook {
	return Pricebook{
		EffectiveFrom: "2025-01",
		GlobalPercent: "1",
		Rules: []Rule{
			0: {Account: acctA, Percent: "-1"},
			1: {Service: "AmazonEC2", Percent: "-2"},
			2: {UsageType: "USE1-BoxUsage:m5.large", Percent: "-3"},
			3: {UsageType: "USE1-BoxUsage*", Percent: "-4"},
			4: {UsageType: "USE1-*", Percent: "-5"},
			5: {Service: "AmazonEC2", UsageType: "USE1-BoxUsage*", Percent: "-6"},
			6: {Account: acctA, Service: "AmazonEC2", Percent: "-7"},
			7: {Account: acctA, UsageType: "USE1-DataTransfer*", Percent: "-8"},
			8: {Account: acctA, Service: "AmazonEC2", UsageType: "USE1-BoxUsage:m5.large", Percent: "-9"},
			9: {Service: "AWSDataTransfer", Percent: "-10"},
		},
	}
}

func TestResalePrecedence(t *testing.T) {
	p := precedenceBook()
	cases := []struct {
		name                            string
		account, product, service, usag string
		want                            string
		ref                             RuleRef
	}{
		{"account+service+usage type beats all", acctA, "AmazonEC2", "AmazonEC2", "USE1-BoxUsage:m5.large", "91", "rules[8]"},
		{"account+usage type beats account+service", acctA, "AmazonEC2", "AmazonEC2", "USE1-DataTransfer-Out-Bytes", "92", "rules[7]"},
		{"account+service beats service+usage type", acctA, "AmazonEC2", "AmazonEC2", "USE1-BoxUsage:t3.micro", "93", "rules[6]"},
		{"service+usage type beats usage type", acctB, "AmazonEC2", "AmazonEC2", "USE1-BoxUsage:m5.large", "94", "rules[5]"},
		{"usage type beats service", acctB, "AmazonS3", "AWSDataTransfer", "USE1-DataTransfer-Out-Bytes", "95", "rules[4]"},
		{"usage type beats account", acctA, "AmazonS3", "AmazonS3", "USE1-TimedStorage", "95", "rules[4]"},
		{"exact usage type beats prefix", acctB, "AmazonRDS", "AmazonRDS", "USE1-BoxUsage:m5.large", "97", "rules[2]"},
		{"longer prefix beats shorter", acctB, "AmazonRDS", "AmazonRDS", "USE1-BoxUsage:r5.xlarge", "96", "rules[3]"},
		{"service code beats product code", acctB, "AmazonEC2", "AWSDataTransfer", "EU-DataTransfer-Regional-Bytes", "90", "rules[9]"},
		{"service through product code", acctB, "AmazonEC2", "", "EU-Whatever", "98", "rules[1]"},
		{"service beats account", acctA, "AmazonS3", "AWSDataTransfer", "EU-DataTransfer-Out-Bytes", "90", "rules[9]"},
		{"account alone", acctA, "AmazonS3", "AmazonS3", "EU-TimedStorage", "99", "rules[0]"},
		{"global when nothing matches", acctB, "AmazonS3", "AmazonS3", "EU-TimedStorage", "101", "global_percent"},
		{"prefix is case-sensitive", acctB, "AmazonS3", "AmazonS3", "use1-TimedStorage", "101", "global_percent"},
	}
	pr, err := NewPricer(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		item := LineItem{AccountID: c.account, LineItemType: "Usage", ProductCode: c.product, ServiceCode: c.service, UsageType: c.usag, UnblendedCost: amt("100")}
		got, ref := Resale(p, item)
		if got.String() != c.want || ref != c.ref {
			t.Errorf("%s: Resale = %s by %s, want %s by %s", c.name, got, ref, c.want, c.ref)
		}
		// The order of the rules does not matter.
		rev := p
		rev.Rules = nil
		for i := len(p.Rules) - 1; i >= 0; i-- {
			rev.Rules = append(rev.Rules, p.Rules[i])
		}
		got2, ref2 := Resale(rev, item)
		wantRef := ref
		if i, ok := ref.Rule(); ok {
			wantRef = RuleRefOf(len(p.Rules) - 1 - i)
		}
		if got2 != got || ref2 != wantRef {
			t.Errorf("%s, rules reversed: Resale = %s by %s, want %s by %s", c.name, got2, ref2, got, wantRef)
		}
		if g, r := pr.Resale(item); g != got || r != ref {
			t.Errorf("%s: Pricer.Resale = %s by %s, Resale = %s by %s", c.name, g, r, got, ref)
		}
	}
}

func TestResaleFlags(t *testing.T) {
	base := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "10", Rules: []Rule{{Service: "AmazonS3", Percent: "-20"}}}
	item := func(typ, cost string) LineItem {
		return LineItem{AccountID: acctA, LineItemType: typ, ProductCode: "AmazonS3", UsageType: "USE1-TimedStorage", UnblendedCost: amt(cost)}
	}
	cases := []struct {
		name string
		flag func(*Pricebook)
		item LineItem
		want string
		ref  RuleRef
	}{
		{"tax at cost by default", nil, item("Tax", "8.25"), "8.25", RefAtCost},
		{"credit at cost by default", nil, item("Credit", "-30"), "-30", RefAtCost},
		{"refund at cost by default", nil, item("Refund", "-12.5"), "-12.5", RefAtCost},
		{"tax marked up", func(p *Pricebook) { p.MarkupTax = true }, item("Tax", "8.25"), "6.6", "rules[0]"},
		{"credit marked up", func(p *Pricebook) { p.MarkupCredits = true }, item("Credit", "-30"), "-24", "rules[0]"},
		{"refund marked up", func(p *Pricebook) { p.MarkupRefunds = true }, item("Refund", "-12.5"), "-10", "rules[0]"},
		{"tax flag leaves credits at cost", func(p *Pricebook) { p.MarkupTax = true }, item("Credit", "-30"), "-30", RefAtCost},
		{"credit flag leaves refunds at cost", func(p *Pricebook) { p.MarkupCredits = true }, item("Refund", "-12.5"), "-12.5", RefAtCost},
		{"refund flag leaves tax at cost", func(p *Pricebook) { p.MarkupRefunds = true }, item("Tax", "8.25"), "8.25", RefAtCost},
		{"marked-up tax with no rule takes global", func(p *Pricebook) { p.MarkupTax = true; p.Rules = nil }, item("Tax", "8.25"), "9.075", RefGlobal},
		{"line item type is case-sensitive, as AWS writes it", nil, item("tax", "10"), "8", "rules[0]"},
		{"usage always priced", nil, item("Usage", "10"), "8", "rules[0]"},
	}
	for _, c := range cases {
		p := base
		p.Rules = append([]Rule(nil), base.Rules...)
		if c.flag != nil {
			c.flag(&p)
		}
		got, ref := Resale(p, c.item)
		if got.String() != c.want || ref != c.ref {
			t.Errorf("%s: Resale = %s by %s, want %s by %s", c.name, got, ref, c.want, c.ref)
		}
	}
}

func TestResaleAmounts(t *testing.T) {
	cases := []struct {
		name, typ, cost, percent, want string
	}{
		{"zero cost", "Usage", "0", "25", "0"},
		{"zero cost discount", "Usage", "0", "-100", "0"},
		{"free", "Usage", "123.45", "-100", "0"},
		{"eleven times", "Usage", "123.45", "1000", "1357.95"},
		{"no rounding to cents", "Usage", "0.0000001", "10", "0.00000011"},
		{"tiny discount kept exactly", "Usage", "1", "-0.000001", "0.99999999"},
		{"AWS precision stays exact", "Usage", "0.0123456789", "-3.125", "0.011959876434375"},
		{"negative: savings plan negation", "SavingsPlanNegation", "-0.096", "-10", "-0.0864"},
		{"negative: discount", "EdpDiscount", "-5", "20", "-6"},
		{"negative: bundled discount", "BundledDiscount", "-0.5", "-50", "-0.25"},
		// Products beyond 18 decimal places round half-even at the 18th.
		{"half at 18th rounds to even (up)", "Usage", "0.000000000000000005", "10", "0.000000000000000006"},
		{"half at 18th rounds to even (down)", "Usage", "0.000000000000000015", "10", "0.000000000000000016"},
		{"half at 18th rounds to even (stays)", "Usage", "0.000000000000000025", "10", "0.000000000000000028"},
		{"below half rounds down", "Usage", "0.000000000000000001", "-50", "0"},
		{"half rounds to even 2", "Usage", "0.000000000000000003", "-50", "0.000000000000000002"},
		{"negative half rounds to even", "Usage", "-0.000000000000000005", "10", "-0.000000000000000006"},
		{"negative half down", "Usage", "-0.000000000000000001", "-50", "0"},
		{"largest", "Usage", "9000000000000000000", "1000", "99000000000000000000"},
	}
	for _, c := range cases {
		// Discounts passed through are priced like usage.
		p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: c.percent, PassThrough: WithheldTypes}
		got, ref := Resale(p, LineItem{LineItemType: c.typ, ProductCode: "AmazonEC2", UnblendedCost: amt(c.cost)})
		if got.String() != c.want || ref != RefGlobal {
			t.Errorf("%s: Resale(%s at %s%%) = %s by %s, want %s by global_percent", c.name, c.cost, c.percent, got, ref, c.want)
		}
	}
}

func TestSavingsPlanNegationCancels(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "7", Rules: []Rule{{Service: "AmazonEC2", Percent: "-13.37"}}}
	covered := LineItem{AccountID: acctA, LineItemType: "SavingsPlanCoveredUsage", ProductCode: "AmazonEC2", ServiceCode: "AmazonEC2", UsageType: "USE1-BoxUsage:m5.large", UnblendedCost: amt("0.0960000000")}
	negation := covered
	negation.LineItemType, negation.UnblendedCost = "SavingsPlanNegation", amt("-0.0960000000")
	a, ra := Resale(p, covered)
	b, rb := Resale(p, negation)
	if s := a.Add(b); !s.IsZero() || ra != rb {
		t.Errorf("covered %s by %s + negation %s by %s = %s, want 0 by one rule", a, ra, b, rb, s)
	}
}

func TestResalePanicsOnInvalid(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "global_percent") {
			t.Errorf("recover() = %v, want a panic naming global_percent", r)
		}
	}()
	Resale(Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "x"}, LineItem{})
}

func TestRuleRef(t *testing.T) {
	for ref, want := range map[RuleRef]int{"rules[0]": 0, "rules[12]": 12} {
		if i, ok := ref.Rule(); !ok || i != want {
			t.Errorf("%s.Rule() = %d, %v", ref, i, ok)
		}
		if RuleRefOf(want) != ref {
			t.Errorf("RuleRefOf(%d) = %s", want, RuleRefOf(want))
		}
	}
	for _, ref := range []RuleRef{RefGlobal, RefAtCost, "rules[", "rules[-1]", "rules[x]"} {
		if _, ok := ref.Rule(); ok {
			t.Errorf("%s.Rule() ok", ref)
		}
	}
}

func TestClassOf(t *testing.T) {
	for _, c := range []struct {
		typ, product string
		want         Class
	}{
		{"Usage", "AmazonEC2", ClassUsage},
		{"SavingsPlanNegation", "AmazonEC2", ClassUsage},
		{"Fee", "AWSSupportBusiness", ClassAWSSupport},
		{"Fee", "AWSSupportEnterprise", ClassAWSSupport},
		{"Usage", "AWSDeveloperSupport", ClassAWSSupport},
		{"Credit", "AWSSupportBusiness", ClassCredit},
		{"Tax", "AmazonS3", ClassTax},
		{"Refund", "AmazonS3", ClassRefund},
	} {
		if got := ClassOf(LineItem{LineItemType: c.typ, ProductCode: c.product}); got != c.want {
			t.Errorf("ClassOf(%s, %s) = %s, want %s", c.typ, c.product, got, c.want)
		}
	}
}

// randomCost returns a cost of up to 12 integer digits and up to places
// fractional digits, of either sign, or zero now and then.
func randomCost(r *rand.Rand, places int) string {
	if r.IntN(20) == 0 {
		return "0"
	}
	var b strings.Builder
	if r.IntN(4) == 0 {
		b.WriteByte('-')
	}
	fmt.Fprintf(&b, "%d", r.Int64N(1_000_000_000_000)>>r.IntN(40))
	if n := r.IntN(places + 1); n > 0 {
		b.WriteByte('.')
		for range n {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
	}
	return b.String()
}

var itemTypes = []string{"Usage", "Tax", "Credit", "Refund", "SavingsPlanNegation", "SavingsPlanCoveredUsage", "DiscountedUsage", "RIFee", "Fee", "BundledDiscount"}

func randomItem(r *rand.Rand, places int) LineItem {
	services := []string{"AmazonEC2", "AmazonS3", "AWSDataTransfer", "AWSSupportBusiness", ""}
	accounts := []string{acctA, acctB, "333333333333"}
	usages := []string{"USE1-BoxUsage:m5.large", "USE1-DataTransfer-Out-Bytes", "EU-TimedStorage-ByteHrs", ""}
	return LineItem{
		AccountID:     accounts[r.IntN(len(accounts))],
		LineItemType:  itemTypes[r.IntN(len(itemTypes))],
		ProductCode:   services[r.IntN(len(services))],
		ServiceCode:   services[r.IntN(len(services))],
		UsageType:     usages[r.IntN(len(usages))],
		UnblendedCost: amt(randomCost(r, places)),
	}
}

// A 0% pricebook, with rules and every flag, prices everything at cost,
// exactly.
func TestZeroPercentIsCost(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "0", MarkupTax: true, MarkupCredits: true, MarkupRefunds: true, PassThrough: WithheldTypes,
		Rules: []Rule{{Service: "AmazonEC2", Percent: "0"}, {Account: acctA, Percent: "-0.000000"}, {UsageType: "USE1-*", Percent: "+0"}}}
	pr, err := NewPricer(p)
	if err != nil {
		t.Fatal(err)
	}
	for range 20000 {
		item := randomItem(r, 18)
		got, _ := pr.Resale(item)
		if got != item.UnblendedCost || got.String() != item.UnblendedCost.String() {
			t.Fatalf("Resale(%+v) = %s, want the cost %s", item, got, item.UnblendedCost)
		}
	}
}

// Resale agrees with an independent decimal library: exactly for costs
// as AWS writes them (≤ 10 places) and percents of ≤ 6 places, and with
// half-even rounding at the 18th place for any cost.
func TestResaleMatchesShopspring(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		places := 10
		if i%2 == 1 {
			places = 18
		}
		pct := randomCost(r, PercentPlaces)
		if d := decimal.RequireFromString(pct); d.LessThan(decimal.NewFromInt(MinPercent)) || d.GreaterThan(decimal.NewFromInt(MaxPercent)) {
			pct = d.Mod(decimal.NewFromInt(100)).String()
		}
		p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: pct}
		item := randomItem(r, places)
		item.LineItemType = "Usage"
		got, _ := Resale(p, item)
		cost := decimal.RequireFromString(item.UnblendedCost.String())
		exact := cost.Mul(decimal.NewFromInt(1).Add(decimal.RequireFromString(pct).Shift(-2)))
		want := exact.RoundBank(18)
		if places == 10 && !exact.Equal(want) {
			t.Fatalf("%s × (1 + %s%%) = %s needs rounding", cost, pct, exact)
		}
		if !decimal.RequireFromString(got.String()).Equal(want) {
			t.Fatalf("Resale(%s at %s%%) = %s, shopspring says %s", cost, pct, got, want)
		}
	}
}
