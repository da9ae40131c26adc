package cycle

import (
	"slices"
	"strconv"
	"strings"
)

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
