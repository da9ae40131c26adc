package pricing

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/costlake/costlake/internal/money"
)

func business() *SupportPlan {
	return &SupportPlan{Name: "Business", MinimumFee: "100", Tiers: []SupportTier{
		{From: "0", Percent: "10"}, {From: "10000", Percent: "7"}, {From: "80000", Percent: "5"}, {From: "250000", Percent: "3"},
	}}
}

func enterprise() *SupportPlan {
	return &SupportPlan{Name: "Enterprise", MinimumFee: "15000", Tiers: []SupportTier{
		{From: "0", Percent: "10"}, {From: "150000", Percent: "7"}, {From: "500000", Percent: "5"}, {From: "1000000", Percent: "3"},
	}}
}

func TestSupportFeeTiers(t *testing.T) {
	cases := []struct {
		plan       *SupportPlan
		base, want string
	}{
		{business(), "0", "100"},                  // minimum with no usage
		{business(), "-500", "100"},               // negative base counts as 0
		{business(), "999.99", "100"},             // 99.999 < minimum
		{business(), "1000", "100"},               // tiered equals minimum
		{business(), "1000.01", "100.001"},        // just above: the percent, not rounded to cents
		{business(), "9999.99", "999.999"},        // just below the first boundary
		{business(), "10000", "1000"},             // at the boundary: all at 10%
		{business(), "10000.01", "1000.0007"},     // one cent into the 7% band
		{business(), "80000", "5900"},             // 1000 + 70000 × 7%
		{business(), "80000.01", "5900.0005"},     // into the 5% band
		{business(), "85000", "6150"},             // AWS's published example
		{business(), "250000", "14400"},           // 5900 + 170000 × 5%
		{business(), "250000.01", "14400.0003"},   // into the 3% band
		{business(), "1200000", "42900"},          // 14400 + 950000 × 3%
		{enterprise(), "1200000", "70500"},        // AWS's published example
		{enterprise(), "149999.99", "15000"},      // minimum 15000 beats 14999.999
		{enterprise(), "150000.01", "15000.0007"}, // above the minimum
		{&SupportPlan{MinimumFee: "250"}, "1000000", "250"},
		{&SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "3"}}}, "0", "0"},
		{&SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "3"}}}, "0.000000000000000001", "0"},  // 3e-20 rounds to 0
		{&SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "50"}}}, "0.000000000000000001", "0"}, // half: to even 0
		{&SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "50"}}}, "0.000000000000000003", "0.000000000000000002"},
		{&SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "3.333333"}}}, "100", "3.333333"},
		{&SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "0"}, {From: "0.5", Percent: "100"}}}, "2.25", "1.75"},
	}
	for _, c := range cases {
		p := Pricebook{EffectiveFrom: "2025-01", Support: c.plan}
		if got := SupportFee(p, amt(c.base)); got.String() != c.want {
			t.Errorf("%s on %s = %s, want %s", c.plan.Name, c.base, got, c.want)
		}
	}
	if got := SupportFee(Pricebook{EffectiveFrom: "2025-01"}, amt("1000")); !got.IsZero() {
		t.Errorf("SupportFee without a plan = %s", got)
	}
}

// totalsOf prices items with p.
func totalsOf(t *testing.T, p Pricebook, items ...LineItem) Totals {
	t.Helper()
	pr, err := NewPricer(p)
	if err != nil {
		t.Fatal(err)
	}
	var tot Totals
	for _, it := range items {
		pr.Add(&tot, it)
	}
	return tot
}

func usage(product, cost string) LineItem {
	return LineItem{AccountID: acctA, LineItemType: "Usage", ProductCode: product, ServiceCode: product, UsageType: "USE1-X", UnblendedCost: amt(cost)}
}

func typed(typ, cost string) LineItem {
	it := usage("AmazonEC2", cost)
	it.LineItemType = typ
	return it
}

type line struct{ kind, desc, cost, amount string }

func linesOf(b Bill) []line {
	var out []line
	for _, l := range b.Lines {
		out = append(out, line{string(l.Kind), l.Description, l.Cost.String(), l.Amount.String()})
	}
	return out
}

func TestInvoice(t *testing.T) {
	p := Pricebook{
		CustomerID: "acme", Version: 3, EffectiveFrom: "2025-01", GlobalPercent: "10",
		Rules:   []Rule{{Service: "AmazonEC2", Percent: "-5"}, {Service: "AWSSupportBusiness", Percent: "-100"}},
		Support: business(),
		Credits: []Credit{
			{Description: "welcome", Amount: "250", Period: "2025-03"},
			{Description: "partner", Amount: "20.005", Recurring: true, Period: "2025-02", Until: "2025-03"},
			{Description: "old", Amount: "1", Period: "2025-01"},
		},
	}
	items := []LineItem{
		usage("AmazonEC2", "8000"),           // 7600
		usage("AmazonS3", "3000.0000000001"), // 3300.00000000011
		typed("SavingsPlanNegation", "-500"), // -475
		usage("AWSSupportBusiness", "1100"),  // 0, own line
		typed("Credit", "-100"),              // at cost
		typed("Refund", "-0.5"),              // at cost
		typed("Tax", "123.456"),              // at cost
	}
	b, err := Invoice(p, "2025-03", totalsOf(t, p, items...))
	if err != nil {
		t.Fatal(err)
	}
	// usage resale 10425.00000000011: 1000 + 425.00000000011 × 7% = 1029.7500000000077
	want := []line{
		{"usage", "AWS usage", "10500.0000000001", "10425.00000000011"},
		{"aws_support", "AWS support (as billed by AWS)", "1100", "0"},
		{"aws_credits", "AWS credits", "-100", "-100"},
		{"aws_refunds", "AWS refunds", "-0.5", "-0.5"},
		{"support_fee", "Support plan Business: 10% of 10000 + 7% of 425.00000000011", "0", "1029.7500000000077"},
		{"credit", "welcome", "0", "-250"},
		{"credit", "partner", "0", "-20.005"},
		{"tax", "Tax", "123.456", "123.456"},
	}
	if got := linesOf(b); !reflect.DeepEqual(got, want) {
		t.Errorf("lines:\n got %q\nwant %q", got, want)
	}
	if b.Total.String() != "11207.7010000001177" || b.Due.String() != "11207.7" || b.Cost.String() != "11622.9560000001" {
		t.Errorf("total %s, due %s, cost %s", b.Total, b.Due, b.Cost)
	}
	if b.CustomerID != "acme" || b.Period != "2025-03" || b.PricebookVersion != 3 || !b.UnusedCredit.IsZero() {
		t.Errorf("bill header %+v", b)
	}
	if b.Lines[4].Base.String() != "10425.00000000011" {
		t.Errorf("support base %s", b.Lines[4].Base)
	}
	assertTotalIsSumOfLines(t, b)

	// Another period: the one-off credits don't apply, the recurring one has ended.
	b, err = Invoice(p, "2025-04", totalsOf(t, p, items...))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range b.Lines {
		if l.Kind == LineCredit {
			t.Errorf("2025-04 has credit %q", l.Description)
		}
	}
}

func assertTotalIsSumOfLines(t *testing.T, b Bill) {
	t.Helper()
	sum := decimal.Zero
	for _, l := range b.Lines {
		sum = sum.Add(decimal.RequireFromString(l.Amount.String()))
	}
	if !sum.Equal(decimal.RequireFromString(b.Total.String())) {
		t.Errorf("total %s ≠ sum of lines %s", b.Total, sum)
	}
	if !sum.RoundBank(2).Equal(decimal.RequireFromString(b.Due.String())) {
		t.Errorf("due %s ≠ sum of lines %s rounded half-even", b.Due, sum)
	}
}

func TestInvoiceMinimumWithoutUsage(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-01", Support: business()}
	b, err := Invoice(p, "2025-01", Totals{})
	if err != nil {
		t.Fatal(err)
	}
	want := []line{
		{"usage", "AWS usage", "0", "0"},
		{"support_fee", "Support plan Business: minimum fee 100", "0", "100"},
	}
	if got := linesOf(b); !reflect.DeepEqual(got, want) || b.Due.String() != "100" {
		t.Errorf("lines %q due %s, want %q due 100", got, b.Due, want)
	}
	b, _ = Invoice(p, "2025-01", totalsOf(t, p, usage("AmazonEC2", "420")))
	if got := b.Lines[1].Description; got != "Support plan Business: minimum fee 100 (tiered 42)" {
		t.Errorf("description %q", got)
	}
}

func TestInvoiceCreditsNeverBelowZero(t *testing.T) {
	cases := []struct {
		name    string
		items   []LineItem
		credits []string
		applied []string // amount of each credit line
		unused  string
		total   string
	}{
		{"credit below spend", []LineItem{usage("AmazonEC2", "30")}, []string{"20"}, []string{"-20"}, "0", "10"},
		{"credit equal to spend", []LineItem{usage("AmazonEC2", "30")}, []string{"30"}, []string{"-30"}, "0", "0"},
		{"credit larger than spend", []LineItem{usage("AmazonEC2", "30")}, []string{"50"}, []string{"-30"}, "20", "0"},
		{"second credit takes the rest", []LineItem{usage("AmazonEC2", "30")}, []string{"20", "50"}, []string{"-20", "-10"}, "40", "0"},
		{"third gets nothing", []LineItem{usage("AmazonEC2", "30")}, []string{"30", "5", "7"}, []string{"-30", "0", "0"}, "12", "0"},
		{"tax is paid anyway", []LineItem{usage("AmazonEC2", "30"), typed("Tax", "2.7")}, []string{"50"}, []string{"-30"}, "20", "2.7"},
		{"no spend", nil, []string{"50"}, []string{"0"}, "50", "0"},
		{"AWS refunds may go negative, credits don't", []LineItem{usage("AmazonEC2", "10"), typed("Refund", "-25")}, []string{"5"}, []string{"0"}, "5", "-15"},
		{"AWS credits count before", []LineItem{usage("AmazonEC2", "10"), typed("Credit", "-8")}, []string{"5"}, []string{"-2"}, "3", "0"},
		{"negative usage", []LineItem{typed("SavingsPlanNegation", "-3")}, []string{"1"}, []string{"0"}, "1", "-3"},
	}
	for _, c := range cases {
		p := Pricebook{EffectiveFrom: "2025-01"}
		for _, a := range c.credits {
			p.Credits = append(p.Credits, Credit{Description: "c" + a, Amount: a, Recurring: true})
		}
		b, err := Invoice(p, "2025-06", totalsOf(t, p, c.items...))
		if err != nil {
			t.Fatal(err)
		}
		var applied []string
		unused := money.Amount{}
		for _, l := range b.Lines {
			if l.Kind == LineCredit {
				applied = append(applied, l.Amount.String())
				unused = unused.Add(l.Unused)
			}
		}
		if !reflect.DeepEqual(applied, c.applied) || b.UnusedCredit.String() != c.unused || unused != b.UnusedCredit || b.Total.String() != c.total {
			t.Errorf("%s: credits %q unused %s (lines %s) total %s, want %q unused %s total %s",
				c.name, applied, b.UnusedCredit, unused, b.Total, c.applied, c.unused, c.total)
		}
		assertTotalIsSumOfLines(t, b)
	}
}

func TestInvoiceErrors(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-03"}
	if _, err := Invoice(p, "2025-02", Totals{}); !errors.Is(err, ErrNotInForce) {
		t.Errorf("before effective_from: %v", err)
	}
	for _, bad := range []string{"", "2025-3", "2025-00", "March"} {
		if _, err := Invoice(p, bad, Totals{}); !errors.Is(err, ErrPeriod) {
			t.Errorf("period %q: %v", bad, err)
		}
	}
	if _, err := Invoice(Pricebook{EffectiveFrom: "2025-03", GlobalPercent: "-200"}, "2025-03", Totals{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid pricebook: %v", err)
	}
	if _, err := Invoice(p, "2025-03", Totals{}); err != nil {
		t.Errorf("in force: %v", err)
	}
}

func TestDueRoundsHalfEvenOnce(t *testing.T) {
	cases := []struct{ total, due string }{
		{"0.125", "0.12"}, {"0.135", "0.14"}, {"0.125000000000000001", "0.13"}, {"0.124999999999999999", "0.12"},
		{"-0.125", "-0.12"}, {"-0.135", "-0.14"}, {"2.5", "2.5"}, {"0.005", "0"}, {"0.015", "0.02"},
		{"-0.005", "0"}, {"99999999999.995", "100000000000"}, {"0", "0"},
	}
	for _, c := range cases {
		p := Pricebook{EffectiveFrom: "2025-01"}
		b, err := Invoice(p, "2025-01", totalsOf(t, p, usage("AmazonEC2", c.total)))
		if err != nil {
			t.Fatal(err)
		}
		if b.Total.String() != c.total || b.Due.String() != c.due || RoundCents(amt(c.total)).String() != c.due {
			t.Errorf("total %s: due %s, want %s", b.Total, b.Due, c.due)
		}
	}
	// Lines are never rounded: three lines of 0.004 are 0.012, due 0.01
	// (rounding each to cents first would give 0).
	p := Pricebook{EffectiveFrom: "2025-01"}
	b, _ := Invoice(p, "2025-01", totalsOf(t, p, usage("A", "0.004"), usage("B", "0.004"), usage("C", "0.004")))
	if b.Total.String() != "0.012" || b.Due.String() != "0.01" {
		t.Errorf("total %s due %s, want 0.012 and 0.01", b.Total, b.Due)
	}
}

// Many customers' invoices: each Total is the exact sum of its lines; the
// sum of the usage lines equals the sum of every line item's resale, to
// the last digit, however the line items are split into chunks.
func TestInvoicesSumToLines(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	customers := map[string]Pricebook{
		acctA: {EffectiveFrom: "2025-01", GlobalPercent: "3.75", Rules: []Rule{{Service: "AmazonEC2", Percent: "-7.123456"}, {UsageType: "USE1-*", Percent: "12"}}},
		acctB: {EffectiveFrom: "2025-01", GlobalPercent: "-2.5", MarkupTax: true, MarkupCredits: true, MarkupRefunds: true},
		"333333333333": {EffectiveFrom: "2025-01", Support: business(),
			Credits: []Credit{{Description: "c", Amount: "1000", Recurring: true}}},
	}
	pricers := map[string]*Pricer{}
	for acct, p := range customers {
		pricers[acct], _ = NewPricer(p)
	}
	whole := map[string]*Totals{}
	chunks := map[string][]Totals{}
	resaleSum := map[string]decimal.Decimal{}
	allResale := decimal.Zero
	for acct := range customers {
		whole[acct] = &Totals{}
		chunks[acct] = make([]Totals, 4)
		resaleSum[acct] = decimal.Zero
	}
	for i := range 30000 {
		it := randomItem(r, 18)
		pr := pricers[it.AccountID]
		resale, ref := pr.Add(whole[it.AccountID], it)
		chunks[it.AccountID][i%4].Add(it, resale, ref)
		d := decimal.RequireFromString(resale.String())
		resaleSum[it.AccountID] = resaleSum[it.AccountID].Add(d)
		allResale = allResale.Add(d)
	}
	billed := decimal.Zero
	for acct, p := range customers {
		var merged Totals
		for _, i := range []int{3, 1, 0, 2} {
			merged.Merge(chunks[acct][i])
		}
		mj, _ := json.Marshal(merged)
		wj, _ := json.Marshal(*whole[acct])
		if string(mj) != string(wj) {
			t.Errorf("%s: merged chunks\n%s\n≠ whole\n%s", acct, mj, wj)
		}
		b, err := Invoice(p, "2025-05", merged)
		if err != nil {
			t.Fatal(err)
		}
		assertTotalIsSumOfLines(t, b)
		items := decimal.Zero
		for _, l := range b.Lines {
			switch l.Kind {
			case LineUsage, LineAWSSupport, LineAWSCredits, LineAWSRefunds, LineTax:
				items = items.Add(decimal.RequireFromString(l.Amount.String()))
			}
		}
		if !items.Equal(resaleSum[acct]) || merged.All().Resale.String() != resaleSum[acct].String() {
			t.Errorf("%s: line item lines sum to %s, resale of the line items is %s", acct, items, resaleSum[acct])
		}
		billed = billed.Add(items)
	}
	if !billed.Equal(allResale) {
		t.Errorf("all invoices' line items %s ≠ all resale %s", billed, allResale)
	}
}

func TestTotalsAndBillJSON(t *testing.T) {
	p := Pricebook{EffectiveFrom: "2025-01", GlobalPercent: "10", Rules: []Rule{{Service: "AmazonEC2", Percent: "-5"}}, Support: business()}
	tot := totalsOf(t, p, usage("AmazonEC2", "0.1"), usage("AmazonS3", "0.2"), typed("Tax", "0.03"))
	body, err := json.Marshal(tot)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"usage":{"lines":2,"cost":"0.3","resale":"0.315"}`, `"by_rule":{`, `"rules[0]":{"lines":1,"cost":"0.1","resale":"0.095"}`, `"at_cost":`} {
		if !strings.Contains(string(body), s) {
			t.Errorf("totals JSON %s lacks %s", body, s)
		}
	}
	var back Totals
	if err := json.Unmarshal(body, &back); err != nil || !reflect.DeepEqual(back, tot) {
		t.Errorf("totals round trip: %v\n got %+v\nwant %+v", err, back, tot)
	}
	b, _ := Invoice(p, "2025-01", tot)
	bj, _ := json.Marshal(b)
	for _, s := range []string{`"total":"100.345"`, `"due":"100.34"`, `"base":"0.315"`, `"kind":"support_fee"`, `"line_items":2`} {
		if !strings.Contains(string(bj), s) {
			t.Errorf("bill JSON %s lacks %s", bj, s)
		}
	}
	if strings.Contains(string(bj), `"unused"`) {
		t.Errorf("bill JSON %s has an unused credit", bj)
	}
}
