package billing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/money"
)

// Total is the row count and unblended cost of one usage account and line
// item type.
type Total struct {
	Account       string       `json:"account"`
	LineItemType  string       `json:"line_item_type"`
	Rows          int64        `json:"rows"`
	UnblendedCost money.Amount `json:"unblended_cost"`
}

// MergeTotals adds totals with the same account and type, sorted by
// account then type.
func MergeTotals(lists ...[]Total) []Total {
	type key struct{ account, typ string }
	byKey := map[key]*Total{}
	for _, l := range lists {
		for _, t := range l {
			k := key{t.Account, t.LineItemType}
			if cur, ok := byKey[k]; ok {
				cur.Rows += t.Rows
				cur.UnblendedCost = cur.UnblendedCost.Add(t.UnblendedCost)
			} else {
				c := t
				byKey[k] = &c
			}
		}
	}
	out := make([]Total, 0, len(byKey))
	//workflowcheck:ignore the order is sorted below, so workflows may merge totals
	for _, t := range byKey {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Total) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.LineItemType, b.LineItemType))
	})
	return out
}

// AccountTotal is the roll-up of one usage account.
type AccountTotal struct {
	Account       string       `json:"account"`
	Rows          int64        `json:"rows"`
	UnblendedCost money.Amount `json:"unblended_cost"`
}

// ByAccount rolls totals up per usage account, sorted by account.
func ByAccount(totals []Total) []AccountTotal {
	var out []AccountTotal
	for _, t := range MergeTotals(totals) {
		if n := len(out); n > 0 && out[n-1].Account == t.Account {
			out[n-1].Rows += t.Rows
			out[n-1].UnblendedCost = out[n-1].UnblendedCost.Add(t.UnblendedCost)
			continue
		}
		out = append(out, AccountTotal{Account: t.Account, Rows: t.Rows, UnblendedCost: t.UnblendedCost})
	}
	return out
}

// DiffTotals describes the first differences between two merged total
// lists, or returns "" when they are equal to the last digit.
func DiffTotals(want, got []Total) string {
	type key struct{ a, t string }
	g := map[key]Total{}
	for _, t := range got {
		g[key{t.Account, t.LineItemType}] = t
	}
	var diffs []string
	for _, w := range want {
		k := key{w.Account, w.LineItemType}
		a, ok := g[k]
		delete(g, k)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s/%s: %d rows %s in source, missing in table", w.Account, w.LineItemType, w.Rows, w.UnblendedCost))
		case a.Rows != w.Rows || a.UnblendedCost.Cmp(w.UnblendedCost) != 0:
			diffs = append(diffs, fmt.Sprintf("%s/%s: source %d rows %s, table %d rows %s", w.Account, w.LineItemType, w.Rows, w.UnblendedCost, a.Rows, a.UnblendedCost))
		}
	}
	for _, a := range MergeTotals(mapValues(g)) {
		diffs = append(diffs, fmt.Sprintf("%s/%s: %d rows %s in table, not in source", a.Account, a.LineItemType, a.Rows, a.UnblendedCost))
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
