package cycle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"

	"github.com/costlake/costlake/internal/period"
)

// LineAdjustment is the kind of a Bill line that carries a restatement
// of an earlier, closed cycle (see reseller.Adjustment). Adjustment lines
// come after every line pricing.Invoice writes; they are at cost (Cost =
// Amount = the adjustment), and they change Bill.Cost, Bill.Total and
// Bill.Due (rounded once more, half-even, from the new Total). Pricebook
// credits never absorb them: credits apply before, to the cycle's own
// charges.
const LineAdjustment pricing.LineKind = "adjustment"

// AdjustmentLine is the bill line of one adjustment.
func AdjustmentLine(origin, payerID, assembly string, amount money.Amount) pricing.BillLine {
	return pricing.BillLine{
		Kind:        LineAdjustment,
		Description: fmt.Sprintf("AWS restated %s (payer %s, delivery %s) after that cycle closed; at cost", origin, payerID, assembly),
		Cost:        amount,
		Amount:      amount,
	}
}

// AddLines appends lines to a bill after pricing.Invoice: Cost and Total
// grow by theirs and Due is rounded again, once, from the new Total.
func AddLines(b *pricing.Bill, lines ...pricing.BillLine) {
	if len(lines) == 0 {
		return
	}
	for _, l := range lines {
		b.Lines = append(b.Lines, l)
		b.Cost = b.Cost.Add(l.Cost)
		b.Total = b.Total.Add(l.Amount)
	}
	b.Due = pricing.RoundCents(b.Total)
}

// ValidPeriod reports whether p is a billing period "YYYY-MM".
func ValidPeriod(p string) bool { return period.Valid(p) }

// Pins describes what a closed cycle froze, canonically: "v<pricebook
// version>;<payer>=<snapshot>,…" by payer. billing.resale_line_items
// records it with each cycle's commit.
func Pins(pricebookVersion int, snapshots map[string]int64) string {
	payers := make([]string, 0, len(snapshots))
	for p := range snapshots {
		payers = append(payers, p)
	}
	slices.Sort(payers)
	var b strings.Builder
	b.WriteString("v" + strconv.Itoa(pricebookVersion) + ";")
	for i, p := range payers {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p + "=" + strconv.FormatInt(snapshots[p], 10))
	}
	return b.String()
}
