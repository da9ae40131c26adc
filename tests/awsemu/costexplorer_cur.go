package awsemu

import (
	"fmt"
	"math/big"
	"strings"
)

// CostRecordsFromCUR turns the rows of a CUR (legacy "lineItem/UnblendedCost"
// headers or CUR 2.0 "line_item_unblended_cost" ones) into Cost
// Explorer's facts, one per row, as Cost Explorer derives its metrics
// from the same line items: UnblendedCost, NetUnblendedCost,
// AmortizedCost and NetAmortizedCost, dated by the usage start day and
// keyed by LINKED_ACCOUNT, SERVICE (the product code) and RECORD_TYPE
// (the line item type). Feed them to [Server.SetCostRecords].
//
// The metrics follow AWS's definitions, written here from the CUR user
// guide and nothing else, so that a test comparing them with an ingestion
// checks the ingestion's own computation: covered Savings Plan usage at
// its effective cost, the Savings Plan's unused commitment in its
// recurring fee line, negations and upfront fees at 0, Reserved
// Instance usage at its effective cost, the RI fee at its unused
// amortized upfront and recurring fee, the RI's upfront fee at 0; the net
// metrics from the net columns where the row has them.
func CostRecordsFromCUR(header []string, rows [][]string) ([]CostRecord, error) {
	pos := map[string]int{}
	for i, h := range header {
		pos[ceKey(h)] = i
	}
	out := make([]CostRecord, 0, len(rows))
	for n, row := range rows {
		get := func(name string) string {
			if i, ok := pos[ceKey(name)]; ok && i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		num := func(name string) (*big.Rat, bool, error) {
			s := get(name)
			if s == "" {
				return new(big.Rat), false, nil
			}
			r, ok := new(big.Rat).SetString(s)
			if !ok {
				return nil, false, fmt.Errorf("awsemu: CUR row %d: %s is not a number", n+1, name)
			}
			return r, true, nil
		}
		// orNet reads the net form of a column, or the column where the
		// row has no net form.
		orNet := func(net, gross string) (*big.Rat, error) {
			if v, ok, err := num(net); err != nil || ok {
				return v, err
			}
			v, _, err := num(gross)
			return v, err
		}
		var errs []error
		must := func(v *big.Rat, err error) *big.Rat {
			if err != nil {
				errs = append(errs, err)
				return new(big.Rat)
			}
			return v
		}
		val := func(name string) *big.Rat {
			v, _, err := num(name)
			return must(v, err)
		}
		unblended := val("line_item_unblended_cost")
		netUnblended := must(orNet("line_item_net_unblended_cost", "line_item_unblended_cost"))
		typ := get("line_item_line_item_type")
		var amortized, netAmortized *big.Rat
		switch {
		case typ == "SavingsPlanCoveredUsage":
			amortized = val("savings_plan_savings_plan_effective_cost")
			netAmortized = must(orNet("savings_plan_net_savings_plan_effective_cost", "savings_plan_savings_plan_effective_cost"))
		case typ == "SavingsPlanRecurringFee":
			amortized = new(big.Rat).Sub(val("savings_plan_total_commitment_to_date"), val("savings_plan_used_commitment"))
			netAmortized = amortized
		case typ == "SavingsPlanNegation" || typ == "SavingsPlanUpfrontFee":
			amortized, netAmortized = new(big.Rat), new(big.Rat)
		case typ == "DiscountedUsage":
			amortized = val("reservation_effective_cost")
			netAmortized = must(orNet("reservation_net_effective_cost", "reservation_effective_cost"))
		case typ == "RIFee":
			amortized = new(big.Rat).Add(val("reservation_unused_amortized_upfront_fee_for_billing_period"), val("reservation_unused_recurring_fee"))
			netAmortized = new(big.Rat).Add(
				must(orNet("reservation_net_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_amortized_upfront_fee_for_billing_period")),
				must(orNet("reservation_net_unused_recurring_fee", "reservation_unused_recurring_fee")))
		case typ == "Fee" && get("reservation_reservation_a_r_n") != "":
			amortized, netAmortized = new(big.Rat), new(big.Rat)
		default:
			amortized, netAmortized = unblended, netUnblended
		}
		if len(errs) > 0 {
			return nil, errs[0]
		}
		day := get("line_item_usage_start_date")
		if len(day) < 10 {
			return nil, fmt.Errorf("awsemu: CUR row %d has no usage start date", n+1)
		}
		usd := func(r *big.Rat) MetricValue { return MetricValue{Amount: r.FloatString(18), Unit: "USD"} }
		out = append(out, CostRecord{Date: day[:10],
			Dimensions: map[string]string{"LINKED_ACCOUNT": get("line_item_usage_account_id"),
				"SERVICE": get("line_item_product_code"), "RECORD_TYPE": typ},
			Metrics: map[string]MetricValue{"UnblendedCost": usd(unblended), "NetUnblendedCost": usd(netUnblended),
				"AmortizedCost": usd(amortized), "NetAmortizedCost": usd(netAmortized)},
			Estimated: get("bill_invoice_id") == ""})
	}
	return out, nil
}

// ceKey reduces a legacy or CUR 2.0 header to letters and digits in
// lower case, where both spell a column the same:
// "reservation/ReservationARN" and "reservation_reservation_a_r_n" are
// both "reservationreservationarn".
func ceKey(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}
