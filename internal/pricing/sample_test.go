package pricing

import (
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/costlake/costlake/internal/money"
)

// sharedData finds shared/data/rel above the checkout (or under
// $COSTLAKE_SHARED_DATA), or "".
func sharedData(rel string) string {
	if d := os.Getenv("COSTLAKE_SHARED_DATA"); d != "" {
		return filepath.Join(d, rel)
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "data", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// TestSampleReconciles prices AWS's anonymized legacy CUR sample and
// reconciles with sums computed from the file by an independent decimal
// library.
func TestSampleReconciles(t *testing.T) {
	path := sharedData(filepath.Join("aws-legacy-cur-sample", "sample-anonymous-aws-export-dataset.csv"))
	if path == "" {
		t.Skip("shared/data/aws-legacy-cur-sample not found; set COSTLAKE_SHARED_DATA")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	need := []string{"lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/ProductCode", "product/servicecode", "lineItem/UsageType", "lineItem/UnblendedCost"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			t.Fatalf("sample lacks %s", n)
		}
	}

	atCost := Pricebook{EffectiveFrom: "2023-11"}
	discounted := Pricebook{EffectiveFrom: "2023-11", GlobalPercent: "-3.5", Support: &SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "10"}}}}
	pc, _ := NewPricer(atCost)
	pd, _ := NewPricer(discounted)
	var tc, td Totals
	costByType := map[string]decimal.Decimal{}
	linesByType := map[string]int64{}
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		cost, err := money.Parse(row[col["lineItem/UnblendedCost"]])
		if err != nil {
			t.Fatal(err)
		}
		it := LineItem{
			AccountID: row[col["lineItem/UsageAccountId"]], LineItemType: row[col["lineItem/LineItemType"]],
			ProductCode: row[col["lineItem/ProductCode"]], ServiceCode: row[col["product/servicecode"]],
			UsageType: row[col["lineItem/UsageType"]], UnblendedCost: cost,
		}
		pc.Add(&tc, it)
		pd.Add(&td, it)
		typ := row[col["lineItem/LineItemType"]]
		costByType[typ] = costByType[typ].Add(decimal.RequireFromString(row[col["lineItem/UnblendedCost"]]))
		linesByType[typ]++
	}
	if len(linesByType) == 0 {
		t.Fatal("sample has no rows")
	}

	all, usageCost, taxCost := decimal.Zero, decimal.Zero, decimal.Zero
	var lines int64
	for typ, c := range costByType {
		all = all.Add(c)
		lines += linesByType[typ]
		if typ == TypeTax {
			taxCost = taxCost.Add(c)
		} else {
			usageCost = usageCost.Add(c)
		}
	}
	dec := func(a money.Amount) decimal.Decimal { return decimal.RequireFromString(a.String()) }

	// At cost: resale is cost, to the last digit.
	if s := tc.All(); s.Lines != lines || !dec(s.Cost).Equal(all) || !dec(s.Resale).Equal(all) {
		t.Errorf("at cost: %d lines, cost %s, resale %s; file: %d lines, %s", s.Lines, s.Cost, s.Resale, lines, all)
	}
	if tc.Tax.Lines != linesByType[TypeTax] || !dec(tc.Tax.Resale).Equal(taxCost) {
		t.Errorf("tax %d lines %s, file %d lines %s", tc.Tax.Lines, tc.Tax.Resale, linesByType[TypeTax], taxCost)
	}

	// -3.5%: usage resale is exactly 0.965 × usage cost (no line rounds),
	// tax stays at cost.
	wantUsage := usageCost.Mul(decimal.RequireFromString("0.965"))
	if !dec(td.Usage.Resale).Equal(wantUsage) || !dec(td.Usage.Cost).Equal(usageCost) || !dec(td.Tax.Resale).Equal(taxCost) {
		t.Errorf("discounted usage %s (cost %s), tax %s; want %s, %s, %s", td.Usage.Resale, td.Usage.Cost, td.Tax.Resale, wantUsage, usageCost, taxCost)
	}
	b, err := Invoice(discounted, "2023-11", td)
	if err != nil {
		t.Fatal(err)
	}
	wantTotal := wantUsage.Mul(decimal.RequireFromString("1.1")).Add(taxCost)
	if !dec(b.Total).Equal(wantTotal) || !dec(b.Due).Equal(wantTotal.RoundBank(2)) {
		t.Errorf("bill total %s due %s, want %s due %s", b.Total, b.Due, wantTotal, wantTotal.RoundBank(2))
	}
	assertTotalIsSumOfLines(t, b)
	t.Logf("sample: %d lines, cost %s; at -3.5%% with 10%% support: total %s, due %s", lines, all, b.Total, b.Due)
}
