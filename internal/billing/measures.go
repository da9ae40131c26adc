package billing

import (
	"errors"
	"fmt"

	"github.com/costlake/costlake/internal/money"
)

// Cost measures costlake computes for every row of billing.line_items at
// ingestion, from the same row, so a query sums one column instead of
// repeating AWS's case analysis (and getting Savings Plan and RI fees
// counted twice).
const (
	ColAmortizedCost    = "amortized_cost"
	ColNetUnblendedCost = "net_unblended_cost"
	ColNetAmortizedCost = "net_amortized_cost"
)

// MeasureColumns are the computed measures, in table order. A source
// column of one of these names is never taken for them: it goes to
// other_columns.
var MeasureColumns = []Column{
	{Name: ColAmortizedCost, Kind: Decimal, Doc: "effective (amortized) cost, by AWS's definitions for Savings Plans and Reserved Instances; computed by costlake from the row; null in rows written before the column existed (the period's next delivery fills it)"},
	{Name: ColNetUnblendedCost, Kind: Decimal, Doc: "line_item_net_unblended_cost, or line_item_unblended_cost when the row has no net cost; computed by costlake; null in rows written before the column existed"},
	{Name: ColNetAmortizedCost, Kind: Decimal, Doc: "amortized_cost from the net (after discounts) Savings Plan and RI columns, each falling back to its gross column; computed by costlake; null in rows written before the column existed"},
}

// isComputed reports a column costlake fills itself, which a source
// header must never write.
func isComputed(name string) bool {
	return name == ColOtherColumns || name == ColBillingPeriod ||
		name == ColAmortizedCost || name == ColNetUnblendedCost || name == ColNetAmortizedCost
}

// ErrBadCost reports an amount a cost measure is computed from that is
// not a decimal costlake keeps exactly.
var ErrBadCost = errors.New("a cost column of the line item is not an exact decimal")

// CostError names the column and the reason, never the value: the text
// came from a customer's file.
type CostError struct {
	Column string
	Err    error // money.ErrSyntax, money.ErrTooPrecise or money.ErrOverflow
}

func (e *CostError) Error() string { return fmt.Sprintf("%v: %s: %v", ErrBadCost, e.Column, e.Err) }

// Unwrap lets errors.Is match ErrBadCost and the money error.
func (e *CostError) Unwrap() []error { return []error{ErrBadCost, e.Err} }

// Positions in billing.line_items of what SetMeasures reads and writes.
var (
	mType             = MustIndex(ColLineItemType)
	mUnblended        = MustIndex(ColUnblendedCost)
	mNetUnblended     = MustIndex("line_item_net_unblended_cost")
	mSPEffective      = MustIndex("savings_plan_savings_plan_effective_cost")
	mSPNetEffective   = MustIndex("savings_plan_net_savings_plan_effective_cost")
	mSPTotal          = MustIndex("savings_plan_total_commitment_to_date")
	mSPUsed           = MustIndex("savings_plan_used_commitment")
	mRIEffective      = MustIndex("reservation_effective_cost")
	mRINetEffective   = MustIndex("reservation_net_effective_cost")
	mRIUnusedUpfront  = MustIndex("reservation_unused_amortized_upfront_fee_for_billing_period")
	mRINetUnusedUpfr  = MustIndex("reservation_net_unused_amortized_upfront_fee_for_billing_period")
	mRIUnusedRecur    = MustIndex("reservation_unused_recurring_fee")
	mRINetUnusedRecur = MustIndex("reservation_net_unused_recurring_fee")
	mRIARN            = MustIndex("reservation_reservation_a_r_n")
	mAmortized        = MustIndex(ColAmortizedCost)
	mNetUnblendedOut  = MustIndex(ColNetUnblendedCost)
	mNetAmortized     = MustIndex(ColNetAmortizedCost)
)

// SetMeasures fills amortized_cost, net_unblended_cost and
// net_amortized_cost of a billing.line_items record from its other
// columns, so that their sums are Cost Explorer's AmortizedCost,
// NetUnblendedCost and NetAmortizedCost, by the case analysis AWS's own
// CUR queries use:
//
//	line item type               amortized_cost
//	SavingsPlanCoveredUsage      savings_plan_savings_plan_effective_cost
//	SavingsPlanRecurringFee      savings_plan_total_commitment_to_date − savings_plan_used_commitment (the unused commitment)
//	SavingsPlanNegation          0 (the covered usage's on-demand cost, taken back)
//	SavingsPlanUpfrontFee        0 (amortized into the effective costs above)
//	DiscountedUsage              reservation_effective_cost
//	RIFee                        reservation_unused_amortized_upfront_fee_for_billing_period + reservation_unused_recurring_fee
//	Fee with a reservation ARN   0 (the RI's upfront fee, amortized into the two above)
//	anything else                line_item_unblended_cost
//
// net_unblended_cost is line_item_net_unblended_cost, or the unblended
// cost where the row has none: AWS's column dictionary writes the net_*
// columns only in months with a discount. net_amortized_cost is the same
// table over the net columns (savings_plan_net_savings_plan_effective_cost,
// reservation_net_effective_cost, reservation_net_unused_*), each falling
// back to its gross column, with net_unblended_cost for anything else.
// AWS writes no net form of the total and used commitment, so a Savings
// Plan's unused commitment counts at its gross amount in both.
//
// The amounts are copied as the row writes them wherever the measure is
// one column, so most rows cost no arithmetic; a null input gives a null
// measure, and in a sum a missing operand counts as 0 (both missing:
// null). The record's own values of the three columns are replaced.
func SetMeasures(rec *Record) error {
	v := rec.Values
	netUnblended := coalesce(v[mNetUnblended], v[mUnblended])
	amortized, netAmortized := v[mUnblended], netUnblended
	switch v[mType] {
	case "SavingsPlanCoveredUsage":
		amortized = v[mSPEffective]
		netAmortized = coalesce(v[mSPNetEffective], amortized)
	case "SavingsPlanRecurringFee":
		unused, err := combine(v[mSPTotal], v[mSPUsed], true, mSPTotal, mSPUsed)
		if err != nil {
			return err
		}
		amortized, netAmortized = unused, unused
	case "SavingsPlanNegation", "SavingsPlanUpfrontFee":
		amortized, netAmortized = zero, zero
	case "DiscountedUsage":
		amortized = v[mRIEffective]
		netAmortized = coalesce(v[mRINetEffective], amortized)
	case "RIFee":
		var err error
		if amortized, err = combine(v[mRIUnusedUpfront], v[mRIUnusedRecur], false, mRIUnusedUpfront, mRIUnusedRecur); err != nil {
			return err
		}
		net := [2]int{mRINetUnusedUpfr, mRINetUnusedRecur}
		if v[mRINetUnusedUpfr] == "" {
			net[0] = mRIUnusedUpfront
		}
		if v[mRINetUnusedRecur] == "" {
			net[1] = mRIUnusedRecur
		}
		if netAmortized, err = combine(v[net[0]], v[net[1]], false, net[0], net[1]); err != nil {
			return err
		}
	case "Fee":
		if v[mRIARN] != "" {
			amortized, netAmortized = zero, zero
		}
	}
	v[mAmortized], v[mNetUnblendedOut], v[mNetAmortized] = amortized, netUnblended, netAmortized
	return nil
}

const zero = "0"

func coalesce(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// combine returns a+b, or a−b when sub, as text; "" when both are null.
// ia and ib name the columns in an error.
func combine(a, b string, sub bool, ia, ib int) (string, error) {
	if a == "" && b == "" {
		return "", nil
	}
	if b == "" || b == zero {
		if a == "" {
			return zero, nil
		}
		if _, err := money.Parse(a); err != nil {
			return "", costError(ia, err)
		}
		return a, nil // checked, and kept as the row writes it
	}
	var x, y money.Amount
	var err error
	if a != "" {
		if x, err = money.Parse(a); err != nil {
			return "", costError(ia, err)
		}
	}
	if y, err = money.Parse(b); err != nil {
		return "", costError(ib, err)
	}
	if sub {
		return x.Sub(y).String(), nil
	}
	return x.Add(y).String(), nil
}

// costError keeps only the reason of a money error: its text quotes the value.
func costError(col int, err error) error {
	for _, reason := range []error{money.ErrTooPrecise, money.ErrOverflow} {
		if errors.Is(err, reason) {
			return &CostError{Column: Columns[col].Name, Err: reason}
		}
	}
	return &CostError{Column: Columns[col].Name, Err: money.ErrSyntax}
}
