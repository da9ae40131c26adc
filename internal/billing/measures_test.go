package billing

import (
	"errors"
	"strings"
	"testing"

	"github.com/costlake/costlake/internal/money"
)

// measureCase is one row (CUR 2.0 names → text) and its three measures.
type measureCase struct {
	name                             string
	row                              map[string]string
	amortized, netUnblended, netAmor string
}

var measureCases = []measureCase{
	{"usage", map[string]string{ColLineItemType: "Usage", ColUnblendedCost: "1.25"}, "1.25", "1.25", "1.25"},
	{"usage with a discount", map[string]string{ColLineItemType: "Usage", ColUnblendedCost: "1.25", "line_item_net_unblended_cost": "1.1"}, "1.25", "1.1", "1.1"},
	{"usage, null cost", map[string]string{ColLineItemType: "Usage"}, "", "", ""},
	{"tax", map[string]string{ColLineItemType: "Tax", ColUnblendedCost: "0.5"}, "0.5", "0.5", "0.5"},
	{"credit", map[string]string{ColLineItemType: "Credit", ColUnblendedCost: "-3", "line_item_net_unblended_cost": "-3"}, "-3", "-3", "-3"},
	{"SP covered usage", map[string]string{ColLineItemType: "SavingsPlanCoveredUsage", ColUnblendedCost: "0.096",
		"savings_plan_savings_plan_effective_cost": "0.0605", "savings_plan_net_savings_plan_effective_cost": "0.0575"}, "0.0605", "0.096", "0.0575"},
	{"SP covered usage, no net columns", map[string]string{ColLineItemType: "SavingsPlanCoveredUsage", ColUnblendedCost: "0.096",
		"savings_plan_savings_plan_effective_cost": "0.0605"}, "0.0605", "0.096", "0.0605"},
	{"SP negation", map[string]string{ColLineItemType: "SavingsPlanNegation", ColUnblendedCost: "-0.096", "line_item_net_unblended_cost": "-0.0912"}, "0", "-0.0912", "0"},
	{"SP recurring fee, partly used", map[string]string{ColLineItemType: "SavingsPlanRecurringFee", ColUnblendedCost: "0.5",
		"savings_plan_total_commitment_to_date": "0.5", "savings_plan_used_commitment": "0.4395"}, "0.0605", "0.5", "0.0605"},
	{"SP recurring fee, all used", map[string]string{ColLineItemType: "SavingsPlanRecurringFee", ColUnblendedCost: "0.5",
		"savings_plan_total_commitment_to_date": "0.5", "savings_plan_used_commitment": "0.5"}, "0", "0.5", "0"},
	{"SP recurring fee, nothing used", map[string]string{ColLineItemType: "SavingsPlanRecurringFee", ColUnblendedCost: "0.5",
		"savings_plan_total_commitment_to_date": "0.5", "savings_plan_used_commitment": "0"}, "0.5", "0.5", "0.5"},
	{"SP recurring fee, used null", map[string]string{ColLineItemType: "SavingsPlanRecurringFee", ColUnblendedCost: "0.5",
		"savings_plan_total_commitment_to_date": "5.0E-1"}, "5.0E-1", "0.5", "5.0E-1"},
	{"SP recurring fee, no commitment columns", map[string]string{ColLineItemType: "SavingsPlanRecurringFee", ColUnblendedCost: "0.5"}, "", "0.5", ""},
	{"SP upfront fee", map[string]string{ColLineItemType: "SavingsPlanUpfrontFee", ColUnblendedCost: "8760"}, "0", "8760", "0"},
	{"RI usage", map[string]string{ColLineItemType: "DiscountedUsage", ColUnblendedCost: "0",
		"reservation_effective_cost": "0.0621", "reservation_net_effective_cost": "0.059"}, "0.0621", "0", "0.059"},
	{"RI fee", map[string]string{ColLineItemType: "RIFee", ColUnblendedCost: "21.6",
		"reservation_unused_amortized_upfront_fee_for_billing_period": "1.000000000000000001", "reservation_unused_recurring_fee": "2.16",
		"reservation_net_unused_recurring_fee": "2.052"}, "3.160000000000000001", "21.6", "3.052000000000000001"},
	{"RI fee, all used", map[string]string{ColLineItemType: "RIFee", ColUnblendedCost: "21.6",
		"reservation_unused_amortized_upfront_fee_for_billing_period": "0", "reservation_unused_recurring_fee": "0"}, "0", "21.6", "0"},
	{"RI upfront fee", map[string]string{ColLineItemType: "Fee", ColUnblendedCost: "1000",
		"reservation_reservation_a_r_n": "arn:aws:ec2:us-east-1:111122223333:reserved-instances/r-1"}, "0", "1000", "0"},
	{"other fee", map[string]string{ColLineItemType: "Fee", ColUnblendedCost: "29"}, "29", "29", "29"},
	{"source writes a measure itself", map[string]string{ColLineItemType: "Usage", ColUnblendedCost: "2", ColAmortizedCost: "99"}, "2", "2", "2"},
}

func measureRecord(t testing.TB, row map[string]string) *Record {
	t.Helper()
	rec := NewRecord()
	for name, v := range row {
		rec.Values[MustIndex(name)] = v
	}
	return rec
}

func TestSetMeasures(t *testing.T) {
	for _, c := range measureCases {
		rec := measureRecord(t, c.row)
		if err := SetMeasures(rec); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got := [3]string{rec.Values[MustIndex(ColAmortizedCost)], rec.Values[MustIndex(ColNetUnblendedCost)], rec.Values[MustIndex(ColNetAmortizedCost)]}
		if want := [3]string{c.amortized, c.netUnblended, c.netAmor}; !sameAmounts(got, want) {
			t.Errorf("%s: amortized, net unblended, net amortized = %q, want %q", c.name, got, want)
		}
	}
}

// sameAmounts compares as decimals: a measure may keep the row's text ("5.0E-1").
func sameAmounts(got, want [3]string) bool {
	for i := range got {
		if (got[i] == "") != (want[i] == "") {
			return false
		}
		if got[i] != "" && money.MustParse(got[i]).Cmp(money.MustParse(want[i])) != 0 {
			return false
		}
	}
	return true
}

// A legacy CUR header reaches the same columns: the measures of a
// legacy row equal those of its CUR 2.0 twin.
func TestSetMeasuresLegacyHeader(t *testing.T) {
	header := []string{"lineItem/LineItemType", "lineItem/UnblendedCost", "lineItem/NetUnblendedCost",
		"savingsPlan/SavingsPlanEffectiveCost", "savingsPlan/NetSavingsPlanEffectiveCost",
		"savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment",
		"reservation/EffectiveCost", "reservation/NetEffectiveCost", "reservation/ReservationARN",
		"reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/UnusedRecurringFee",
		"reservation/NetUnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/NetUnusedRecurringFee"}
	m, err := MapLegacyHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	for i, tg := range m.Targets {
		if tg.Key != "" {
			t.Fatalf("%s maps to %s", header[i], tg.describe())
		}
	}
	rows := [][]string{
		{"SavingsPlanRecurringFee", "10", "9", "", "", "10", "7.5", "", "", "", "", "", "", ""},
		{"RIFee", "20", "19", "", "", "", "", "", "", "arn:r", "1.5", "2", "1.4", "1.9"},
		{"Fee", "300", "", "", "", "", "", "", "", "arn:r", "", "", "", ""},
		{"DiscountedUsage", "0", "", "", "", "", "", "0.3", "0.28", "arn:r", "", "", "", ""},
	}
	want := [][3]string{{"2.5", "9", "2.5"}, {"3.5", "19", "3.3"}, {"0", "300", "0"}, {"0.3", "0", "0.28"}}
	rec := NewRecord()
	for i, row := range rows {
		if err := rec.Fill(m, row); err != nil {
			t.Fatal(err)
		}
		if err := SetMeasures(rec); err != nil {
			t.Fatal(err)
		}
		got := [3]string{rec.Values[MustIndex(ColAmortizedCost)], rec.Values[MustIndex(ColNetUnblendedCost)], rec.Values[MustIndex(ColNetAmortizedCost)]}
		if !sameAmounts(got, want[i]) {
			t.Errorf("row %d (%s): %q, want %q", i, row[0], got, want[i])
		}
	}
}

// A bad amount in a sum is ErrBadCost naming the column, never the value.
func TestSetMeasuresBadAmount(t *testing.T) {
	for _, c := range []struct {
		row    map[string]string
		column string
		reason error
	}{
		{map[string]string{ColLineItemType: "SavingsPlanRecurringFee", "savings_plan_total_commitment_to_date": "secret-7", "savings_plan_used_commitment": "1"},
			"savings_plan_total_commitment_to_date", money.ErrSyntax},
		{map[string]string{ColLineItemType: "SavingsPlanRecurringFee", "savings_plan_total_commitment_to_date": "secret-7"},
			"savings_plan_total_commitment_to_date", money.ErrSyntax},
		{map[string]string{ColLineItemType: "RIFee", "reservation_unused_amortized_upfront_fee_for_billing_period": "1", "reservation_unused_recurring_fee": "0.0000000000000000001"},
			"reservation_unused_recurring_fee", money.ErrTooPrecise},
		{map[string]string{ColLineItemType: "RIFee", "reservation_unused_recurring_fee": "1", "reservation_net_unused_recurring_fee": "secret-7"},
			"reservation_net_unused_recurring_fee", money.ErrSyntax},
	} {
		err := SetMeasures(measureRecord(t, c.row))
		var ce *CostError
		if !errors.Is(err, ErrBadCost) || !errors.Is(err, c.reason) || !errors.As(err, &ce) || ce.Column != c.column {
			t.Errorf("%v: error %v, want ErrBadCost %v in %s", c.row, err, c.reason, c.column)
			continue
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "0.0000000000000000001") {
			t.Errorf("error quotes the file: %v", err)
		}
	}
}

// The measures are costlake's: a source header of their name goes to
// other_columns in every header shape.
func TestMeasureColumnsNotMapped(t *testing.T) {
	for _, name := range []string{ColAmortizedCost, ColNetUnblendedCost, ColNetAmortizedCost} {
		if Columns[MustIndex(name)].Kind != Decimal || LineItems.Index(name) != MustIndex(name) {
			t.Errorf("%s: not a decimal column of line_items at its canonical position", name)
		}
		m, err := MapCUR2Header([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if tg := m.Targets[0]; tg.Column != MustIndex(ColOtherColumns) || tg.Key != name {
			t.Errorf("CUR 2.0 %s maps to %s", name, tg.describe())
		}
		if tg := athenaTarget(name, name); tg.Column != MustIndex(ColOtherColumns) {
			t.Errorf("Athena %s maps to %s", name, tg.describe())
		}
	}
}

// BenchmarkSetMeasures runs the measures over a mix like a real month's
// (mostly usage, which copies text; a few fees, which add and format),
// and over each kind alone.
func BenchmarkSetMeasures(b *testing.B) {
	var mix []*Record
	for i := 0; i < 14; i++ {
		mix = append(mix, measureRecord(b, measureCases[1].row)) // usage with a net cost
	}
	for _, i := range []int{5, 7, 8, 14, 15, 18} { // covered usage, negation, SP fee, RI usage, RI fee, RI upfront
		mix = append(mix, measureRecord(b, measureCases[i].row))
	}
	for _, bc := range []struct {
		name string
		recs []*Record
	}{
		{"mix", mix},
		{"usage", mix[:1]},
		{"sp-fee", []*Record{measureRecord(b, measureCases[8].row)}},
		{"ri-fee", []*Record{measureRecord(b, measureCases[15].row)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := SetMeasures(bc.recs[i%len(bc.recs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
