package pricing

import (
	"fmt"

	"github.com/costlake/costlake/internal/money"
)

// LineAdjustment is the kind of a Bill line that carries a restatement
// of an earlier, closed cycle (see reseller.Adjustment). Adjustment lines
// come after every line pricing.Invoice writes, name the period they
// correct (CorrectsPeriod), and change Bill.Cost, Bill.Total and Bill.Due
// (rounded once more, half-even, from the new Total). Their Cost is the
// restated cost; their Amount is that difference priced like the lines
// it adjusts, with the closed cycle's pinned pricebook (unless that
// pricebook has AdjustmentsAtCost, or the adjustment was recorded at cost:
// then Amount = Cost). Pricebook credits never absorb them: credits
// apply before, to the cycle's own charges.
const LineAdjustment LineKind = "adjustment"

// AdjustmentLine is the bill line of one adjustment: cost is the restated
// cost; resale, when set, what the origin cycle's pricebook version
// charges for it (nil: at cost).
func AdjustmentLine(origin, payerID, assembly string, cost money.Amount, resale *money.Amount, version int) BillLine {
	l := BillLine{
		Kind:           LineAdjustment,
		CorrectsPeriod: origin,
		Description:    fmt.Sprintf("AWS restated %s (payer %s, delivery %s) after that cycle closed; at cost", origin, payerID, assembly),
		Cost:           cost,
		Amount:         cost,
	}
	if resale != nil {
		l.Amount = *resale
		l.Description = fmt.Sprintf("AWS restated %s (payer %s, delivery %s) after that cycle closed; priced with its pricebook version %d", origin, payerID, assembly, version)
	}
	return l
}

// AddLines appends lines to a bill after pricing.Invoice: Cost and Total
// grow by theirs and Due is rounded again, once, from the new Total.
func AddLines(b *Bill, lines ...BillLine) {
	if len(lines) == 0 {
		return
	}
	for _, l := range lines {
		b.Lines = append(b.Lines, l)
		b.Cost = b.Cost.Add(l.Cost)
		b.Total = b.Total.Add(l.Amount)
	}
	b.Due = RoundCents(b.Total)
}

// LineResellerTax is the kind of a tax line the pricebook's Taxes add.
const LineResellerTax LineKind = "reseller_tax"

// AddTaxes appends the pricebook's taxes to a bill after every other line
// (adjustments included): each is its percent of the bill's amounts
// before taxes, AWS's own Tax lines left out, never of a negative base;
// exact at scale 18, and Due is rounded again from the new Total.
func (pr *Pricer) AddTaxes(b *Bill) {
	if len(pr.taxes) == 0 {
		return
	}
	var base money.Amount
	for _, l := range b.Lines {
		if l.Kind != LineTax && l.Kind != LineResellerTax {
			base = base.Add(l.Amount)
		}
	}
	base = maxAmount(base, money.Amount{})
	lines := make([]BillLine, 0, len(pr.taxes))
	for _, t := range pr.taxes {
		x := unscaled(base)
		amount := fromUnscaled(quoHalfEven(x.Mul(x, t.percentU), percentDen))
		lines = append(lines, BillLine{Kind: LineResellerTax, Description: fmt.Sprintf("%s: %s%% of %s", t.name, t.percent, base), Amount: amount, Base: base})
	}
	AddLines(b, lines...)
}
