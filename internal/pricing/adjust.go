package pricing

import (
	"fmt"

	"github.com/costlake/costlake/internal/money"
)

// LineAdjustment is the kind of a Bill line that carries a restatement
// of an earlier, closed cycle (see reseller.Adjustment). Adjustment lines
// come after every line pricing.Invoice writes; they are at cost (Cost =
// Amount = the adjustment), and they change Bill.Cost, Bill.Total and
// Bill.Due (rounded once more, half-even, from the new Total). Pricebook
// credits never absorb them: credits apply before, to the cycle's own
// charges.
const LineAdjustment LineKind = "adjustment"

// AdjustmentLine is the bill line of one adjustment.
func AdjustmentLine(origin, payerID, assembly string, amount money.Amount) BillLine {
	return BillLine{
		Kind:           LineAdjustment,
		CorrectsPeriod: origin,
		Description:    fmt.Sprintf("AWS restated %s (payer %s, delivery %s) after that cycle closed; at cost", origin, payerID, assembly),
		Cost:           amount,
		Amount:         amount,
	}
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
